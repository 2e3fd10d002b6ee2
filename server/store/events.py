"""Events: the append path (one write job per group of requests), a contact's merged timeline and its
summary (a part of the store)."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..domain_errors import NameLimitReached, UnknownIdentity
from ..live import CHANNEL as LIVE_CHANNEL
from .contact_stats import StatsBatch, visible
from .db import Conn, Database
from .holders import find_holders, holder_of
from .models import (
    AppendRequest,
    Contact,
    EventResult,
    StoredEvent,
    Workspace,
)
from .name_policy import MAX_ACTIVE_EVENT_NAMES, NAME_LIMIT, reason_text, record_refusals, screen_new_names
from .sql_helpers import DAY, now_s, placeholders

_INSERT_CHUNK = 400  # rows per multi-row INSERT (11 parameters each; SQLite allows 32,766)

_EVENT_COLUMNS = ("e.id, e.contact_id, e.created_at, e.role, e.source, e.metadata, e.metadata_types, "
                  "n.name")


@dataclass(frozen=True)
class Source:
    """A contact whose events make up part of another contact's history."""

    contact_id: str
    visitor_floor: int | None


class Events:
    """Events: storing them (group commit, then the ``on_commit`` hooks) and reading a contact's merged
    history back (the timeline and its per-name summary)."""

    def __init__(self, db: Database, on_commit: list[Callable[[set[int]], None]]) -> None:
        self.db = db
        self.on_commit = on_commit  # the store's list: hooks added to it later are called too

    # ---------------------------------------------------------------- events: writing
    async def append_events(self, request: AppendRequest) -> list[EventResult]:
        """Store one request's events (all or nothing); returns after the commit."""
        result: list[EventResult] = await self.db.write_grouped(_append_group, request)
        for hook in self.on_commit:
            hook({request.workspace_id})
        return result

    async def append_many(self, requests: list[AppendRequest]) -> list[Any]:
        """Store many requests' events in one transaction: the importer's path (thousands of contacts
        with a few events each per chunk). The same writing code as :meth:`append_events`, run as one
        write job: one transaction and one commit for the lot, and no future per request.

        Returns, per request, its list of ``EventResult`` or the ``DomainError`` that refused it (nothing of
        that request written). If the transaction fails as a whole, each request is stored on its own
        through ``append_events`` (as group commit retries a failed batch), so one request cannot fail the
        others; the exception it raised then stands in its place."""
        if not requests:
            return []
        try:
            result: list[Any] = await self.db.write(lambda conn: _append_group(conn, requests))
        except Exception:
            return list(await asyncio.gather(*(self.append_events(r) for r in requests), return_exceptions=True))
        for hook in self.on_commit:
            hook({r.workspace_id for r in requests})
        return result

    # ---------------------------------------------------------------- events: reading
    async def sources(self, conn: Conn, contact: Contact) -> list[Source]:
        rows = await conn.fetch_all(
            "SELECT id, visitor_floor FROM contacts WHERE id = ? OR merged_into = ?", (contact.id, contact.id))
        return [Source(r["id"], r["visitor_floor"]) for r in rows]

    async def events_for(self, workspace: Workspace, contact: Contact, *, limit: int,
                         before: tuple[int, int] | None = None, since: int | None = None,
                         newer_than: int | None = None, event_name: str | None = None) -> list[StoredEvent]:
        """A contact's merged history, newest first: its own events and those of the contacts merged into
        it, minus visitor-phase events older than 90 days before contact. Keyset-paginated on
        ``(created_at, id)``; ``since`` bounds by age (the REST listing's 90-day window)."""
        async with self.db.read() as conn:
            sources = await self.sources(conn, contact)
            parts: list[str] = []
            args: list[Any] = []
            for source in sources:
                clause = f"SELECT {_EVENT_COLUMNS} FROM events e JOIN event_names n ON n.id = e.event_name_id " \
                         "WHERE e.contact_id = ?"
                part_args: list[Any] = [source.contact_id]
                if source.visitor_floor is not None:
                    clause += " AND (e.role <> 'visitor' OR e.created_at >= ?)"
                    part_args.append(source.visitor_floor)
                if before is not None:
                    clause += " AND (e.created_at < ? OR (e.created_at = ? AND e.id < ?))"
                    part_args += [before[0], before[0], before[1]]
                if since is not None:
                    clause += " AND e.created_at >= ?"
                    part_args.append(since)
                if newer_than is not None:
                    clause += " AND e.created_at > ?"
                    part_args.append(newer_than)
                if event_name is not None:
                    clause += " AND n.name = ?"
                    part_args.append(event_name)
                clause += " ORDER BY e.created_at DESC, e.id DESC LIMIT ?"
                part_args.append(limit)
                parts.append(f"SELECT * FROM ({clause}) AS s{len(parts)}")
                args += part_args
            sql = " UNION ALL ".join(parts) + " ORDER BY created_at DESC, id DESC LIMIT ?"
            rows = await conn.fetch_all(sql, (*args, limit))
        return [StoredEvent.from_row(r) for r in rows]

    async def event_summary(self, workspace: Workspace, contact: Contact) -> list[dict[str, Any]]:
        """Per event name: count, first, last over the contact's merged history (all time), most recent
        first. Read from the per-contact stats rows of each source (``contact_stats``): a few rows per name,
        whatever the number of events."""
        n, first, last = (visible(what, "a", "s.visitor_floor") for what in ("count", "first_at", "last_at"))
        async with self.db.read() as conn:
            rows = await conn.fetch_all(
                f"SELECT n.name, n.description, CAST(SUM({n}) AS BIGINT) AS count, MIN({first}) AS first, "
                f"MAX({last}) AS last FROM contacts s CROSS JOIN contact_event_stats a "
                "JOIN event_names n ON n.id = a.event_name_id WHERE (s.id = ? OR s.merged_into = ?) "
                f"AND a.contact_id = s.id GROUP BY n.name, n.description HAVING SUM({n}) > 0 "
                f"ORDER BY MAX({last}) DESC, n.name", (contact.id, contact.id))
        return [dict(name=r["name"], description=r["description"], count=r["count"], first=r["first"],
                     last=r["last"]) for r in rows]

    async def count_events(self, workspace: Workspace) -> int:
        async with self.db.read() as conn:
            row = await conn.fetch_one("SELECT COUNT(*) AS n FROM events WHERE workspace_id = ?", (workspace.id,))
        return int(row["n"]) if row else 0


