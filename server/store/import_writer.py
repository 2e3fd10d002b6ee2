"""The importer's lean writer: one chunk of validated historical events, grouped by contact, stored in one
transaction with a handful of set-based statements (``trailmark import``; the live paths use ``_append_group``).

It keeps every promise of the live path: an event whose dedupe key is already stored (or repeated in the
chunk) is a duplicate, stored once; a contact's new event names are created only while the workspace stays
within 120 active names (under the same per-workspace lock), else that contact's events are all refused and
counted as refused names; archived names drop their events (and count them); events land on the contact now
holding the imported one (after a merge), with its role. What it leaves out is what costs a chunk of 20,000
events most (measured, bench/import_speed.py): per-request bookkeeping and JSON encoding in the writer (the
reader process hands metadata over as JSON text), and many-row ``VALUES`` statements rebuilt per chunk.

A chunk's transaction (``_store``), step by step: ``_plan_rows`` (each group's contact, role, new names and
fate; the rows to insert), the insert, ``_count_stored`` (which rows were stored, counted per name, day and
dropped entry), ``_add_aggregates`` (the counters, daily counts and metadata-drop counts, per chunk, as ingest
adds them). Inserting: on SQLite, one prepared statement run by ``executemany``; its change count tells a
chunk whose rows were all new (a fresh import) or none (a re-run), else the new rows are read back by id (the
single writer makes every id above the table's previous maximum this transaction's). On PostgreSQL, ``COPY``
into a temporary staging table dropped at commit, then one ``INSERT … SELECT … ON CONFLICT DO NOTHING
RETURNING``. The per-contact stats (``contact_stats``) are added per chunk with the counters, as ingest does.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from ..domain_errors import NameLimitReached, UnknownIdentity
from ..live import CHANNEL as LIVE_CHANNEL
from .contact_stats import StatsBatch
from .db import Conn
from .events import create_event_name, lock_event_names
from .holders import find_holders, holder_of
from .models import AppendRequest, EventResult, NewEvent
from .name_policy import MAX_ACTIVE_EVENT_NAMES, NAME_LIMIT, record_refusals
from .sql_helpers import DAY, placeholders, tally

if TYPE_CHECKING:
    from .sql_store import SQLStore

_ACCEPTED, _DUPLICATE = EventResult("accepted"), EventResult("duplicate")  # shared: a chunk makes 20,000
_COLUMNS = ("workspace_id", "contact_id", "event_name_id", "created_at", "received_at", "role", "source",
            "dedupe_key", "metadata", "metadata_types")


class ImportEvent(NamedTuple):
    """One validated row: metadata already JSON text (None when empty), as the events table stores it. (A
    named tuple: a chunk makes 20,000, and a frozen dataclass costs three times as much to make.)"""

    name: str
    created_at: int
    dedupe_key: str
    metadata: str | None
    metadata_types: str | None
    dropped: Sequence[dict[str, str]] = ()


# One contact's events, in file order: (contact id, events). Outcome per group: its results, or the
# DomainError refusing it, or (through the fallback only) the exception that stopped it.
ContactEvents = tuple[str, list[ImportEvent]]
Outcome = list[EventResult] | BaseException


async def store_import_chunk(store: SQLStore, workspace_id: int, source: str,
                             groups: Sequence[ContactEvents]) -> list[Outcome]:
    """Store ``groups`` in one transaction; per group, its events' results or the DomainError refusing it
    (nothing of it stored; see ``Outcome``). If the transaction fails as a whole, the chunk goes through the store's
    ``append_many`` instead (which stores each contact on its own when the lot fails), so one bad row
    cannot lose its neighbours."""
    if not groups:
        return []
    try:
        outcomes: list[Outcome] = await store.db.write(lambda conn: _store(conn, workspace_id, source, groups))
    except Exception:
        return await store.append_many(as_append_requests(workspace_id, source, groups))
    for hook in store.on_commit:
        hook({workspace_id})
    return outcomes


async def _store(conn: Conn, ws_id: int, source: str, groups: Sequence[ContactEvents]) -> list[Outcome]:
    """The chunk's transaction, step by step: decide each group's fate and the rows to insert, insert them,
    count what was stored, add the counters."""
    t = int(time.time())
    planned = await _plan_rows(conn, ws_id, source, groups, t)
    bulk_insert = _insert_by_copy if conn.dialect.bulk_copy else _insert_sqlite
    inserted = await bulk_insert(conn, planned.rows)
    stored = _count_stored(groups, planned, inserted)
    if planned.refusals:
        await record_refusals(conn, planned.refusals, t)
    await stored.contact_stats.write(conn)
    await _add_aggregates(conn, stored.per_name, planned.archived_drops, stored.per_day, stored.drops, t)
    if stored.per_name:  # the other processes' live views hear of the chunk at COMMIT
        await conn.dialect.notify(conn, LIVE_CHANNEL, str(ws_id))
    return cast(list[Outcome], planned.out)  # every group was given its outcome by _plan_rows


@dataclass
class _Planned:
    """What ``_plan_rows`` decided: each group's outcome (its results, every row a duplicate until the insert
    says otherwise, or the error refusing it), the rows to insert with their (group, event) owners, and the
    archived names' and refused names' counts."""

    out: list[Outcome | None]
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    owners: list[tuple[int, int]] = field(default_factory=list)
    archived_drops: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    refusals: dict[tuple[int, str, str], int] = field(default_factory=lambda: defaultdict(int))


async def _plan_rows(conn: Conn, ws_id: int, source: str, groups: Sequence[ContactEvents], t: int) -> _Planned:
    """Per group: the contact now holding it (after a merge) and its role, its new names (created within the
    120-name limit, under the name lock, else the group is refused), its archived names' events dropped."""
    holders = await find_holders(conn, [cid for cid, _ in groups])
    names = {e.name for _, events in groups for e in events}
    known = await _known_names(conn, ws_id, names)
    active = await _lock_and_count_names(conn, ws_id) if names - known.keys() else 0

    planned = _Planned([None] * len(groups))
    out, rows, owners = planned.out, planned.rows, planned.owners
    for i, (cid, events) in enumerate(groups):
        holder = holder_of(holders, cid, ws_id)  # merged away: the survivor holds the history now
        if holder is None:
            out[i] = UnknownIdentity("The identity token names no contact; ping again")
            continue
        contact_id, role = holder
        new_names = sorted({e.name for e in events if e.name not in known})
        if new_names and active + len(new_names) > MAX_ACTIVE_EVENT_NAMES:
            for name in new_names:
                planned.refusals[(ws_id, name, NAME_LIMIT)] += 1
            out[i] = NameLimitReached("Cannot have more than 120 active event names", "event_name")
            continue
        for name in new_names:
            known[name] = await create_event_name(conn, ws_id, name, t)
            active += 1
        results: list[EventResult] = []
        for j, ev in enumerate(events):
            name_id, archived = known[ev.name]
            if archived:
                planned.archived_drops[name_id] += 1
                results.append(EventResult("dropped", f"event '{ev.name}' is archived"))
                continue
            results.append(_DUPLICATE)  # until the insert says otherwise
            rows.append((ws_id, contact_id, name_id, ev.created_at, t, role, source, ev.dedupe_key, ev.metadata,
                         ev.metadata_types))
            owners.append((i, j))
        out[i] = results
    return planned


