"""Event-triggered messages on both stores: ``store.messages`` (apply by key, idempotent; deliveries unique per
(message, event dedupe key); marks counted once; pending deliveries; daily stats; caps in the transaction) and
the engine entry point ``messages_for_event`` (live messages by event name, browser vs server sources, first
time, audience event filters with the contact list's SQL, caps, retries getting the same delivery back)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

from trailmark.messages.document import parse_message
from trailmark.messages.engine import PENDING_DAYS, explain, messages_for_event
from trailmark.messages.rules import TrackedEvent
from trailmark.store.admin_reads import EventFilter
from trailmark.store.models import AppendRequest, NewEvent

DAY = 86400


def banner(**over: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "key": "upload-done", "kind": "banner", "state": "live",
        "trigger": {"event": "upload-complete", "metadata": [{"key": "type", "op": "eq", "value": "JPEG"}]},
        "frequency": {"max": 2, "per_days": 1},
        "content": {"text": "Your {{event.type}} upload is ready, {{contact.name | fallback: \"there\"}}",
                    "button": {"label": "Share it", "url": "https://example.org/share"}},
    }
    d.update(over)
    return d


async def apply(store: Any, ws: Any, document: dict[str, Any], now: int | None = None) -> Any:
    m = parse_message(document)
    return await store.messages.apply(ws, key=m.key, kind=m.kind, state=m.state, event_name=m.trigger.event,
                                      document=m.document, now=now)


async def track(store: Any, ws: Any, contact_id: str, name: str, created_at: int, key: str,
                metadata: dict[str, Any] | None = None, types: dict[str, str] | None = None,
                source: str = "js") -> TrackedEvent:
    md = metadata if metadata is not None else {"type": "JPEG"}
    ty = types if types is not None else {k: "string" for k in md}
    await store.append_events(AppendRequest(ws.id, contact_id, source, [NewEvent(name, created_at, key, md, ty)]))
    return TrackedEvent(name, created_at, key, md, ty)


# ------------------------------------------------------------------------------------------ the store part
async def test_apply_is_idempotent_by_key_and_going_live_sets_went_live_at(harness):
    store, ws = harness.store, harness.workspace
    first = await apply(store, ws, banner(state="draft"), now=1000)
    assert first.outcome == "created" and first.message.went_live_at is None
    assert (await apply(store, ws, banner(state="draft"), now=2000)).outcome == "unchanged"
    live = await apply(store, ws, banner(), now=3000)
    assert live.outcome == "updated" and live.message.went_live_at == 3000 and live.message.state == "live"
    edited = await apply(store, ws, banner(content={"text": "Done"}), now=4000)
    assert edited.message.went_live_at == 3000  # still live: not reset by an edit
    paused = await store.messages.set_state(ws, "upload-done", "paused", now=5000)
    assert paused.state == "paused" and paused.document["state"] == "paused"
    again = await store.messages.set_state(ws, "upload-done", "live", now=6000)
    assert again.went_live_at == 6000
    assert await store.messages.set_state(ws, "nope", "live") is None
    assert [m.key for m in await store.messages.list(ws)] == ["upload-done"]
    assert (await store.messages.get(ws, "upload-done")).document["content"] == {"text": "Done"}
    other = await store.create_workspace("Other")
    assert await store.messages.list(other) == [] and await store.messages.get(other, "upload-done") is None


async def test_deliveries_are_unique_per_event_and_marks_count_once(harness):
    store, ws = harness.store, harness.workspace
    msg = (await apply(store, ws, banner())).message
    ada = await store.create_contact(ws, "user", external_id="1", name="Ada")
    now = int(time.time()) // DAY * DAY + 3600  # 01:00 UTC today: every mark below falls on the same day
    d1, created = await store.messages.record_delivery(ws, msg, ada.id, "evt-1", source="js",
                                                       content={"text": "hi"}, now=now)
    assert created and d1.status == "sent" and d1.sent_at == now and d1.message_key == "upload-done"
    d2, created = await store.messages.record_delivery(ws, msg, ada.id, "evt-1", source="js",
                                                       content={"text": "other"}, now=now + 5)
    assert not created and d2.id == d1.id and d2.content == {"text": "hi"}
    assert await store.messages.mark(ws, d1.id, "shown", now=now + 1)
    assert not await store.messages.mark(ws, d1.id, "shown", now=now + 2)
    assert await store.messages.mark(ws, d1.id, "clicked", now=now + 3)
    assert not await store.messages.mark(ws, d1.id, "clicked", now=now + 4)
    d3, _ = await store.messages.record_delivery(ws, msg, ada.id, "evt-2", source="js", content={}, now=now)
    assert await store.messages.mark(ws, d3.id, "dismissed", now=now)  # dismissing implies shown
    stats = await store.messages.daily_stats(ws, msg.id, days=3, now=now)
    assert len(stats) == 3 and stats[-1][1] == {"sent": 2, "shown": 2, "clicked": 1, "dismissed": 1}
    assert stats[0][1] == {"sent": 0, "shown": 0, "clicked": 0, "dismissed": 0}
    assert (await store.messages.totals(ws))[msg.id]["sent"] == 2
    done = await store.messages.delivery(ws, d1.id)
    assert (done.status, done.shown_at, done.clicked_at) == ("clicked", now + 1, now + 3)
    assert [d.id for d in await store.messages.deliveries_for_contact(ws, ada.id)] == [d3.id, d1.id] or \
        {d.id for d in await store.messages.deliveries_for_contact(ws, ada.id)} == {d1.id, d3.id}
    assert await store.messages.count_for_contact(ws, ada.id, now - 10) == 2
    assert await store.messages.count_for_contact(ws, ada.id, now - 10, message_id=msg.id) == 2
    assert await store.messages.last_delivery_at(ws, ada.id) == now


async def test_caps_and_the_gap_are_checked_in_the_inserting_transaction(harness):
    store, ws = harness.store, harness.workspace
    msg = (await apply(store, ws, banner())).message
    ada = await store.create_contact(ws, "user", external_id="1")
    now = int(time.time())
    # Ten events at once against a cap of 2 per day: exactly two deliveries.
    results = await asyncio.gather(*(store.messages.record_delivery(
        ws, msg, ada.id, f"e{i}", source="js", content={}, cap=(2, now - DAY), now=now) for i in range(10)))
    assert sum(1 for d, created in results if created) == 2
    assert sum(1 for d, _ in results if d is None) == 8
    other = (await apply(store, ws, banner(key="other"))).message
    refused, _ = await store.messages.record_delivery(ws, other, ada.id, "x", source="js", content={},
                                                      gap_since=now - 600, now=now)
    assert refused is None


async def test_pending_deliveries_wait_for_the_next_page_view_and_expire(harness):
    store, ws = harness.store, harness.workspace
    post = (await apply(store, ws, {"key": "welcome", "kind": "post", "state": "live", "trigger": {"event": "paid"},
                                    "content": {"title": "Thanks", "body": "Hi"}})).message
    ada = await store.create_contact(ws, "user", external_id="1")
    now = int(time.time())
    d, _ = await store.messages.record_delivery(ws, post, ada.id, "p1", source="rest", content={"title": "Thanks"},
                                                pending_days=7, now=now)
    assert d.status == "pending" and d.sent_at is None and d.expires_at == now + 7 * DAY
    assert [p.id for p in await store.messages.pending_for_contact(ws, ada.id, now=now + 6 * DAY)] == [d.id]
    assert await store.messages.pending_for_contact(ws, ada.id, now=now + 8 * DAY) == []
    assert (await store.messages.daily_stats(ws, post.id, 1, now=now))[0][1]["sent"] == 0
    assert await store.messages.mark_delivered(ws, [d.id], now=now + 10) == 1
    assert await store.messages.mark_delivered(ws, [d.id], now=now + 20) == 0
    assert await store.messages.pending_for_contact(ws, ada.id, now=now + 30) == []
    assert (await store.messages.daily_stats(ws, post.id, 1, now=now + 10))[0][1]["sent"] == 1
    # Shown straight from pending (the page view marked it without handing it over first): sent once too.
    d2, _ = await store.messages.record_delivery(ws, post, ada.id, "p2", source="rest", content={}, pending_days=7,
                                                 now=now)
    assert await store.messages.mark(ws, d2.id, "shown", now=now + 40)
    assert not await store.messages.mark(ws, d2.id, "shown", now=now + 50)
    days = await store.messages.daily_stats(ws, post.id, 2, now=now + 50)  # two days: midnight may fall between
    assert (sum(c["sent"] for _, c in days), sum(c["shown"] for _, c in days)) == (2, 1)


async def test_deliveries_follow_a_merge(harness):
    store, ws = harness.store, harness.workspace
    msg = (await apply(store, ws, banner())).message
    lead = await store.create_contact(ws, "lead", email="ada@example.com")
    user = await store.create_contact(ws, "user", external_id="1")
    d, _ = await store.messages.record_delivery(ws, msg, lead.id, "e1", source="js", content={})
    await store.merge_contacts(ws, lead.id, user.id, reason="test", proof="test")
    assert [x.id for x in await store.messages.deliveries_for_contact(ws, user.id)] == [d.id]


async def test_event_filters_use_the_contact_lists_definitions(harness):
    store, ws = harness.store, harness.workspace
    ada = await store.create_contact(ws, "user", external_id="1")
    now = int(time.time())
    for i in range(3):
        await track(store, ws, ada.id, "upload-complete", now - i * DAY - 100, f"u{i}")
    filters = [EventFilter("done", "upload-complete"), EventFilter("count_gt", "upload-complete", 2),
               EventFilter("count_gt", "upload-complete", 3), EventFilter("not_done", "never-tracked"),
               EventFilter("last_lt", "upload-complete", 1), EventFilter("first_gt", "upload-complete", 5)]
    assert await store.messages.event_filters_match(ws, ada.id, filters, now) == [True, True, False, True, True, False]
    bob = await store.create_contact(ws, "lead", email="bob@example.com")
    n, _ = await store.messages.audience_contacts(ws, ["user", "lead"], [filters[0]], count_only=True, now=now)
    assert n == 1
    n, _ = await store.messages.audience_contacts(ws, ["user", "lead"], [], count_only=True, now=now)
    assert n == 2
    n, rows = await store.messages.audience_contacts(ws, ["lead"], [filters[3]], count_only=False, now=now)
    assert [c.id for c in rows] == [bob.id]


# ------------------------------------------------------------------------------------------ the engine
async def test_a_browser_event_shows_a_live_banner_rendered_and_a_retry_gets_it_back(harness):
    store, ws = harness.store, harness.workspace
    now = int(time.time())
    await apply(store, ws, banner(), now=now - 60)
    ada = await store.create_contact(ws, "user", external_id="1", name="Ada")
    ev = await track(store, ws, ada.id, "upload-complete", now - 2, "b1")
    [d] = await messages_for_event(store, ws, ada, ev, source="js", page_url="https://shop.example/u", now=now)
    assert d.kind == "banner" and d.status == "sent"
    assert d.content["text"] == "Your JPEG upload is ready, Ada"
    assert d.content["button"] == {"label": "Share it", "url": "https://example.org/share"}
    assert d.content["banner"] == {"position": "top", "style": "floating", "dismissible": True}
    [again] = await messages_for_event(store, ws, ada, ev, source="js", now=now + 1)
    assert again.id == d.id
    assert len(await store.messages.deliveries_for_contact(ws, ada.id)) == 1


async def test_what_does_not_trigger(harness):
    store, ws = harness.store, harness.workspace
    now = int(time.time())
    await apply(store, ws, banner(), now=now - 3600)
    ada = await store.create_contact(ws, "user", external_id="1", name="Ada")
    png = await track(store, ws, ada.id, "upload-complete", now, "n1", {"type": "PNG"})
    assert await messages_for_event(store, ws, ada, png, source="js", now=now) == []
    old = await track(store, ws, ada.id, "upload-complete", now - 700, "n2")
    assert await messages_for_event(store, ws, ada, old, source="js", now=now) == []
    other = await track(store, ws, ada.id, "signed-up", now, "n3")
    assert await messages_for_event(store, ws, ada, other, source="js", now=now) == []
    jpeg = await track(store, ws, ada.id, "upload-complete", now, "n4", source="import")
    assert await messages_for_event(store, ws, ada, jpeg, source="import", now=now) == []
    # A server source never shows a banner.
    assert await messages_for_event(store, ws, ada, jpeg, source="rest", now=now) == []
    # Before the message went live: nothing.
    await store.messages.set_state(ws, "upload-done", "paused")
    await store.messages.set_state(ws, "upload-done", "live", now=now + 100)
    assert await messages_for_event(store, ws, ada, jpeg, source="js", now=now + 100) == []


async def test_caps_stop_the_third_and_first_time_only_once(harness):
    store, ws = harness.store, harness.workspace
    now = int(time.time())
    await apply(store, ws, banner(), now=now - 60)
    await apply(store, ws, banner(key="first", trigger={"event": "upload-complete", "when": "first_time"},
                                  frequency={"max": None}), now=now - 60)
    ada = await store.create_contact(ws, "user", external_id="1")
    shown = []
    for i in range(3):
        ev = await track(store, ws, ada.id, "upload-complete", now - 10 + i, f"c{i}")
        shown.append(sorted(d.message_key for d in await messages_for_event(store, ws, ada, ev, source="js", now=now)))
    assert shown == [["first", "upload-done"], ["upload-done"], []]


async def test_server_sources_leave_posts_and_chats_pending(harness):
    store, ws = harness.store, harness.workspace
    await apply(store, ws, {"key": "thanks", "kind": "chat", "state": "live", "trigger": {"event": "paid"},
                            "content": {"text": "Thanks for {{event.price | money}}!"}, "chat": {"from": "Grace"}},
                now=int(time.time()) - 60)
    ada = await store.create_contact(ws, "user", external_id="1")
    now = int(time.time())
    ev = await track(store, ws, ada.id, "paid", now, "s1", {"price": {"amount": 34999, "currency": "eur"}},
                     {"price": "money"}, source="stripe")
    [d] = await messages_for_event(store, ws, ada, ev, source="stripe", now=now)
    assert d.status == "pending" and d.expires_at == now + PENDING_DAYS * DAY
    assert d.content == {"kind": "chat", "message": "thanks", "text": "Thanks for €349.99!", "from": "Grace"}
    assert [p.id for p in await store.messages.pending_for_contact(ws, ada.id, now=now)] == [d.id]


async def test_the_audience_decides_with_event_filters_and_the_workspace_gap(harness):
    store, ws = harness.store, harness.workspace
    now = int(time.time())
    await apply(store, ws, banner(audience={"roles": ["user"], "events": [
        {"op": "count_gt", "event": "upload-complete", "value": 1}]}), now=now - 60)
    await apply(store, ws, banner(key="second", frequency={"max": None}), now=now - 60)
    await store.messages.set_gap_minutes(ws, 30)
    ada = await store.create_contact(ws, "user", external_id="1")
    lead = await store.create_contact(ws, "lead", email="l@example.com")
    e1 = await track(store, ws, ada.id, "upload-complete", now - 5, "a1")
    # One upload so far (this one): count_gt 1 fails; "second" goes, and then the gap holds the rest.
    assert [d.message_key for d in await messages_for_event(store, ws, ada, e1, source="js", now=now)] == ["second"]
    e2 = await track(store, ws, ada.id, "upload-complete", now - 4, "a2")
    assert await messages_for_event(store, ws, ada, e2, source="js", now=now) == []
    stored = await store.messages.get(ws, "upload-done")
    decision = await explain(store, ws, stored, parse_message(stored.document), ada, e2, now)
    assert [r.name for r in decision.failing] == ["workspace_gap"]
    le = await track(store, ws, lead.id, "upload-complete", now - 3, "l1")
    stored_l = await store.messages.get(ws, "upload-done")
    why = await explain(store, ws, stored_l, parse_message(stored_l.document), lead, le, now)
    assert {r.name for r in why.failing} == {"role", "event_filter"}


async def test_an_event_no_live_message_uses_costs_a_dict_lookup(harness, monkeypatch):
    store, ws = harness.store, harness.workspace
    now = int(time.time())
    await apply(store, ws, banner(), now=now - 60)
    ada = await store.create_contact(ws, "user", external_id="1")
    loads = []
    real = store.messages.live_by_event

    async def counted(workspace_id: int) -> Any:
        loads.append(workspace_id)
        return await real(workspace_id)

    monkeypatch.setattr(store.messages, "live_by_event", counted)

    class NoDatabase:
        def read(self) -> Any:
            raise AssertionError("a query for an event no live message uses")

        async def write(self, job: Any) -> Any:
            raise AssertionError("a write for an event no live message uses")

    other = TrackedEvent("page-viewed", now, "x1")
    assert await messages_for_event(store, ws, ada, other, source="js", now=now) == []
    assert loads == [ws.id]  # loaded once, then kept
    db = store.messages.db
    monkeypatch.setattr(store.messages, "db", NoDatabase())
    for i in range(100):
        assert await messages_for_event(store, ws, ada, TrackedEvent("page-viewed", now, f"y{i}"), source="js",
                                        now=now) == []
    assert loads == [ws.id]
    monkeypatch.setattr(store.messages, "db", db)
    # Applying a message in this process clears the cache: the next event sees it at once.
    await apply(store, ws, banner(key="views", trigger={"event": "page-viewed"}, content={"text": "Hi"}), now=now - 60)
    [d] = await messages_for_event(store, ws, ada, TrackedEvent("page-viewed", now, "z1"), source="js", now=now)
    assert d.message_key == "views" and loads == [ws.id, ws.id]


async def test_a_delivery_for_a_contact_erased_since_it_was_resolved_is_not_a_driver_error(
        harness: Any, caplog: pytest.LogCaptureFixture) -> None:
    """POST /messenger/web/events, after its events committed, resolves the contact and records the deliveries its
    events trigger (messenger_messages.for_batch). A contact erased in between met a foreign-key violation on
    every attempt, and the driver's error escaped (a 500 at the edge; IntegrityError on SQLite). The delivery's
    transaction now checks that the contact is still there: nothing is delivered."""
    from trailmark.messages.engine import messages_for_event


    store, ws = harness.store, harness.workspace
    now = int(time.time())
    await apply(store, ws, banner(), now=now - 60)
    ada = await store.create_contact(ws, "user", external_id="1", name="Ada")
    ev = await track(store, ws, ada.id, "upload-complete", now - 2, "b1")
    await store.delete_contact(ws, ada.id)  # erased after for_batch resolved ``ada``
    caplog.set_level(logging.INFO, logger="trailmark.store")
    try:
        got: Any = await messages_for_event(store, ws, ada, ev, source="js", page_url="https://x/", now=now)
    except Exception as exc:
        got = exc
    retried = [r for r in caplog.records if "ForeignKeyViolationError" in r.getMessage()]
    assert got == [], f"{type(got).__name__} after {len(retried) + 1} attempts: {got}"


async def test_browser_batch_whose_person_is_erased_before_its_deliveries_is_not_a_500(
        harness: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same at the HTTP edge: the batch's event is stored, then the person is erased (here: right after
    for_batch resolved the contact) before the triggered banner's delivery is recorded."""
    h = harness
    await apply(h.store, h.workspace, banner(), now=int(time.time()) - 60)
    session = (await h.visitor())["session"]
    resolve = h.store.resolve_contact

    async def resolve_then_erase(ws: Any, contact_id: str) -> Any:
        contact = await resolve(ws, contact_id)
        await h.store.delete_contact(ws, contact_id)
        return contact

    monkeypatch.setattr(h.store, "resolve_contact", resolve_then_erase)
    try:
        r = await h.track(session, {"id": "e1", "event_name": "upload-complete", "metadata": {"type": "JPEG"}},
                          {"id": "p1", "type": "page_view", "url": "https://x/"})
    except Exception as exc:
        pytest.fail(f"the app raised {type(exc).__name__}: {exc}")
    assert r.status_code != 500, r.text
