"""Visitor → lead → user: every conversion path, merges, verification, concurrency, retention."""

from __future__ import annotations

import asyncio
import json
import time

from trailmark import identity
from trailmark.retention import purge_workspace
from trailmark.store.models import AppendRequest, NewEvent

DAY = 86400


def event(client_id: str, name: str = "viewed-page", **metadata: object) -> dict[str, object]:
    return {"id": client_id, "event_name": name, "metadata": metadata}


async def backfill(h, contact_id: str, name: str, created_at: int, key: str) -> None:
    """An event at a past time, stored as the browser would have (created_at can't be old through the shim)."""
    await h.store.append_events(AppendRequest(h.workspace.id, contact_id, "js", [
        NewEvent(event_name=name, created_at=created_at, dedupe_key=key, metadata={}, metadata_types={})]))


async def history(h, **ident: str) -> list[str]:
    r = await h.client.get("/events", params={"type": "user", "per_page": 100, **ident}, headers=h.auth)
    assert r.status_code == 200, r.text
    return [e["event_name"] for e in r.json()["events"]]


async def test_contact_panel_turns_visitor_into_lead_with_recent_history(harness):
    h = harness
    me = await h.visitor()
    cid = me["contact"]["id"]
    now = int(time.time())
    await backfill(h, cid, "ancient-visit", now - 100 * DAY, "old")
    await backfill(h, cid, "recent-visit", now - 10 * DAY, "recent")
    await h.track(me["session"], event("e1", "viewed-pricing"))

    r = await h.client.post("/messenger/web/conversations", content=json.dumps({
        "app_id": h.workspace.app_id, "device": me["device"], "session": me["session"],
        "email": "ada@example.com", "message": "Do you do invoices?"}))
    assert r.status_code == 200, r.text
    lead = r.json()
    assert lead["contact"] == {"id": cid, "role": "lead"}
    assert lead["visitor_id"] == me["visitor_id"]

    contact = await h.store.get_contact(h.workspace, cid)
    assert contact.role == "lead" and contact.email == "ada@example.com"
    [conversation] = await h.store.conversations.for_contact(h.workspace, cid)
    assert conversation.preview == "Do you do invoices?" and conversation.state == "open"
    # The lead shows the visitor's last 90 days, not the 100-day-old event.
    assert await history(h, intercom_user_id=cid) == ["viewed-pricing", "recent-visit"]
    summary = await h.client.get("/events", params={"type": "user", "intercom_user_id": cid, "summary": "true"},
                                 headers=h.auth)
    assert {e["name"] for e in summary.json()["events"]} == {"viewed-pricing", "recent-visit"}

    # Later events land on the lead and are marked as tracked by a lead.
    await h.track(lead["session"], event("e2", "asked-question"))
    events = await h.store.events_for(h.workspace, contact, limit=10)
    assert (events[0].event_name, events[0].role) == ("asked-question", "lead")


async def test_contact_panel_validates_input(harness):
    me = await harness.visitor()
    for body, field in (({"email": "nope", "message": "hi"}, "email"),
                        ({"email": "a@b.co", "message": " "}, "message")):
        r = await harness.client.post("/messenger/web/conversations", content=json.dumps(
            {"app_id": harness.workspace.app_id, "session": me["session"], "device": me["device"], **body}))
        assert r.status_code == 400
        assert r.json()["errors"][0]["field"] == field
    assert (await harness.store.get_contact(harness.workspace, me["contact"]["id"])).role == "visitor"


async def test_update_with_email_makes_a_lead(harness):
    me = await harness.visitor()
    r = await harness.ping(device=me["device"], session=me["session"], user={"email": "bo@example.com"})
    assert r.json()["contact"] == {"id": me["contact"]["id"], "role": "lead"}


async def test_two_tabs_converting_at_once_yield_one_lead(harness):
    h = harness
    me = await h.visitor()
    body = {"app_id": h.workspace.app_id, "device": me["device"], "session": me["session"],
            "email": "tabs@example.com", "message": "hello"}
    answers = await asyncio.gather(*[h.client.post("/messenger/web/conversations", content=json.dumps(body))
                                     for _ in range(5)])
    assert {a.json()["contact"]["id"] for a in answers} == {me["contact"]["id"]}
    merges = await h.store.merges_for(h.workspace, me["contact"]["id"])
    assert [m.kind for m in merges] == ["convert"]


