"""Writers in several processes at once on PostgreSQL (found by a review of the purge, with a stress run of
every writer in two stores): two processes' purge rounds, and an erasure beside an undone merge.

PostgreSQL only (they need two transactions at once); the SQLite leg is skipped: its single writer runs one
transaction at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import asyncpg
import pytest

from trailmark.domain_errors import UnknownIdentity
from trailmark.retention import purge_workspace
from trailmark.store import SQLStore, open_store
from trailmark.store.models import AppendRequest, NewEvent
from trailmark.store.page_views import NewPageView

from .test_contact_stats import recount

DAY = 86400


async def no_deadlock_and_exact_stats(store: SQLStore, caplog: pytest.LogCaptureFixture, between: str) -> None:
    """No transaction was run again after a deadlock (postgres_db logs each lost race), and the per-contact stats
    equal a recount from the events."""
    lost = [r.getMessage() for r in caplog.records if "DeadlockDetectedError" in r.getMessage()]
    assert not lost, f"{len(lost)} deadlocks {between}"
    kept, fresh = await recount(store)
    assert kept == fresh


def postgres_only(store: SQLStore) -> None:
    if store.db.dialect.name != "postgres":
        pytest.skip("needs concurrent transactions (PostgreSQL)")


async def test_purge_rounds_of_two_processes_do_not_deadlock(store: SQLStore, store_url: str,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    """Several processes may run ``purge_forever`` at once. Two processes' batches over the same expired events
    locked the rows they delete in different orders (the DELETE's plan: a hash of the subquery's ids, then the
    events), so PostgreSQL detected deadlocks, each costing ``deadlock_timeout`` (1 s) and a retry; after 4 lost
    attempts the round failed. A workspace's purge batches now take turns (an advisory lock): no deadlock, and
    the stats stay exact, with a client sending old events alongside."""
    postgres_only(store)
    other = open_store(store_url)
    await other.open()
    try:
        ws = await store.create_workspace("Two purgers")
        now = int(time.time())
        old = now - 100 * DAY
        visitors = [(await store.create_visitor(ws)).id for _ in range(30)]
        caplog.set_level(logging.INFO, logger="trailmark.store")
        sent = 0

        async def track(s: SQLStore, n: int) -> None:
            nonlocal sent
            cid = visitors[sent % len(visitors)]
            events = [NewEvent(("viewed", "paid")[j % 2], old + (sent + j) % 3, f"e{sent + j}", {}, {})
                      for j in range(n)]
            sent += n
            await s.append_events(AppendRequest(ws.id, cid, "js", events))

        for _ in range(3):  # rounds of both processes, a client sending old events alongside
            for _ in range(30):
                await track(store, 60)

            async def ingest(s: SQLStore) -> None:
                for _ in range(25):  # bounded: a client sending old events for ever keeps a round going
                    await track(s, 3)

            await asyncio.gather(ingest(store), ingest(other),
                                 *(purge_workspace(s, ws, batch_size=b) for s, b in
                                   ((store, 5), (other, 7), (store, 11), (other, 3))))
        await no_deadlock_and_exact_stats(store, caplog, "between purge batches")
    finally:
        await other.close()


async def test_erasure_alongside_an_undone_merge_keeps_the_stats_exact(store: SQLStore, store_url: str) -> None:
    """Erasure (``delete_contact``) read the person's contacts (the root and those merged into it) without the
    lifecycle lock, deleted all their events, then the merged contacts ``AND merged_into IS NOT NULL``. An undo
    of one of those merges committing in between left that contact alive (PostgreSQL re-checks the row:
    ``merged_into`` is now NULL) with its events erased but its ``contact_event_stats`` rows still there. Erasure
    now takes the lifecycle lock, as the undo does: it waits, then erases the person as the undo left it."""
    postgres_only(store)
    ws = await store.create_workspace("Erase vs undo")
    now = int(time.time())
    user = (await store.identify_user(ws, (await store.create_visitor(ws)).id, user_id="u1", email=None,
                                      reason="t", proof="t")).id
    visitor = (await store.create_visitor(ws)).id
    await store.append_events(AppendRequest(ws.id, visitor, "js", [NewEvent("viewed", now - DAY, "v1", {}, {})]))
    await store.merge_contacts(ws, visitor, user, reason="t", proof="t")
    merge = next(m for m in await store.merges_for(ws, visitor) if m.kind == "merge")

    # The undo's own statements, held open on a connection of its own (as undo_merge's transaction is, between
    # its UPDATE and its COMMIT), after the lock it takes first.
    undo = await asyncpg.connect(store_url)
    try:
        tx = undo.transaction()
        await tx.start()
        await undo.execute("SELECT pg_advisory_xact_lock(7302, $1)", ws.id)  # lifecycle.lock_lifecycle
        await undo.execute("UPDATE contacts SET merged_into = NULL WHERE id = $1", visitor)
        await undo.execute("UPDATE merges SET undone_at = $1, undone_by = 't' WHERE id = $2", now, merge.id)
        erase = asyncio.create_task(store.delete_contact(ws, user))
        await asyncio.sleep(1.0)  # erasure waits (before, it had read both ids and waited on the visitor's row)
        assert not erase.done()
        await tx.commit()
        await erase
    finally:
        await undo.close()
    async with store.db.read() as conn:
        alive = await conn.fetch_all("SELECT id FROM contacts WHERE id = ?", (visitor,))
    kept, fresh = await recount(store)
    assert kept == fresh, f"visitor alive: {bool(alive)}; stats {kept} vs recount {fresh}"
    # The undone visitor is a person of its own now, with its event: the erasure of the user left it.
    assert alive
    async with store.db.read() as conn:
        left = await conn.fetch_all("SELECT dedupe_key FROM events WHERE contact_id = ?", (visitor,))
    assert [r["dedupe_key"] for r in left] == ["v1"]


async def test_erasure_beside_ingest_into_the_same_person_does_not_deadlock(store: SQLStore, store_url: str,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    """Ingest locks a contact (its events' foreign key) before the hot counter rows; erasure took the counter
    rows first and then waited to delete the contact: a deadlock (1 s and a retry) whenever an erased person's
    browser was still sending. Erasure now locks the person's contacts first, the order ingest takes them in.
    A batch that looked the contact up just before the erasure committed met a foreign-key violation, raised
    as it was (a 500 at the HTTP edge); it is now run again, and the request refused as UnknownIdentity."""
    postgres_only(store)
    other = open_store(store_url)
    await other.open()
    try:
        ws = await store.create_workspace("Erase vs ingest")
        now = int(time.time())
        caplog.set_level(logging.INFO, logger="trailmark.store")
        for _ in range(6):
            people = [(await store.create_visitor(ws)).id for _ in range(4)]

            async def send(s: SQLStore, cid: str, k: int) -> None:
                events = [NewEvent(("viewed", "paid")[j % 2], now - j, f"{cid}-{k}-{j}", {}, {}) for j in range(5)]
                with contextlib.suppress(UnknownIdentity):  # the person is gone: its token names no contact
                    await s.append_events(AppendRequest(ws.id, cid, "js", events))

            for cid in people:
                await send(store, cid, -1)
            await asyncio.gather(*(send(s, cid, k) for k in range(3) for cid in people for s in (store, other)),
                                 *(store.delete_contact(ws, cid) for cid in people[::2]),
                                 *(other.delete_contact(ws, cid) for cid in people[1::2]))
        await no_deadlock_and_exact_stats(store, caplog, "between erasure and ingest")
    finally:
        await other.close()


async def test_page_views_and_events_beside_erasure_of_merged_people(store: SQLStore, store_url: str,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    """Browsers of merged people (tokens naming the merged-away visitor and the survivor) send page views and
    events together (one shared transaction, as POST /messenger/web/events) from two processes while the
    people are erased: every request is stored or refused as UnknownIdentity, no deadlock, stats exact, nothing
    left behind."""
    postgres_only(store)
    other = open_store(store_url)
    await other.open()
    try:
        ws = await store.create_workspace("Erase vs views")
        now = int(time.time())
        caplog.set_level(logging.INFO, logger="trailmark.store")
        unexpected: list[BaseException] = []
        for round_ in range(4):
            people: list[tuple[str, str]] = []
            for p in range(4):
                user = (await store.identify_user(ws, (await store.create_visitor(ws)).id,
                                                  user_id=f"u{round_}-{p}", email=None, reason="t", proof="t")).id
                merged = (await store.create_visitor(ws)).id
                await store.merge_contacts(ws, merged, user, reason="t", proof="t")
                people.append((user, merged))

            async def send(s: SQLStore, cid: str, k: int) -> None:
                events = [NewEvent(("viewed", "paid")[j % 2], now - j, f"e-{cid}-{k}-{j}", {}, {}) for j in range(3)]
                views = [NewPageView(f"https://x.example/{j}", None, None, now - j, f"p-{cid}-{k}-{j}")
                         for j in range(3)]
                got = await asyncio.gather(s.append_events(AppendRequest(ws.id, cid, "js", events)),
                                           s.append_page_views(ws, cid, views), return_exceptions=True)
                unexpected.extend(g for g in got if isinstance(g, BaseException) and not isinstance(g, UnknownIdentity))

            for user, merged in people:
                await send(store, user, -1)
                await send(store, merged, -1)
            await asyncio.gather(*(send(s, cid, k) for k in range(3) for pair in people for cid in pair
                                   for s in (store, other)),
                                 *(store.delete_contact(ws, u) for u, _ in people[::2]),
                                 *(other.delete_contact(ws, u) for u, _ in people[1::2]))
        assert not unexpected, [repr(e) for e in unexpected]
        await no_deadlock_and_exact_stats(store, caplog, "")
    finally:
        await other.close()


async def test_page_views_for_a_contact_erased_after_the_look_up_are_refused(store: SQLStore, store_url: str) -> None:
    """The page-views writer's own race (the ingest test above): the erasure deletes the contact and holds
    its transaction open; the page view's insert waits on the contact's row, then meets a foreign-key violation
    when the erasure commits. Answered UnknownIdentity (a 401), not the driver's error (a 500)."""
    postgres_only(store)
    ws = await store.create_workspace("Erase vs one view")
    visitor = (await store.create_visitor(ws)).id
    now = int(time.time())
    eraser = await asyncpg.connect(store_url)
    try:
        tx = eraser.transaction()
        await tx.start()
        await eraser.execute("DELETE FROM contacts WHERE id = $1", visitor)
        view = asyncio.create_task(store.append_page_views(ws, visitor, [NewPageView("https://x/", None, None, now,
                                                                                     "k")]))
        await asyncio.sleep(0.5)
        await tx.commit()
        with pytest.raises(UnknownIdentity):
            await view
    finally:
        await eraser.close()


async def test_browser_batches_beside_erasure_never_answer_500(make_harness: Any) -> None:
    """At the HTTP edge: POST /messenger/web/events with page views and events for people being erased is
    answered 200 or 401, never 500."""
    async with make_harness() as h:
        sessions = []
        for _ in range(6):
            answer = await h.visitor()
            sessions.append((answer["session"], answer["contact"]["id"] if "contact" in answer else None))
        statuses: list[int] = []

        async def track(session: str, k: int) -> None:
            r = await h.track(session, *({"id": f"{k}-e{j}", "event_name": "viewed"} for j in range(2)),
                              *({"id": f"{k}-p{j}", "type": "page_view", "url": f"https://x/{j}"} for j in range(2)))
            statuses.append(r.status_code)
            assert r.status_code in (200, 401), r.text

        contacts = []
        async with h.store.db.read() as conn:
            contacts = [r["id"] for r in await conn.fetch_all("SELECT id FROM contacts WHERE workspace_id = ?",
                                                               (h.workspace.id,))]
        await asyncio.gather(*(track(s, k * 100 + i) for k in range(4) for i, (s, _) in enumerate(sessions)),
                             *(h.store.delete_contact(h.workspace, c) for c in contacts))
        assert set(statuses) <= {200, 401}
