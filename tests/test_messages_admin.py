"""The admin's Messages on both stores: the list (state, counts, a daily chart each), creating a message and
editing its JSON (errors by pointer, nothing saved, CSRF), states, the audience estimate, "Would this show for
<contact>, now? Why not?", and the contact profile's card of messages sent."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from trailmark.messages.document import parse_message
from trailmark.messages.engine import messages_for_event
from trailmark.messages.rules import TrackedEvent
from trailmark.store.models import AppendRequest, NewEvent

from .test_admin import csrf_of, sign_in

DOC: dict[str, Any] = {
    "key": "upload-done",
    "name": "Upload ready",
    "kind": "banner",
    "state": "live",
    "trigger": {"event": "upload-complete", "metadata": [{"key": "type", "op": "eq", "value": "JPEG"}]},
    "audience": {"roles": ["user"], "events": [{"op": "done", "event": "upload-complete"}]},
    "content": {"text": "Your {{event.type}} upload is ready"},
}


@pytest.fixture
async def admin(harness: Any) -> AsyncIterator[Any]:
    """A harness whose client is signed in as a teammate."""
    r = await sign_in(harness)
    assert r.status_code == 303, r.text
    yield harness


async def _apply(h: Any, doc: dict[str, Any], now: int | None = None) -> Any:
    m = parse_message(doc)
    return (
        await h.store.messages.apply(
            h.workspace, key=m.key, kind=m.kind, state=m.state, event_name=m.trigger.event, document=m.document, now=now
        )
    ).message


async def test_the_list_shows_states_counts_and_charts(admin):
    h = admin
    now = int(time.time())
    await _apply(h, DOC, now - 60)
    ada = await h.store.create_contact(h.workspace, "user", external_id="1", name="Ada <b>")
    await h.store.append_events(
        AppendRequest(
            h.workspace.id, ada.id, "js", [NewEvent("upload-complete", now, "e1", {"type": "JPEG"}, {"type": "string"})]
        )
    )
    [d] = await messages_for_event(
        h.store,
        h.workspace,
        ada,
        TrackedEvent("upload-complete", now, "e1", {"type": "JPEG"}, {"type": "string"}),
        source="js",
        now=now,
    )
    await h.store.messages.mark(h.workspace, d.id, "clicked")
    page = (await h.client.get("/admin/messages")).text
    assert "Upload ready" in page and "badge-live" in page and "1 message sent in the last 30 days" in page
    assert 'href="/admin/messages"' in page  # the nav
    assert '<td class="num">1</td><td class="num">1</td>' in page  # sent, shown
    profile = (await h.client.get(f"/admin/contacts/{ada.id}")).text
    assert "/admin/messages/upload-done" in profile and "badge-clicked" in profile


async def test_create_edit_with_errors_by_pointer_and_states(admin):
    h = admin
    page = (await h.client.get("/admin/messages")).text
    token = csrf_of(page)
    bad = {**DOC, "kind": "popup", "content": {"text": "Hi {{user.name}}"}}
    r = await h.client.post("/admin/messages", data={"csrf": token, "document": json.dumps(bad)})
    assert r.status_code == 422
    assert "<code>/kind</code>" in r.text and "<code>/content/text</code>" in r.text and "Nothing was saved" in r.text
    assert await h.store.messages.list(h.workspace) == []
    r = await h.client.post("/admin/messages", data={"csrf": token, "document": "{oops"})
    assert r.status_code == 422 and "not JSON" in r.text
    r = await h.client.post("/admin/messages", data={"csrf": "forged", "document": json.dumps(DOC)})
    assert r.status_code == 403 and await h.store.messages.list(h.workspace) == []
    r = await h.client.post("/admin/messages", data={"csrf": token, "document": json.dumps({**DOC, "state": "draft"})})
    assert r.status_code == 303 and r.headers["location"] == "/admin/messages/upload-done"
    page = (await h.client.get("/admin/messages/upload-done")).text
    assert "Message created." in page and "&#34;upload-complete&#34;" in page  # the document, escaped in the textarea
    edited = {**DOC, "state": "draft", "content": {"text": "<script>alert(1)</script> ready"}}
    r = await h.client.post("/admin/messages/upload-done", data={"csrf": token, "document": json.dumps(edited)})
    assert r.status_code == 303
    page = (await h.client.get("/admin/messages/upload-done")).text
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    r = await h.client.post(
        "/admin/messages/upload-done", data={"csrf": token, "document": json.dumps({**DOC, "key": "other"})}
    )
    assert r.status_code == 422 and "must stay" in r.text
    r = await h.client.post(
        "/admin/messages/upload-done", data={"csrf": token, "document": json.dumps({**DOC, "frequency": {"max": 0}})}
    )
    assert r.status_code == 422 and "<code>/frequency/max</code>" in r.text
    assert (await h.store.messages.get(h.workspace, "upload-done")).document["content"]["text"].startswith("<script>")
    r = await h.client.post("/admin/messages/upload-done/state", data={"csrf": token, "state": "live"})
    assert r.status_code == 303
    stored = await h.store.messages.get(h.workspace, "upload-done")
    assert stored.state == "live" and stored.went_live_at is not None
    assert (await h.client.get("/admin/messages/nope")).status_code == 404


async def test_audience_estimate_and_would_this_show(admin):
    h = admin
    now = int(time.time())
    await _apply(h, DOC, now - 3600)
    ada = await h.store.create_contact(h.workspace, "user", external_id="42", email="ada@example.com", name="Ada")
    await h.store.create_contact(h.workspace, "user", external_id="43")
    await h.store.create_contact(h.workspace, "lead", email="lee@example.com")
    await h.store.append_events(
        AppendRequest(
            h.workspace.id,
            ada.id,
            "js",
            [NewEvent("upload-complete", now - 100, "e1", {"type": "JPEG"}, {"type": "string"})],
        )
    )
    page = (await h.client.get("/admin/messages/upload-done")).text
    assert "matches 1 contact now" in page
    page = (await h.client.get("/admin/messages/upload-done", params={"who": "ada@example.com"})).text
    assert "Yes: it would show to" in page and "with the metadata of their last one" in page
    lee = (await h.client.get("/admin/messages/upload-done", params={"who": "lee@example.com"})).text
    assert "No: it would not show to" in lee
    assert "The contact is a lead; the audience is user." in lee
    assert "upload-complete: has done: no." in lee
    page = (await h.client.get("/admin/messages/upload-done", params={"who": "nobody@example.com"})).text
    assert "No contact matches" in page
