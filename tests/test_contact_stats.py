"""The per-contact event stats (``contact_stats``, migration 13) stay exact through every writer, and the reads
built on them agree with a naive reference computed in Python from the events and the visibility rule.

A seeded random workload: ingest (with duplicates and an archived name), the import writer, conversions whose
floor hides old visitor events (rows straddling the floor), merges and their undo, the purge, erasure. Then:
the stats table equals a recount from ``events``; the contact list (both plans), the message audience count
and the profile summary equal the reference.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import pytest

from trailmark.store import SQLStore, admin_reads, open_store
from trailmark.store.admin_reads import EventFilter
from trailmark.store.contact_stats import RECOUNT_ALL
from trailmark.store.import_writer import ImportEvent, store_import_chunk
from trailmark.store.models import ROLES, AppendRequest, NewEvent, Workspace

DAY = 86400
NAMES = ["viewed", "uploaded", "paid", "shared"]


def new_event(rng: random.Random, now: int, key: str) -> NewEvent:
    return NewEvent(rng.choice(NAMES), now - rng.randrange(200 * DAY), key, {}, {})


async def workload(store: SQLStore, ws: Workspace, rng: random.Random, now: int) -> None:
    visitors = [(await store.create_visitor(ws)).id for _ in range(14)]
    keys: list[str] = []

    async def track(contact_id: str, n: int) -> None:
        events = []
        for _ in range(n):
            if keys and rng.random() < 0.2:
                key = rng.choice(keys)  # a resent event: a duplicate, stored once
            else:
                key = f"k{len(keys)}"
                keys.append(key)
            events.append(new_event(rng, now, key))
        await store.append_events(AppendRequest(ws.id, contact_id, "js", events))

    for cid in visitors:
        await track(cid, rng.randrange(1, 12))
    await store.set_event_archived(ws, "shared", True)  # its later events are dropped, never counted
    await track(visitors[0], 5)
    await store.set_event_archived(ws, "shared", False)
    users = []
    for i, cid in enumerate(visitors[:3]):  # visitor → user in place: a floor over its own visitor events
        users.append((await store.identify_user(ws, cid, user_id=f"u{i}", email=None, reason="t", proof="t")).id)
    for cid in visitors[3:6]:  # visitor → lead: a floor, its old visitor events hidden
        await store.convert_to_lead(ws, cid, reason="t", proof="t")
    merges = []
    for cid, into in zip(visitors[6:10], users + users, strict=False):  # visitors merged into users
        await store.merge_contacts(ws, cid, into, reason="t", proof="t")
        merges += [m.id for m in await store.merges_for(ws, cid) if m.kind == "merge" and m.from_contact == cid]
    await store.undo_merge(ws, merges[0], "teammate")
    for cid in visitors[:10]:
        await track(cid, rng.randrange(1, 4))  # after conversions and merges: lands on the survivor
    groups = [(cid, [ImportEvent(rng.choice(NAMES), now - rng.randrange(150 * DAY), f"i{k}-{cid}", None, None)
                     for k in range(rng.randrange(1, 6))]) for cid in (*visitors[2:8], visitors[12])]
    groups.append((visitors[4], [ImportEvent("paid", now - DAY, "k0", None, None)]))  # a duplicate of ingest
    await store_import_chunk(store, ws.id, "import", groups)
    while await store.purge_expired_batch(ws, now - 90 * DAY, batch_size=3) != (0, 0):
        pass
    await store.delete_contact(ws, visitors[11])


async def recount(store: SQLStore) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The stats table, and what a recount from the events gives."""
    columns = "event_name_id, contact_id, visitor_phase, count, first_at, last_at"
    async with store.db.read() as conn:
        kept = await conn.fetch_all(f"SELECT {columns} FROM contact_event_stats ORDER BY 1, 2, 3")
        select = RECOUNT_ALL[RECOUNT_ALL.index("SELECT"):]
        fresh = await conn.fetch_all(f"SELECT * FROM ({select}) AS r ORDER BY 1, 2, 3")
    return [tuple(r) for r in kept], [tuple(r) for r in fresh]


async def reference(store: SQLStore, ws: Workspace) -> dict[str, dict[str, tuple[int, int | None, int | None]]]:
    """Live contact → name → (count, first, last) of its visible history, from the events in Python."""
    async with store.db.read() as conn:
        contacts = await conn.fetch_all("SELECT id, merged_into, visitor_floor FROM contacts WHERE workspace_id = ?",
                                        (ws.id,))
        events = await conn.fetch_all("SELECT e.contact_id, n.name, e.role, e.created_at FROM events e "
                                      "JOIN event_names n ON n.id = e.event_name_id WHERE e.workspace_id = ?",
                                      (ws.id,))
    by_id = {c["id"]: c for c in contacts}
    out: dict[str, dict[str, tuple[int, int | None, int | None]]] = {
        c["id"]: {} for c in contacts if c["merged_into"] is None}
    for e in events:
        source = by_id[e["contact_id"]]
        floor = source["visitor_floor"]
        if floor is not None and e["role"] == "visitor" and e["created_at"] < floor:
            continue
        stats = out[source["merged_into"] or source["id"]]
        n, first, last = stats.get(e["name"], (0, None, None))
        t = e["created_at"]
        stats[e["name"]] = (n + 1, t if first is None else min(first, t), t if last is None else max(last, t))
    return out


