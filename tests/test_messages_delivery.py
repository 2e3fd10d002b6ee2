"""Messages in the browser, server side (docs/protocol.md "Messages"): the ``events`` answer carries what a browser
event triggers (a retry gets the same delivery back, counted once), the ``ping`` answer hands pending posts and
chats over once, and ``POST /messenger/web/messages/{id}/{mark}`` counts each mark once, for its contact only."""

from __future__ import annotations

import json
from typing import Any

from trailmark.admin import auth
from trailmark.messages.document import parse_message

BANNER: dict[str, Any] = {
    "key": "upload-done", "kind": "banner", "state": "live",
    "trigger": {"event": "upload-complete", "metadata": [{"key": "type", "op": "eq", "value": "JPEG"}]},
    "audience": {"page_url": [{"op": "contains", "value": "/upload"}]},
    "frequency": {"max": 5, "per_days": 1},
    "content": {"text": "Your {{event.type}} upload is ready", "button": {"label": "Share", "url": "https://x.example/s"}},
}
POST: dict[str, Any] = {
    "key": "welcome", "kind": "post", "state": "live", "trigger": {"event": "signed-up"},
    "content": {"title": "Welcome, {{contact.name | fallback: \"friend\"}}", "body": "<b>Glad</b> you're here"},
}


async def apply(h: Any, doc: dict[str, Any]) -> None:
    m = parse_message(doc)
    await h.store.messages.apply(h.workspace, key=m.key, kind=m.kind, state=m.state, event_name=m.trigger.event,
                                 document=m.document, now=0)


def upload(client_id: str, kind: str = "JPEG") -> dict[str, Any]:
    return {"id": client_id, "event_name": "upload-complete", "metadata": {"type": kind}}


async def mark(h: Any, session: str, delivery_id: Any, what: str) -> int:
    r = await h.client.post(f"/messenger/web/messages/{delivery_id}/{what}", content=json.dumps(
        {"app_id": h.workspace.app_id, "session": session}), headers={"content-type": "text/plain"})
    return r.status_code


async def test_no_live_message_no_messages_key(harness):
    me = await harness.visitor()
    r = await harness.track(me["session"], upload("n1"), page="https://shop.example/upload")
    assert "messages" not in r.json()


async def test_a_browser_event_gets_its_banner_and_a_retry_the_same_one_counted_once(harness):
    h = harness
    await apply(h, BANNER)
    me = await h.visitor()
    page = "https://shop.example/upload.html"
    r = await h.track(me["session"], upload("b1"), upload("b2", "PNG"), {"id": "b3", "event_name": "other"}, page=page)
    [m] = r.json()["messages"]
    assert m == {"id": m["id"], "key": "upload-done", "kind": "banner", "text": "Your JPEG upload is ready",
                 "button": {"label": "Share", "url": "https://x.example/s"},
                 "banner": {"position": "top", "style": "floating", "dismissible": True}}
    again = await h.track(me["session"], upload("b1"), page=page)
    assert again.json()["results"][0]["status"] == "duplicate"
    assert again.json()["messages"] == [m]
    # The page condition: the same event elsewhere does not show it; nor without a page.
    assert "messages" not in (await h.track(me["session"], upload("b4"), page="https://shop.example/")).json()
    assert "messages" not in (await h.track(me["session"], upload("b5"))).json()
    [stored] = await h.store.messages.list(h.workspace)
    assert (await h.store.messages.totals(h.workspace))[stored.id]["sent"] == 1
    # Marks: 204, each counted once; a click implies shown.
    assert await mark(h, me["session"], m["id"], "clicked") == 204
    assert await mark(h, me["session"], m["id"], "clicked") == 204
    assert await mark(h, me["session"], m["id"], "dismissed") == 204
    assert (await h.store.messages.totals(h.workspace))[stored.id] == {"sent": 1, "shown": 1, "clicked": 1,
                                                                        "dismissed": 1}


async def test_marks_only_by_the_delivery_s_contact(harness):
    h = harness
    await apply(h, BANNER)
    me, other = await h.visitor(), await h.visitor()
    [m] = (await h.track(me["session"], upload("c1"), page="https://s.example/upload")).json()["messages"]
    assert await mark(h, other["session"], m["id"], "shown") == 404
    assert await mark(h, "forged", m["id"], "shown") == 401
    assert await mark(h, me["session"], m["id"], "opened") == 404
    assert await mark(h, me["session"], "12x", "shown") == 404
    assert await mark(h, me["session"], 999999, "shown") == 404
    [stored] = await h.store.messages.list(h.workspace)
    assert (await h.store.messages.totals(h.workspace))[stored.id]["shown"] == 0


async def test_a_rest_event_s_post_waits_for_the_next_ping_and_is_handed_over_once(harness):
    h = harness
    await apply(h, POST)
    me = await h.visitor(user={"user_id": "42", "name": "Ada"})
    r = await h.client.post("/events", json={"event_name": "signed-up", "user_id": "42"}, headers=h.auth)
    assert r.status_code == 202
    [m] = (await h.visitor(device=me["device"], session=me["session"], user={"user_id": "42"}))["messages"]
    assert m["kind"] == "post" and m["title"] == "Welcome, Ada" and m["body"] == "<b>Glad</b> you're here"
    assert "messages" not in await h.visitor(device=me["device"], session=me["session"], user={"user_id": "42"})
    [stored] = await h.store.messages.list(h.workspace)
    assert (await h.store.messages.totals(h.workspace))[stored.id]["sent"] == 1


async def test_an_intercom_post_messages_chat_carries_its_sanitised_html(harness):
    h = harness
    teammate = await h.store.create_teammate("grace@example.com", auth.hash_password("a long enough password"))
    me = await h.visitor(user={"user_id": "42"})
    r = await h.client.post("/messages", headers=h.auth, json={
        "message_type": "inapp", "body": "<p>Hi <b>Ada</b><script>x()</script></p>",
        "from": {"type": "admin", "id": str(teammate.id)}, "to": {"type": "user", "user_id": "42"}})
    assert r.status_code == 200, r.text
    [m] = (await h.visitor(device=me["device"], session=me["session"], user={"user_id": "42"}))["messages"]
    assert m["kind"] == "chat" and m["html"] == "<p>Hi <b>Ada</b></p>" and m["text"] == "Hi Ada"
    assert m["from"] == "grace@example.com" and "conversation_id" not in m