async def test_rest_convert_to_lead_and_twice_is_one_lead(harness):
    h = harness
    me = await h.visitor()
    body = {"type": "lead", "visitor": {"user_id": me["visitor_id"]}}
    first = await h.client.post("/visitors/convert", json=body, headers=h.auth)
    assert first.status_code == 200, first.text
    assert first.json()["role"] == "lead" and first.json()["type"] == "contact"
    again = await h.client.post("/visitors/convert", json=body, headers=h.auth)
    assert again.status_code == 404  # no visitor any more: it is a lead now
    assert again.json()["errors"][0]["message"] == "Visitor Not Found"


async def test_rest_convert_to_existing_user_merges_and_keeps_every_event_once(harness):
    h = harness
    user = await h.store.create_contact(h.workspace, "user", external_id="u-42", email="u42@example.com")
    await backfill(h, user.id, "signed-up", int(time.time()) - 5 * DAY, "u1")
    me = await h.visitor()
    await h.track(me["session"], event("v1", "viewed-pricing"), event("v2", "started-trial"))
    r = await h.client.post("/visitors/convert", json={"type": "user", "visitor": {"id": me["contact"]["id"]},
                                                       "user": {"user_id": "u-42"}}, headers=h.auth)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == user.id
    assert sorted(await history(h, user_id="u-42")) == ["signed-up", "started-trial", "viewed-pricing"]
    # The browser's session still names the visitor: its next events land on the user.
    await h.track(me["session"], event("v3", "upgraded"))
    assert (await history(h, user_id="u-42"))[0] == "upgraded"
    assert await h.event_count() == 4


async def test_rest_convert_to_new_user(harness):
    h = harness
    me = await h.visitor()
    r = await h.client.post("/visitors/convert", json={"type": "user", "visitor": {"user_id": me["visitor_id"]},
                                                       "user": {"user_id": "new-1", "email": "n@example.com"}},
                            headers=h.auth)
    assert r.status_code == 200
    assert r.json()["role"] == "user" and r.json()["external_id"] == "new-1"
    assert r.json()["id"] == me["contact"]["id"]


async def test_generic_user_ids_are_refused(harness):
    h = harness
    me = await h.visitor()
    for bad in ("undefined", "null", "0", "[object Object]", "anonymous"):
        r = await h.client.post("/visitors/convert", json={"type": "user", "visitor": {"user_id": me["visitor_id"]},
                                                           "user": {"user_id": bad}}, headers=h.auth)
        assert r.status_code == 400, bad
        ping = await h.ping(device=me["device"], session=me["session"], user={"user_id": bad})
        assert ping.status_code == 401 and ping.json()["errors"][0]["code"] == "invalid_identity"
    assert (await h.store.get_contact(h.workspace, me["contact"]["id"])).role == "visitor"


async def test_boot_as_user_merges_lead_into_existing_user(harness):
    h = harness
    user = await h.store.create_contact(h.workspace, "user", external_id="42")
    me = await h.visitor()
    await h.track(me["session"], event("a", "viewed-pricing"))
    lead = await h.client.post("/messenger/web/conversations", content=json.dumps({
        "app_id": h.workspace.app_id, "device": me["device"], "session": me["session"],
        "email": "l@example.com", "message": "hi"}))
    await h.track(lead.json()["session"], event("b", "asked-question"))
    booted = await h.ping(device=me["device"], session=lead.json()["session"], user={"user_id": "42"})
    assert booted.json()["contact"] == {"id": user.id, "role": "user"}
    await h.track(booted.json()["session"], event("c", "logged-in"))
    events = await h.store.events_for(h.workspace, user, limit=10)
    assert [(e.event_name, e.role) for e in events] == [
        ("logged-in", "user"), ("asked-question", "lead"), ("viewed-pricing", "visitor")]


async def test_two_users_never_merge(harness):
    h = harness
    a = await h.visitor(user={"user_id": "alice"})
    b = await h.ping(device=a["device"], session=a["session"], user={"user_id": "bob"})
    assert b.json()["contact"]["id"] != a["contact"]["id"]
    alice = await h.store.find_contact(h.workspace, user_id="alice")
    assert alice is not None and alice.merged_into is None
    r = await h.client.post("/contacts/merge", json={"from": alice.id, "into": b.json()["contact"]["id"]},
                            headers=h.auth)
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "invalid_merge"