async def create_event_name(conn: Conn, workspace_id: int, name: str, t: int) -> tuple[int, bool]:
    """``(id, archived)`` of the workspace's event name, made now unless a concurrent writer made it first;
    the caller holds the name lock and has checked the 120-name budget."""
    row = await conn.fetch_one(
        "INSERT INTO event_names (workspace_id, name, created_at) VALUES (?, ?, ?) "
        "ON CONFLICT (workspace_id, name) DO UPDATE SET name = excluded.name RETURNING id, archived",
        (workspace_id, name, t))
    assert row is not None
    return row["id"], bool(row["archived"])


async def lock_event_names(conn: Conn, workspace_id: int) -> None:
    """Serialise creation of event names per workspace across processes (the 120-name limit).
    SQLite's single writer already serialises; PostgreSQL takes a transaction-scoped advisory lock."""
    await conn.dialect.lock(conn, 7301, workspace_id)


async def _append_group(conn: Conn, requests: list[AppendRequest]) -> list[Any]:
    """Store many requests' events in the current transaction, with a handful of statements.

    Returns, per request, its list of :class:`EventResult` or an :class:`DomainError` (in which case nothing
    of that request was written). Checks run before any insert: the contact must exist, new event names
    must fit under the 120-active-names limit (a browser request's new names also under its budgets:
    name_policy.py, and only its events with a refused name are refused), archived names are dropped (and
    counted).
    """
    out: list[Any] = [None] * len(requests)
    t = now_s()

    # 1. Contacts: each request's contact must exist; events land on the contact now holding it.
    found = await find_holders(conn, [r.contact_id for r in requests])

    # 2. Event names, per workspace.
    names_by_ws: dict[int, set[str]] = defaultdict(set)
    for r in requests:
        names_by_ws[r.workspace_id].update(e.event_name for e in r.events)
    known: dict[tuple[int, str], tuple[int, bool]] = {}
    active: dict[int, int] = {}
    for ws_id, names in names_by_ws.items():
        if not names:  # a request without events: nothing to look up ("IN ()" is an error on PostgreSQL)
            continue
        names_list = sorted(names)
        rows = await conn.fetch_all(
            f"SELECT id, name, archived FROM event_names "
            f"WHERE workspace_id = ? AND name IN ({placeholders(len(names_list))})",
            (ws_id, *names_list))
        known.update({(ws_id, r["name"]): (r["id"], bool(r["archived"])) for r in rows})
        if any((ws_id, n) not in known for n in names):
            await lock_event_names(conn, ws_id)
            row = await conn.fetch_one("SELECT COUNT(*) AS n FROM event_names WHERE workspace_id = ? AND archived = 0",
                                       (ws_id,))
            active[ws_id] = int(row["n"]) if row else 0

    inserts: list[tuple[int, int, Any]] = []  # (request index, event index, row)
    dropped_archived: dict[int, int] = defaultdict(int)
    refusals: dict[tuple[int, str, str], int] = defaultdict(int)  # (workspace, name, reason) → events
    for i, req in enumerate(requests):
        holder = holder_of(found, req.contact_id, req.workspace_id)  # merged away: the survivor holds it now
        if holder is None:
            out[i] = UnknownIdentity("The identity token names no contact; ping again")
            continue
        contact_id, role = holder
        new_names = sorted({e.event_name for e in req.events if (req.workspace_id, e.event_name) not in known})
        refused: dict[str, str] = {}
        if req.browser is not None and new_names:
            new_names, refused = await screen_new_names(conn, req, contact_id, role, new_names,
                                                        active.get(req.workspace_id, 0), t)
        elif new_names and active.get(req.workspace_id, 0) + len(new_names) > MAX_ACTIVE_EVENT_NAMES:
            for name in new_names:
                refusals[(req.workspace_id, name, NAME_LIMIT)] += 1
            out[i] = NameLimitReached("Cannot have more than 120 active event names", "event_name")
            continue
        for name in new_names:
            known[(req.workspace_id, name)] = await create_event_name(conn, req.workspace_id, name, t)
            active[req.workspace_id] = active.get(req.workspace_id, 0) + 1
        results: list[EventResult | None] = []
        for j, ev in enumerate(req.events):
            if ev.event_name in refused:
                code = refused[ev.event_name]
                refusals[(req.workspace_id, ev.event_name, code)] += 1
                results.append(EventResult("refused", reason_text(code, ev.event_name, req)))
                continue
            name_id, archived = known[(req.workspace_id, ev.event_name)]
            if archived:
                dropped_archived[name_id] += 1
                results.append(EventResult("dropped", f"event '{ev.event_name}' is archived"))
                continue
            results.append(None)
            inserts.append((i, j, (req.workspace_id, contact_id, name_id, ev.created_at, t, role, req.source,
                                   ev.dedupe_key, json.dumps(ev.metadata) if ev.metadata else None,
                                   json.dumps(ev.metadata_types) if ev.metadata_types else None)))
        out[i] = results

    # 3. Insert; the unique index on (workspace, dedupe_key) turns a retried event into a duplicate.
    # Inserted in the order they were tracked, so ids (the timeline's tie-break within one second) keep
    # that order. Two processes storing the *same* events at once in different orders may deadlock on
    # PostgreSQL; that rare case is retried by PostgresDatabase (deadlocks are retryable).
    inserted: set[tuple[int, str]] = set()
    for start in range(0, len(inserts), _INSERT_CHUNK):
        chunk = inserts[start:start + _INSERT_CHUNK]
        values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk))
        rows = await conn.fetch_all(
            "INSERT INTO events (workspace_id, contact_id, event_name_id, created_at, received_at, role, source, "
            f"dedupe_key, metadata, metadata_types) VALUES {values} "
            "ON CONFLICT (workspace_id, dedupe_key) DO NOTHING RETURNING workspace_id, dedupe_key",
            [v for _, _, row in chunk for v in row])
        inserted.update((r["workspace_id"], r["dedupe_key"]) for r in rows)

    # 4. Per-event results and the aggregates (counts, first/last, daily counts, metadata drops).
    per_name: dict[int, list[int]] = defaultdict(list)
    per_day: dict[tuple[int, int], int] = defaultdict(int)
    drops: dict[tuple[int, str, str], int] = defaultdict(int)
    drop_events: dict[int, int] = defaultdict(int)
    claimed: set[tuple[int, str]] = set()
    contact_stats = StatsBatch()
    for i, j, row in inserts:
        ev = requests[i].events[j]
        key = (row[0], row[7])
        accepted = key in inserted and key not in claimed
        claimed.add(key)
        results = out[i]
        results[j] = EventResult("accepted" if accepted else "duplicate")
        if accepted:
            contact_stats.add(row[2], row[1], row[5], ev.created_at)
            per_name[row[2]].append(ev.created_at)
            per_day[(row[2], ev.created_at // DAY)] += 1
            if ev.dropped:
                drop_events[row[2]] += 1
                for d in ev.dropped:
                    drops[(row[2], d["key"][:255], d["reason"])] += 1
    if refusals:
        await record_refusals(conn, refusals, t)
    await contact_stats.write(conn)  # per-contact rows: rarely shared between transactions, so before the hot ones
    # The aggregates are hot rows that every ingest transaction updates. They are written last, in few
    # statements, so (on PostgreSQL) a transaction holds their locks for as few round trips as possible
    # before its COMMIT; rows go in key order, so concurrent transactions (other processes) can't deadlock.
    if drops:
        await conn.executemany(
            "INSERT INTO metadata_drops (event_name_id, key, reason, count, last_seen) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (event_name_id, key, reason) DO UPDATE SET count = metadata_drops.count + excluded.count, "
            "last_seen = excluded.last_seen", [(n, k, r, c, t) for (n, k, r), c in sorted(drops.items())])
    counters: list[tuple[int, int, int | None, int | None, int, int]] = [
        (name_id, len(times), min(times), max(times), drop_events.get(name_id, 0), 0)
        for name_id, times in per_name.items()]
    counters += [(name_id, 0, None, None, 0, n) for name_id, n in dropped_archived.items()]
    if counters:
        await _add_to_name_counters(conn, sorted(counters))
    if per_day:
        await conn.executemany(
            "INSERT INTO event_daily_counts (event_name_id, day, count) VALUES (?, ?, ?) ON CONFLICT "
            "(event_name_id, day) DO UPDATE SET count = event_daily_counts.count + excluded.count",
            [(n, d, c) for (n, d), c in sorted(per_day.items())])
    if per_name:
        # One notification per committed batch, delivered at COMMIT to every process's live view.
        workspaces = sorted({r.workspace_id for r in requests})
        await conn.dialect.notify(conn, LIVE_CHANNEL, ",".join(map(str, workspaces)))
    return out



async def _add_to_name_counters(conn: Conn, counters: list[tuple[int, int, int | None, int | None, int, int]]) -> None:
    """Every event name's counters: (id, events, first, last, with dropped metadata, dropped), id order.

    One statement per name, sent as one ``executemany`` (asyncpg pipelines it: one round trip). Not one
    ``UPDATE … FROM (VALUES …)``: its join may visit the rows in heap order, which differs between
    transactions, and two processes locking the same rows in different orders deadlock."""
    await conn.executemany(
        "UPDATE event_names SET event_count = event_count + CAST(? AS BIGINT), "
        "first_seen = CASE WHEN CAST(? AS BIGINT) IS NOT NULL "
        "  AND (first_seen IS NULL OR first_seen > CAST(? AS BIGINT)) "
        "  THEN CAST(? AS BIGINT) ELSE first_seen END, "
        "last_seen = CASE WHEN CAST(? AS BIGINT) IS NOT NULL AND (last_seen IS NULL OR last_seen < CAST(? AS BIGINT)) "
        "  THEN CAST(? AS BIGINT) ELSE last_seen END, "
        "dropped_metadata_count = dropped_metadata_count + CAST(? AS BIGINT), "
        "dropped_count = dropped_count + CAST(? AS BIGINT) WHERE id = ?",
        [(n, lo, lo, lo, hi, hi, hi, with_drops, dropped, name_id)
         for name_id, n, lo, hi, with_drops, dropped in counters])
