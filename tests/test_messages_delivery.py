"""Messages in the browser, server side (docs/protocol.md "Messages"): the ``events`` answer carries what a browser
event triggers (a retry gets the same delivery back, counted once), the ``ping`` answer hands pending posts and
chats over once, and ``POST /messenger/web/messages/{id}/{mark}`` counts each mark once, for its contact only."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

from trailmark.admin import auth
from trailmark.importer import import_rows
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


# ------------------------------------------------------------------ server sources: Segment, Stripe, imports
CHAT: dict[str, Any] = {
    "key": "paid-thanks", "kind": "chat", "state": "live", "trigger": {"event": "paid-invoice"},
    "chat": {"from": "Grace"}, "content": {"text": "Thanks for paying {{contact.name}}"},
}
SIGNED_UP_BANNER: dict[str, Any] = {**BANNER, "key": "signed-up-banner", "trigger": {"event": "signed-up"},
                                    "audience": {}, "content": {"text": "Hello"}}


async def _segment_track(h: Any, message_id: str) -> Any:
    auth = "Basic " + base64.b64encode(f"{h.workspace.access_token}:".encode()).decode()
    return await h.client.post("/v1/track", json={"userId": "42", "event": "signed-up", "messageId": message_id},
                               headers={"Authorization": auth})


async def test_a_segment_track_s_post_waits_for_the_next_page_view_and_never_a_banner(harness):
    h = harness
    await apply(h, POST)
    await apply(h, SIGNED_UP_BANNER)
    me = await h.visitor(user={"user_id": "42", "name": "Ada"})
    r = await _segment_track(h, "seg-1")
    assert r.status_code == 200 and r.json()["status"] == "accepted", r.text
    assert (await _segment_track(h, "seg-1")).json()["status"] == "duplicate"  # a retry: no second delivery
    [m] = (await h.visitor(device=me["device"], session=me["session"], user={"user_id": "42"}))["messages"]
    assert (m["kind"], m["key"], m["title"]) == ("post", "welcome", "Welcome, Ada")
    totals = await h.store.messages.totals(h.workspace)
    by_key = {s.key: s.id for s in await h.store.messages.list(h.workspace)}
    assert totals[by_key["welcome"]]["sent"] == 1
    assert totals.get(by_key["signed-up-banner"], {}).get("sent", 0) == 0


async def test_a_stripe_webhook_s_chat_waits_for_the_next_page_view(harness):
    h = harness
    secret = "whsec_messages"
    await h.store.add_stripe_secret(h.workspace, secret)
    await apply(h, CHAT)
    me = await h.visitor(user={"user_id": "42", "name": "Ada", "email": "ada@example.com"})
    now = int(time.time())
    payload = json.dumps({"id": "evt_m1", "type": "invoice.paid", "created": now, "data": {"object": {
        "object": "invoice", "id": "in_1", "customer": "cus_1", "customer_email": "ada@example.com",
        "amount_paid": 4900, "currency": "usd"}}})
    sig = hmac.new(secret.encode(), f"{now}.{payload}".encode(), hashlib.sha256).hexdigest()
    r = await h.client.post(f"/integrations/stripe/webhook/{h.workspace.app_id}", content=payload,
                            headers={"Stripe-Signature": f"t={now},v1={sig}", "content-type": "application/json"})
    assert r.status_code == 200 and r.json()["status"] == "accepted", r.text
    [m] = (await h.visitor(device=me["device"], session=me["session"], user={"user_id": "42"}))["messages"]
    assert m == {"id": m["id"], "key": "paid-thanks", "kind": "chat", "text": "Thanks for paying Ada", "from": "Grace"}


async def test_an_import_never_triggers(harness):
    h = harness
    await apply(h, POST)
    ada = await h.store.create_contact(h.workspace, "user", external_id="42", name="Ada")
    summary = await import_rows(h.store, h.workspace, iter([(1, {"user_id": "42", "event_name": "signed-up",
                                                                 "created_at": int(time.time())})]))
    assert summary.accepted == 1, summary
    assert await h.store.messages.pending_for_contact(h.workspace, ada.id) == []