async def test_rest_merge_lead_into_user_and_undo(harness):
    h = harness
    user = await h.store.create_contact(h.workspace, "user", external_id="u1")
    me = await h.visitor(user={"email": "x@example.com"})  # unverified email from a visitor → lead
    assert me["contact"]["role"] == "lead"
    await h.track(me["session"], event("l1", "asked-question"))
    r = await h.client.post("/contacts/merge", json={"from": me["contact"]["id"], "into": user.id}, headers=h.auth)
    assert r.status_code == 200 and r.json()["id"] == user.id
    assert await history(h, user_id="u1") == ["asked-question"]
    [merge] = [m for m in await h.store.merges_for(h.workspace, user.id) if m.kind == "merge"]
    assert merge.from_contact == me["contact"]["id"] and merge.proof == "REST access token"
    await h.store.undo_merge(h.workspace, merge.id, "teammate@example.com")
    assert await history(h, user_id="u1") == []
    assert await history(h, intercom_user_id=me["contact"]["id"]) == ["asked-question"]


async def test_enforced_verification_refuses_forged_user_hash(make_harness):
    async with make_harness(enforce_identity_verification=True) as h:
        me = await h.visitor()
        forged = await h.ping(device=me["device"], session=me["session"],
                              user={"user_id": "victim", "user_hash": "0" * 64})
        assert forged.status_code == 401
        missing = await h.ping(device=me["device"], session=me["session"], user={"user_id": "victim"})
        assert missing.status_code == 401
        assert await h.store.find_contact(h.workspace, user_id="victim") is None
        good = await h.ping(device=me["device"], session=me["session"], user={
            "user_id": "victim", "user_hash": identity.user_hash(h.workspace.identity_secret, "victim")})
        assert good.status_code == 200 and good.json()["contact"]["role"] == "user"
        merges = await h.store.merges_for(h.workspace, good.json()["contact"]["id"])
        assert merges[0].proof == "user_hash"


async def test_rotated_secret_keeps_verifying_during_grace(make_harness):
    async with make_harness(enforce_identity_verification=True) as h:
        old = h.workspace.identity_secret
        await h.store.rotate_identity_secret(h.workspace)
        ws = await h.store.workspace_by_app_id(h.workspace.app_id, cached=False)
        assert ws.identity_secret != old
        r = await h.ping(user={"user_id": "u", "user_hash": identity.user_hash(old, "u")})
        assert r.status_code == 200
        await h.store.update_workspace(ws.id, previous_secret_expires_at=int(time.time()) - 1)
        r = await h.ping(user={"user_id": "u", "user_hash": identity.user_hash(old, "u")})
        assert r.status_code == 401


async def test_purge_deletes_expired_visitor_events_only(harness):
    h = harness
    now = int(time.time())
    stranger = await h.visitor()
    await backfill(h, stranger["contact"]["id"], "old-visit", now - 120 * DAY, "s-old")
    await backfill(h, stranger["contact"]["id"], "new-visit", now - 1 * DAY, "s-new")
    lead = await h.visitor()
    await backfill(h, lead["contact"]["id"], "old-lead-visit", now - 60 * DAY, "l-old")
    await h.store.convert_to_lead(h.workspace, lead["contact"]["id"], email="l@example.com", reason="t", proof="t")
    await backfill(h, lead["contact"]["id"], "old-lead-event", now - 200 * DAY, "l-older")
    gone = await h.visitor()
    await backfill(h, gone["contact"]["id"], "ancient", now - 300 * DAY, "g-old")

    from trailmark.retention import cutoff_for
    # The 'gone' visitor was seen just now, so its (emptied) profile stays; only events expire.
    assert await h.store.count_expired(h.workspace, cutoff_for(h.workspace)) == (2, 0)
    assert await purge_workspace(h.store, h.workspace, batch_size=1) == (2, 0)
    assert await history(h, intercom_user_id=stranger["contact"]["id"]) == ["new-visit"]
    assert sorted(await history(h, intercom_user_id=lead["contact"]["id"])) == ["old-lead-visit"]
    assert await h.store.count_events(h.workspace) == 3  # new-visit, old-lead-visit, old-lead-event
    # A visitor unseen for longer than the window, with nothing left, is deleted too.
    later = now + 100 * DAY
    assert await purge_workspace(h.store, h.workspace, now=later) == (1, 2)
    assert await h.store.get_contact(h.workspace, gone["contact"]["id"]) is None
    assert (await h.store.get_contact(h.workspace, lead["contact"]["id"])).role == "lead"