@dataclass
class _Stored:
    """What the insert stored, counted for the aggregates: per name id [events, first, last, events with
    dropped metadata], per (name id, day) events, per (name id, key, reason) dropped metadata entries."""

    per_name: dict[int, list[int]] = field(default_factory=dict)
    per_day: dict[tuple[int, int], int] = field(default_factory=lambda: defaultdict(int))
    drops: dict[tuple[int, str, str], int] = field(default_factory=lambda: defaultdict(int))
    contact_stats: StatsBatch = field(default_factory=StatsBatch)  # per (name, contact, phase)


def _count_stored(groups: Sequence[ContactEvents], planned: _Planned, inserted: set[str] | None) -> _Stored:
    """Mark the stored rows accepted and count them; ``inserted``: the new dedupe keys, None when every row
    was stored."""
    stored = _Stored()
    per_name, per_day, drops = stored.per_name, stored.per_day, stored.drops
    out = planned.out
    for row, (i, j) in zip(planned.rows, planned.owners, strict=True):
        if inserted is not None:
            key = row[7]
            if key not in inserted:
                continue
            inserted.discard(key)  # a key repeated in the chunk: its first row is the stored one
        group = out[i]
        assert isinstance(group, list)
        group[j] = _ACCEPTED
        name_id, created_at = row[2], row[3]
        stored.contact_stats.add(name_id, row[1], row[5], created_at)
        counts = per_name.get(name_id)
        if counts is None:
            counts = per_name[name_id] = [1, created_at, created_at, 0]
        else:
            tally(counts, created_at)
        per_day[(name_id, created_at // DAY)] += 1
        dropped = groups[i][1][j].dropped
        if dropped:
            counts[3] += 1
            for d in dropped:
                drops[(name_id, d["key"][:255], d["reason"])] += 1
    return stored


async def _known_names(conn: Conn, ws_id: int, names: set[str]) -> dict[str, tuple[int, bool]]:
    wanted = sorted(names)
    rows = await conn.fetch_all(f"SELECT id, name, archived FROM event_names WHERE workspace_id = ? "
                                f"AND name IN ({placeholders(len(wanted))})", (ws_id, *wanted))
    return {r["name"]: (r["id"], bool(r["archived"])) for r in rows}


async def _lock_and_count_names(conn: Conn, ws_id: int) -> int:
    """Take the workspace's name lock (PostgreSQL; SQLite's single writer already serialises), then count
    its active names: read under the lock, the count stays true until this transaction ends."""
    await lock_event_names(conn, ws_id)  # the same lock as ingest: one lock guards the 120-name limit
    row = await conn.fetch_one("SELECT COUNT(*) AS n FROM event_names WHERE workspace_id = ? AND archived = 0",
                               (ws_id,))
    return int(row["n"]) if row else 0


async def _insert_sqlite(conn: Conn, rows: list[tuple[Any, ...]]) -> set[str] | None:
    """The rows' dedupe keys that were new (None: all of them). One prepared statement for every row. The
    statement's change count says whether all rows were new (a fresh import) or none (a re-run); else, the
    writer thread being SQLite's only writer, the rows it stored are exactly those above the previous top id."""
    if not rows:
        return set()
    # total_changes(): rows this connection's statements changed, not counting conflicts left alone.
    before = await conn.fetch_one("SELECT COALESCE(MAX(id), 0) AS id, total_changes() AS n FROM events")
    await conn.executemany(f"INSERT INTO events ({', '.join(_COLUMNS)}) VALUES ({placeholders(len(_COLUMNS))}) "
                           "ON CONFLICT (workspace_id, dedupe_key) DO NOTHING", rows)
    after = await conn.fetch_one("SELECT total_changes() AS n")
    assert before is not None and after is not None
    count = after["n"] - before["n"]
    if count == len(rows):
        return None
    if count == 0:
        return set()
    new = await conn.fetch_all("SELECT dedupe_key FROM events WHERE id > ?", (before["id"],))
    return {r["dedupe_key"] for r in new}


async def _insert_by_copy(conn: Conn, rows: list[tuple[Any, ...]]) -> set[str] | None:
    """The rows' dedupe keys that were new (None: all of them): ``COPY`` into a staging table, then one
    set-based insert in the chunk's order (ids keep the file's order per contact)."""
    if not rows:
        return set()
    await conn.execute(
        "CREATE TEMP TABLE import_staging (ord INTEGER, workspace_id BIGINT, contact_id TEXT, "
        "event_name_id BIGINT, created_at BIGINT, received_at BIGINT, role TEXT, source TEXT, dedupe_key TEXT, "
        "metadata TEXT, metadata_types TEXT) ON COMMIT DROP")
    await conn.dialect.copy_rows(conn, "import_staging", ("ord", *_COLUMNS), [(n, *row) for n, row in enumerate(rows)])
    columns = ", ".join(_COLUMNS)
    new = await conn.fetch_all(f"INSERT INTO events ({columns}) SELECT {columns} FROM import_staging ORDER BY ord "
                               "ON CONFLICT (workspace_id, dedupe_key) DO NOTHING RETURNING dedupe_key")
    await conn.execute("DROP TABLE import_staging")  # a later chunk in this transaction makes its own
    return None if len(new) == len(rows) else {r["dedupe_key"] for r in new}


async def _add_aggregates(conn: Conn, per_name: dict[int, list[int]], archived_drops: dict[int, int],
                          per_day: dict[tuple[int, int], int], drops: dict[tuple[int, str, str], int],
                          t: int) -> None:
    """The hot rows, last and in key order (as ingest writes them, so concurrent writers cannot deadlock)."""
    if drops:
        await conn.executemany(
            "INSERT INTO metadata_drops (event_name_id, key, reason, count, last_seen) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (event_name_id, key, reason) DO UPDATE SET count = metadata_drops.count + excluded.count, "
            "last_seen = excluded.last_seen", [(n, k, r, c, t) for (n, k, r), c in sorted(drops.items())])
    counters = sorted({*per_name, *archived_drops})
    if counters:
        await conn.executemany(
            "UPDATE event_names SET event_count = event_count + CAST(? AS BIGINT), "
            "first_seen = CASE WHEN CAST(? AS BIGINT) IS NOT NULL AND (first_seen IS NULL "
            "  OR first_seen > CAST(? AS BIGINT)) THEN CAST(? AS BIGINT) ELSE first_seen END, "
            "last_seen = CASE WHEN CAST(? AS BIGINT) IS NOT NULL AND (last_seen IS NULL "
            "  OR last_seen < CAST(? AS BIGINT)) THEN CAST(? AS BIGINT) ELSE last_seen END, "
            "dropped_metadata_count = dropped_metadata_count + CAST(? AS BIGINT), "
            "dropped_count = dropped_count + CAST(? AS BIGINT) WHERE id = ?",
            [_counter_args(name_id, per_name.get(name_id), archived_drops.get(name_id, 0)) for name_id in counters])
    if per_day:
        await conn.executemany(
            "INSERT INTO event_daily_counts (event_name_id, day, count) VALUES (?, ?, ?) ON CONFLICT "
            "(event_name_id, day) DO UPDATE SET count = event_daily_counts.count + excluded.count",
            [(n, d, c) for (n, d), c in sorted(per_day.items())])


def _counter_args(name_id: int, counts: list[int] | None, dropped: int) -> tuple[Any, ...]:
    n, lo, hi, with_drops = counts if counts else (0, None, None, 0)
    return (n, lo, lo, lo, hi, hi, hi, with_drops, dropped, name_id)


def as_append_requests(workspace_id: int, source: str, groups: Sequence[ContactEvents]) -> list[AppendRequest]:
    """The chunk as the store's ``AppendRequest``s (the fallback path, one contact at a time if need be)."""
    return [AppendRequest(workspace_id, cid, source, [
        NewEvent(e.name, e.created_at, e.dedupe_key, json.loads(e.metadata) if e.metadata else {},
                 json.loads(e.metadata_types) if e.metadata_types else {}, list(e.dropped)) for e in events])
        for cid, events in groups]
