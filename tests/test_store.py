"""The store on both backends: migrations, dedupe, the 120-name limit, conversions and merges, history.

"Several processes" are played by several stores opened on one database (each with its own connections
and, on SQLite, its own writer), or by real ``python -m trailmark migrate`` subprocesses.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from trailmark.domain_errors import InvalidMerge, NameLimitReached
from trailmark.store import SQLStore, open_store
from trailmark.store.admin_reads import EventFilter, _correlated_condition
from trailmark.store.models import AppendRequest, NewEvent, Workspace
from trailmark.store.name_policy import MAX_ACTIVE_EVENT_NAMES
from trailmark.store.postgres_db import redact, to_dollar
from trailmark.store.schema import MIGRATIONS

DAY = 86400
ROOT = Path(__file__).resolve().parent.parent


@contextlib.asynccontextmanager
async def stores(url: str, n: int = 1) -> AsyncIterator[list[SQLStore]]:
    opened = [open_store(url) for _ in range(n)]
    for s in opened:  # one after the other: concurrent opening is tested on its own
        await s.open()
    try:
        yield opened
    finally:
        for s in opened:
            await s.close()


@pytest.fixture
async def ws(store: SQLStore) -> Workspace:
    return await store.create_workspace("Store test")


def ev(key: str, name: str = "viewed-page", created_at: int | None = None) -> NewEvent:
    return NewEvent(event_name=name, created_at=int(time.time()) if created_at is None else created_at,
                    dedupe_key=key, metadata={"k": key}, metadata_types={"k": "string"})


async def append(store: SQLStore, ws: Workspace, contact_id: str, *events: NewEvent) -> list[str]:
    results = await store.append_events(AppendRequest(ws.id, contact_id, "js", list(events)))
    return [r.status for r in results]


async def timeline(store: SQLStore, ws: Workspace, contact_id: str) -> list[str]:
    contact = await store.get_contact(ws, contact_id)
    assert contact is not None
    return sorted(e.event_name for e in await store.events_for(ws, contact, limit=1000))


async def schema_versions(store: SQLStore) -> list[int]:
    async with store.db.read() as conn:
        rows = await conn.fetch_all("SELECT version FROM schema_migrations ORDER BY version")
    return [r["version"] for r in rows]


# ------------------------------------------------------------------ migrations
@pytest.mark.empty_store
async def test_migrations_are_idempotent(store_url):
    async with stores(store_url) as [first]:
        created = await first.create_workspace("Kept")
    async with stores(store_url) as [again]:  # opening again applies nothing and loses nothing
        assert [w.app_id for w in await again.list_workspaces()] == [created.app_id]
        assert await schema_versions(again) == [v for v, _, _ in MIGRATIONS]


@pytest.mark.empty_store
async def test_concurrent_migrations_from_several_stores_and_processes(store_url):
    # Several stores in this process and several `trailmark migrate` processes, all at once, on an empty
    # database: every one succeeds and each version is applied exactly once.
    cmd = [sys.executable, "-m", "trailmark", "migrate", "--database", store_url]
    procs = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(4)]
    try:
        opened = [open_store(store_url) for _ in range(4)]
        await asyncio.gather(*(s.open() for s in opened))
        try:
            outputs = [await asyncio.to_thread(p.communicate, timeout=60) for p in procs]
            for proc, (_, err) in zip(procs, outputs, strict=True):
                assert proc.returncode == 0, err.decode()
            assert await schema_versions(opened[0]) == [v for v, _, _ in MIGRATIONS]
            await opened[0].create_workspace("After concurrent migrations")
        finally:
            for s in opened:
                await s.close()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


async def test_execute_returns_the_affected_row_count(store, ws):
    for _ in range(3):
        await store.create_visitor(ws)

    async def job(conn):
        return await conn.execute("UPDATE contacts SET name = ? WHERE workspace_id = ?", ("x", ws.id))

    assert await store.db.write(job) == 3


# ------------------------------------------------------------------ appending events
async def test_append_dedupes_on_the_client_key(store, ws):
    v = await store.create_visitor(ws)
    assert await append(store, ws, v.id, ev("k1"), ev("k1"), ev("k2")) == ["accepted", "duplicate", "accepted"]
    assert await append(store, ws, v.id, ev("k1")) == ["duplicate"]
    assert await store.count_events(ws) == 2
    [name] = await store.event_names(ws)
    assert name.event_count == 2


async def test_the_same_event_sent_to_several_stores_at_once_is_stored_once(store_url):
    async with stores(store_url, 3) as many:
        ws = await many[0].create_workspace("Dedupe")
        v = await many[0].create_visitor(ws)
        keys = [f"e{i}" for i in range(20)]
        answers = await asyncio.gather(*(append(s, ws, v.id, ev(k)) for k in keys for s in many for _ in range(2)))
        statuses = [status for answer in answers for status in answer]
        assert statuses.count("accepted") == len(keys)
        assert statuses.count("duplicate") == len(keys) * 5
        assert await many[1].count_events(ws) == len(keys)
        [name] = await many[2].event_names(ws)
        assert name.event_count == len(keys)


async def test_event_name_limit_holds_under_concurrency(store_url):
    async with stores(store_url, 3) as many:
        ws = await many[0].create_workspace("Limit")
        v = await many[0].create_visitor(ws)
        existing = MAX_ACTIVE_EVENT_NAMES - 2
        await append(many[0], ws, v.id, *[ev(f"old{i}", f"name-{i}") for i in range(existing)])

        async def new_name(i: int) -> str:
            try:
                return (await append(many[i % 3], ws, v.id, ev(f"new{i}", f"fresh-{i}")))[0]
            except NameLimitReached:
                return "refused"

        answers = await asyncio.gather(*(new_name(i) for i in range(10)))
        assert sorted(answers) == ["accepted"] * 2 + ["refused"] * 8
        names = await many[1].event_names(ws)
        assert len([n for n in names if not n.archived]) == MAX_ACTIVE_EVENT_NAMES
        assert await many[2].count_events(ws) == existing + 2
        # Known names still go through at the limit.
        assert await append(many[0], ws, v.id, ev("again", "name-0")) == ["accepted"]


# ------------------------------------------------------------------ conversions and merges
async def test_convert_to_lead_twice_at_once_yields_one_lead(store_url):
    async with stores(store_url, 2) as (a, b):
        ws = await a.create_workspace("Convert")
        v = await a.create_visitor(ws)
        leads = await asyncio.gather(*(s.convert_to_lead(ws, v.id, email="l@example.com", reason="test", proof="none")
                                       for s in (a, b, a, b)))
        assert {c.id for c in leads} == {v.id} and {c.role for c in leads} == {"lead"}
        merges = await a.merges_for(ws, v.id)
        assert [m.kind for m in merges] == ["convert"]


async def test_concurrent_pings_lose_no_attribute(store_url):
    async with stores(store_url, 2) as (a, b):
        ws = await a.create_workspace("Touch")
        v = await a.create_visitor(ws)
        await asyncio.gather(*(s.touch_contact(ws, v.id, {f"attr{i}": i}) for i in range(12) for s in [(a, b)[i % 2]]))
        contact = await a.get_contact(ws, v.id)
        assert contact is not None and contact.custom_attributes == {f"attr{i}": i for i in range(12)}


async def test_identify_user_merges_visitor_into_existing_user_keeping_every_event_once(store, ws):
    user = await store.create_contact(ws, "user", external_id="u-1")
    await append(store, ws, user.id, ev("u1", "signed-up"))
    visitor = await store.create_visitor(ws)
    await append(store, ws, visitor.id, ev("v1", "viewed-pricing"), ev("v2", "started-trial"))
    survivor = await store.identify_user(ws, visitor.id, user_id="u-1", email=None, reason="boot", proof="none")
    assert survivor.id == user.id
    assert await timeline(store, ws, user.id) == ["signed-up", "started-trial", "viewed-pricing"]
    assert (await store.get_contact(ws, visitor.id)).merged_into == user.id
    # Events sent later with the visitor's old session land on the user, once.
    await append(store, ws, visitor.id, ev("v3", "upgraded"), ev("v1", "viewed-pricing"))
    assert await timeline(store, ws, user.id) == ["signed-up", "started-trial", "upgraded", "viewed-pricing"]
    assert await store.count_events(ws) == 4


async def test_two_visitors_identifying_as_one_new_user_at_once_make_one_user(store_url):
    async with stores(store_url, 2) as (a, b):
        ws = await a.create_workspace("Identify")
        visitors = [await a.create_visitor(ws) for _ in range(4)]
        for i, v in enumerate(visitors):
            await append(a, ws, v.id, ev(f"v{i}", f"page-{i}"))
        users = await asyncio.gather(*(s.identify_user(ws, v.id, user_id="new-user", email=None, reason="boot",
                                                       proof="none")
                                       for s, v in zip((a, b, a, b), visitors, strict=True)))
        assert len({u.id for u in users}) == 1
        [user] = {u.id for u in users}
        found = await a.find_contact(ws, user_id="new-user")
        assert found is not None and found.id == user
        assert await timeline(a, ws, user) == [f"page-{i}" for i in range(4)]
        kinds = sorted(m.kind for m in await a.merges_for(ws, user) if m.into_contact == user)
        assert kinds == ["convert", "merge", "merge", "merge"]


async def test_same_visitor_identifying_twice_at_once_converts_once(store_url):
    async with stores(store_url, 2) as (a, b):
        ws = await a.create_workspace("Two tabs")
        v = await a.create_visitor(ws)
        users = await asyncio.gather(*(s.identify_user(ws, v.id, user_id="tabs", email=None, reason="boot",
                                                       proof="none") for s in (a, b, a, b)))
        assert {u.id for u in users} == {v.id}
        assert [m.kind for m in await a.merges_for(ws, v.id)] == ["convert"]


async def test_undo_merge_restores_the_visitors_own_timeline(store, ws):
    user = await store.create_contact(ws, "user", external_id="u-2")
    await append(store, ws, user.id, ev("u1", "signed-up"))
    visitor = await store.create_visitor(ws)
    await append(store, ws, visitor.id, ev("v1", "viewed-pricing"))
    await store.identify_user(ws, visitor.id, user_id="u-2", email=None, reason="boot", proof="none")
    [merge] = [m for m in await store.merges_for(ws, user.id) if m.kind == "merge"]
    undone = await store.undo_merge(ws, merge.id, "teammate@example.com")
    assert undone.undone_at is not None
    assert await timeline(store, ws, visitor.id) == ["viewed-pricing"]
    assert await timeline(store, ws, user.id) == ["signed-up"]
    with pytest.raises(InvalidMerge):
        await store.undo_merge(ws, merge.id, "teammate@example.com")


async def test_undo_conversion_makes_a_visitor_again(store, ws):
    visitor = await store.create_visitor(ws)
    await store.convert_to_lead(ws, visitor.id, email="x@example.com", reason="test", proof="none")
    [convert] = await store.merges_for(ws, visitor.id)
    await store.undo_merge(ws, convert.id, "teammate@example.com")
    again = await store.get_contact(ws, visitor.id)
    assert again.role == "visitor" and again.visitor_floor is None and again.contacted_at is None


async def test_events_for_hides_visitor_events_older_than_the_floor(store, ws):
    now = int(time.time())
    visitor = await store.create_visitor(ws)
    await append(store, ws, visitor.id, ev("old", "ancient-visit", now - 100 * DAY),
                 ev("recent", "recent-visit", now - 10 * DAY))
    assert await timeline(store, ws, visitor.id) == ["ancient-visit", "recent-visit"]
    lead = await store.convert_to_lead(ws, visitor.id, email="f@example.com", reason="test", proof="none")
    assert await timeline(store, ws, lead.id) == ["recent-visit"]
    summary = await store.event_summary(ws, lead)
    assert [(s["name"], s["count"]) for s in summary] == [("recent-visit", 1)]
    # Paging by (created_at, id) and the since bound work over the merged history too.
    await append(store, ws, lead.id, ev("now", "asked-question"))
    [newest] = await store.events_for(ws, lead, limit=1)
    older = await store.events_for(ws, lead, limit=10, before=(newest.created_at, newest.id))
    assert [e.event_name for e in older] == ["recent-visit"]
    assert [e.event_name for e in await store.events_for(ws, lead, limit=10, since=now - DAY)] == ["asked-question"]


async def summary_row_by_row(store: SQLStore, ws: Workspace, contact) -> list[tuple[str, int, int, int]]:
    """The summary the slow way: every event of every source, the visibility condition row by row."""
    async with store.db.read() as conn:
        sources = await store.sources(conn, contact)
        rows = []
        for s in sources:
            rows += await conn.fetch_all(
                "SELECT n.name, e.created_at FROM events e JOIN event_names n ON n.id = e.event_name_id "
                "WHERE e.contact_id = ? AND (CAST(? AS BIGINT) IS NULL OR e.role <> 'visitor' OR e.created_at >= ?)",
                (s.contact_id, s.visitor_floor, s.visitor_floor))
    by_name: dict[str, list[int]] = {}
    for r in rows:
        by_name.setdefault(r["name"], []).append(r["created_at"])
    return sorted(((n, len(t), min(t), max(t)) for n, t in by_name.items()), key=lambda x: (-x[3], x[0]))


async def test_summary_and_merge_history_count_only_visible_events_across_merges(store, ws):
    """Visitor-phase events older than a source's floor are hidden, others shown (whatever their age), in
    the profile summary and in each merge's visible count alike: a lead's backdated lead-phase event and the
    user's own old event count, the visitors' old visits do not, and a name with only hidden events is absent."""
    now = int(time.time())
    user = await store.create_contact(ws, "user", external_id="u-hist")
    await append(store, ws, user.id, ev("u-old", "signed-up", now - 400 * DAY),
                 ev("u-new", "viewed-pricing", now - DAY))
    lead = await store.create_visitor(ws)
    await append(store, ws, lead.id, ev("l-hidden", "viewed-pricing", now - 200 * DAY),
                 ev("l-hidden-2", "read-docs", now - 150 * DAY), ev("l-shown", "viewed-pricing", now - 30 * DAY))
    lead = await store.convert_to_lead(ws, lead.id, email="hist@example.com", reason="test", proof="none")
    await append(store, ws, lead.id, ev("l-backdated", "asked-question", now - 300 * DAY),
                 ev("l-lead", "viewed-pricing", now - 2 * DAY))
    visitor = await store.create_visitor(ws)
    await append(store, ws, visitor.id, ev("v-hidden", "viewed-pricing", now - 120 * DAY),
                 ev("v-hidden-2", "started-trial", now - 95 * DAY), ev("v-shown", "viewed-pricing", now - 5 * DAY),
                 ev("v-shown-2", "started-trial", now - 3 * DAY))
    # The lead's own profile before any merge: its visitor phase from the floor on, and its lead phase.
    assert [(s["name"], s["count"], s["first"], s["last"]) for s in await store.event_summary(ws, lead)] == [
        ("viewed-pricing", 2, now - 30 * DAY, now - 2 * DAY), ("asked-question", 1, now - 300 * DAY, now - 300 * DAY)]
    await store.identify_user(ws, lead.id, user_id="u-hist", email=None, reason="boot", proof="none")
    user = await store.identify_user(ws, visitor.id, user_id="u-hist", email=None, reason="boot", proof="none")

    summary = await store.event_summary(ws, user)
    expected = [("viewed-pricing", 4, now - 30 * DAY, now - DAY), ("started-trial", 1, now - 3 * DAY, now - 3 * DAY),
                ("asked-question", 1, now - 300 * DAY, now - 300 * DAY),
                ("signed-up", 1, now - 400 * DAY, now - 400 * DAY)]
    assert [(s["name"], s["count"], s["first"], s["last"]) for s in summary] == expected
    assert all(type(s["count"]) is int for s in summary)
    assert await summary_row_by_row(store, ws, user) == expected
    assert sum(s["count"] for s in summary) == len(await timeline(store, ws, user.id)) == 7

    history = {(v.merge.kind, v.merge.from_contact): v.visible_events
               for v in await store.admin_merge_history(ws, user)}
    assert history == {("merge", lead.id): 3, ("merge", visitor.id): 2}
    lead_history = {(v.merge.kind, v.merge.from_contact): v.visible_events
                    for v in await store.admin_merge_history(ws, lead)}
    assert lead_history == {("convert", lead.id): 1, ("merge", lead.id): 3}  # the conversion kept one visit
    assert await store.event_summary(ws, await store.create_visitor(ws)) == []


async def test_contact_filter_probes_search_one_name_s_stats_rows(store, ws):
    """SQLite's plan for a contact filter: each probe searches the stats table by its primary key (the name
    first, so one name's probes stay in its pages; not the contact index, which the planner could take for
    the same two columns), and the recount of a row straddling a floor searches the covering events index."""
    if store.db.dialect.name != "sqlite":
        pytest.skip("PostgreSQL picks its plan from statistics")
    for op in ("done", "count_gt", "last_lt"):
        cond, args = _correlated_condition(EventFilter(op, "x", 1), 1, 1_000_000)
        async with store.db.read() as conn:
            rows = await conn.fetch_all(f"EXPLAIN QUERY PLAN SELECT c.id FROM contacts c WHERE c.workspace_id = ? "
                                        f"AND {cond}", (ws.id, *args))
        details = [r["detail"] for r in rows]
        on_stats = [d for d in details if d.startswith(("SEARCH a ", "SCAN a "))]
        on_events = [d for d in details if d.startswith(("SEARCH e ", "SCAN e "))]
        assert on_stats and on_events, details
        assert all(d.startswith("SEARCH a USING PRIMARY KEY (event_name_id=? AND contact_id=?)") for d in on_stats)
        assert all(d.startswith("SEARCH e USING COVERING INDEX events_contact_name_role_time (contact_id=? "
                                "AND event_name_id=? AND role=? AND created_at>?)") for d in on_events), on_events


async def test_event_name_reads_and_admin_writes(store, ws):
    v = await store.create_visitor(ws)
    await append(store, ws, v.id, ev("a", "clicked"), ev("b", "clicked"))
    await store.set_event_description(ws, "clicked", "A click")
    await store.set_event_archived(ws, "clicked", True)
    name = await store.event_name(ws, "clicked")
    assert name is not None and name.archived and name.description == "A click" and name.event_count == 2
    assert await append(store, ws, v.id, ev("c", "clicked")) == ["dropped"]
    assert (await store.event_name(ws, "clicked")).dropped_count == 1
    await store.set_event_archived(ws, "clicked", False)
    counts = await store.daily_counts(ws, name.id, days=3)
    assert sum(c for _, c in counts) == 2
    assert await store.metadata_drops(ws, name.id) == []


# ------------------------------------------------------------------ the PostgreSQL adapter, no server needed
def test_placeholders_become_numbered_outside_quotes():
    assert to_dollar("SELECT ? , '?' , \"a?\" FROM t WHERE a = ? -- ?\nAND b = 'it''s ?' AND c IN (?, ?)") == \
        "SELECT $1 , '?' , \"a?\" FROM t WHERE a = $2 -- ?\nAND b = 'it''s ?' AND c IN ($3, $4)"


def test_postgres_password_is_hidden_in_repr():
    from trailmark.store.postgres_db import PostgresDatabase

    db = PostgresDatabase("postgresql://tm:s3cret@db.example:5432/trailmark")
    assert "s3cret" not in repr(db) and "tm:***@db.example:5432" in repr(db)
    assert "s3cret" not in repr(open_store("postgresql://tm:s3cret@db.example/trailmark").db)
    assert redact("postgresql://tm@db/x") == "postgresql://tm@db/x"


async def test_sqlite_writer_outlives_a_job_raising_base_exceptions_and_close_drains(tmp_path):
    """A write job raising CancelledError fails alone (its neighbour commits, the writer lives on);
    close() answers what was queued before it, and later writes are refused rather than left hanging."""
    from trailmark.store.db import SQLiteDatabase

    db = SQLiteDatabase(str(tmp_path / "w.db"))
    await db.open()

    async def insert(conn):
        await conn.execute("INSERT INTO schema_migrations VALUES (1000, 0)")
        return "stored"

    async def cancelled(conn):
        raise asyncio.CancelledError()

    async def count(conn):
        row = await conn.fetch_one("SELECT COUNT(*) AS n FROM schema_migrations WHERE version = 1000")
        return row["n"]

    results = await asyncio.gather(db.write(insert), db.write(cancelled), return_exceptions=True)
    assert results[0] == "stored" and isinstance(results[1], RuntimeError)
    assert await db.write(count) == 1
    queued = asyncio.create_task(db.write(count))
    await asyncio.sleep(0)
    await db.close()
    assert await queued == 1
    with pytest.raises(RuntimeError, match="closed"):
        await db.write(count)


async def test_a_request_without_events_stores_nothing_and_fails_nothing(store, ws):
    contact = await store.create_visitor(ws)
    assert await append(store, ws, contact.id) == []
    assert await append(store, ws, contact.id, ev("k1")) == ["accepted"]  # the writer still works