def matches(f: EventFilter, stat: tuple[int, int | None, int | None], now: int) -> bool:
    n, first, last = stat
    if f.op in ("done", "not_done"):
        return (n > 0) == (f.op == "done")
    if f.op.startswith("count"):
        return {"count_gt": n > f.value, "count_lt": n < f.value, "count_eq": n == f.value}[f.op]
    when = first if f.op.startswith("first") else last
    if when is None:
        return False
    moment = now - f.value * DAY
    day = moment - moment % DAY
    return {"gt": when < moment, "lt": when > moment, "eq": day <= when <= day + DAY - 1}[f.op.rsplit("_", 1)[1]]


FILTERS = [[EventFilter("done", "uploaded")], [EventFilter("not_done", "paid")],
           [EventFilter("count_gt", "viewed", 1)], [EventFilter("count_lt", "uploaded", 2)],
           [EventFilter("count_eq", "shared", 1)], [EventFilter("first_gt", "viewed", 60)],
           [EventFilter("first_lt", "paid", 100)], [EventFilter("last_lt", "uploaded", 30)],
           [EventFilter("last_gt", "shared", 20)],
           [EventFilter("count_gt", "viewed", 0), EventFilter("last_lt", "paid", 120)],
           [EventFilter("done", "never-tracked")], [EventFilter("not_done", "never-tracked")]]


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_stats_stay_exact_and_filters_match_a_naive_reference(store: SQLStore, seed: int,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    ws = await store.create_workspace("Stats")
    now = int(time.time())
    await workload(store, ws, random.Random(seed), now)

    kept, fresh = await recount(store)
    assert kept == fresh and kept

    expected = await reference(store, ws)
    async with store.db.read() as conn:
        rows = await conn.fetch_all("SELECT id, role, COALESCE(last_seen_at, created_at) AS seen FROM contacts "
                                    "WHERE workspace_id = ? AND merged_into IS NULL", (ws.id,))
    order = [r["id"] for r in sorted(rows, key=lambda r: (r["seen"], r["id"]), reverse=True)]
    roles = {r["id"]: r["role"] for r in rows}
    for filters in FILTERS:
        want = [cid for cid in order if all(matches(f, expected[cid].get(f.event_name, (0, None, None)), now)
                                            for f in filters)]
        for drive in (-1, 10**9):  # the walk, and the aggregate over the driving name's stats rows
            monkeypatch.setattr(admin_reads, "DRIVE_MAX_EVENTS", drive)
            got, after = [], None
            while True:
                page = await store.admin_contacts(ws, filters=filters, after=after, limit=4, now=now)
                got += [(lc.contact.id, lc.stats) for lc in page.contacts]
                if page.next_after is None:
                    break
                after = page.next_after
            assert [cid for cid, _ in got] == want, (filters, drive)
            for cid, stats in got:
                assert stats == tuple(expected[cid].get(f.event_name, (0, None, None)) for f in filters)
        count, _ = await store.messages.audience_contacts(ws, ROLES, filters, count_only=True, now=now)
        assert count == len(want), filters
        leads = [cid for cid in want if roles[cid] == "lead"]
        lead_count, _ = await store.messages.audience_contacts(ws, ["lead"], filters, count_only=True, now=now)
        assert lead_count == len(leads), filters

    for cid in order:
        contact = await store.get_contact(ws, cid)
        assert contact is not None
        summary = {s["name"]: (s["count"], s["first"], s["last"]) for s in await store.event_summary(ws, contact)}
        assert summary == expected[cid]


async def test_the_purge_keeps_a_busy_visitors_stats_exact_batch_by_batch(store: SQLStore) -> None:
    """The purge takes what it deleted off the stats rows (a count, two index probes) instead of recounting the
    keys: each batch leaves the table equal to a recount, whichever of a key's expired events it happened to
    delete (its latest, its first, all of them), with ingest adding old and new events to the same keys
    between and alongside the batches (on PostgreSQL, in transactions of their own at the same time)."""
    ws = await store.create_workspace("Busy visitor")
    now = int(time.time())
    cutoff = now - 90 * DAY
    visitor, other = (await store.create_visitor(ws)).id, (await store.create_visitor(ws)).id
    rng = random.Random(7)
    sent = 0

    async def track(contact_id: str, n: int) -> None:
        nonlocal sent
        events = [NewEvent(rng.choice(NAMES[:2]), now - rng.randrange(150 * DAY), f"b{sent + k}", {}, {})
                  for k in range(n)]
        sent += n
        await store.append_events(AppendRequest(ws.id, contact_id, "js", events))

    await track(visitor, 120)
    await track(other, 15)
    batches = 0
    while True:
        done, _, _ = await asyncio.gather(store.purge_expired_batch(ws, cutoff, batch_size=7),
                                          track(visitor, 2), track(other, 1))
        batches += 1
        kept, fresh = await recount(store)
        assert kept == fresh, f"after purge batch {batches}"
        if done == (0, 0) and batches > 3:
            break
        if batches > 200:
            # the tracks add about 1.2 expired events per batch; the purge takes 7: it ends well before
            raise AssertionError("the purge did not finish")
    async with store.db.read() as conn:
        left = await conn.fetch_one("SELECT COUNT(*) AS n FROM events WHERE role = 'visitor' AND created_at < ?",
                                    (cutoff,))
    assert left is not None and left["n"] <= 3  # only what the last batch's tracks added


@pytest.mark.empty_store
async def test_the_migration_backfills_the_stats_from_stored_events(store_url: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A database at version 12 with events (visitor-phase and not, two names, two contacts) upgrades with
    stats equal to a recount, and without the dropped events index."""
    from trailmark.store import db as sqlite_db
    from trailmark.store import postgres_db
    from trailmark.store.schema import MIGRATIONS

    with monkeypatch.context() as patch:
        for module in (sqlite_db, postgres_db):
            patch.setattr(module, "MIGRATIONS", [m for m in MIGRATIONS if m[0] <= 12])
        old = open_store(store_url)
        await old.open()
        ws = await old.create_workspace("Old")
        a, b = await old.create_visitor(ws), await old.create_visitor(ws)
        now = int(time.time())

        async def job(conn: Any) -> None:
            await conn.execute("INSERT INTO event_names (workspace_id, name, created_at) VALUES (?, 'x', ?), "
                               "(?, 'y', ?)", (ws.id, now, ws.id, now))
            names = [r["id"] for r in await conn.fetch_all("SELECT id FROM event_names ORDER BY name")]
            rows = [(ws.id, cid, names[k % 2], now - k * DAY, now, role, "js", f"{cid}-{k}")
                    for cid in (a.id, b.id) for k in range(7) for role in ("visitor", "lead")[k % 2:k % 2 + 1]]
            await conn.executemany("INSERT INTO events (workspace_id, contact_id, event_name_id, created_at, "
                                   "received_at, role, source, dedupe_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)

        await old.db.write(job)
        await old.close()
    new = open_store(store_url)
    await new.open()
    try:
        kept, fresh = await recount(new)
        assert kept == fresh and len(kept) == 4  # 2 contacts × 2 names, one phase each (x visitor, y lead)
        assert sum(r[3] for r in kept) == 14
        async with new.db.read() as conn:
            if new.db.dialect.name == "sqlite":
                found = await conn.fetch_all("SELECT name FROM sqlite_master WHERE name = 'events_name_contact'")
            else:
                found = await conn.fetch_all("SELECT indexname FROM pg_indexes WHERE indexname = 'events_name_contact' "
                                             "AND schemaname = current_schema()")
        assert not found
    finally:
        await new.close()


async def test_a_purge_round_walks_on_from_its_cursor_and_misses_nothing(store: SQLStore) -> None:
    """``purge_workspace`` keeps a cursor (the newest ``created_at`` it deleted) so each batch starts where the
    last stopped instead of walking past the rows it may not delete again. Nothing deletable is missed: many rows
    share one second across batch boundaries (the cursor is inclusive), a converted lead's visitor-phase events sit
    among them and stay, and expired page views go after the events."""
    from trailmark.retention import purge_workspace
    from trailmark.store.page_views import NewPageView

    ws = await store.create_workspace("Cursor")
    now = int(time.time())
    old = now - 100 * DAY
    visitors = [(await store.create_visitor(ws)).id for _ in range(3)]
    lead = (await store.create_visitor(ws)).id
    for k, cid in enumerate([*visitors, lead]):
        events = [NewEvent(NAMES[j % 3], old + (j % 4) // 3, f"{cid}-{j}", {}, {}) for j in range(9)]  # 2 seconds
        await store.append_events(AppendRequest(ws.id, cid, "js", events))
        await store.append_page_views(ws, cid, [NewPageView(f"https://site.example/{j}", None, None, old + j % 2,
                                                            f"pv-{cid}-{j}") for j in range(4 + k)])
    await store.convert_to_lead(ws, lead, reason="t", proof="t")
    await store.append_events(AppendRequest(ws.id, visitors[0], "js", [NewEvent("viewed", now, "fresh", {}, {})]))

    assert await purge_workspace(store, ws, batch_size=4) == (27 + 4 + 5 + 6, 0)
    async with store.db.read() as conn:
        left = await conn.fetch_all("SELECT contact_id, created_at FROM events ORDER BY contact_id, dedupe_key")
        views = await conn.fetch_all("SELECT contact_id FROM page_views")
    assert sorted((r["contact_id"], r["created_at"] >= now) for r in left) == sorted(
        [(lead, False)] * 9 + [(visitors[0], True)])
    assert [r["contact_id"] for r in views] == [lead] * 7
    kept, fresh = await recount(store)
    assert kept == fresh
