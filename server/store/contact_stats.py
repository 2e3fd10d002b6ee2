"""Per-(contact, event name, phase) aggregates: count, first and last, kept by every writer of events.

A row of ``contact_event_stats`` (migration 13) sums the events one contact *tracked* (``events.contact_id``,
never moved by a merge) under one name, split by phase: ``visitor_phase`` 1 for events tracked while the
contact was an anonymous visitor (``events.role = 'visitor'``), 0 for the rest. The split keeps reads exact
under the visibility rule (``sql_store``, "history": a source's visitor-phase events older than its
``visitor_floor`` are hidden): a phase-0 row is always wholly visible; a phase-1 row is wholly visible when
the source has no floor or ``first_at >= floor``, wholly hidden when ``last_at < floor``; only a row that
straddles the floor (between a conversion and the next purge) is recounted from its events, one range of
``events_contact_name_role_time``.

Keyed by the tracking contact, a merge or its undo changes nothing here. Writers: ingest (``events.py``), the
import writer, the purge (``retention.py``: subtracts what it deleted); erasure deletes contacts, and the
rows go with them (ON DELETE CASCADE). The primary key leads with the event name, so the contact list's
per-contact probes for one name stay within that name's rows (few pages, cached); the secondary index
``(contact_id, visitor_phase)`` serves the cascade and a contact's per-name summary.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .models import VISITOR
from .sql_helpers import tally

if TYPE_CHECKING:  # db.py imports the schema, which imports this module's backfill
    from .db import Conn

Key = tuple[int, str, int]  # (event_name_id, contact_id, visitor_phase)

# The migration's backfill and the benchmarks' bulk loads: every stored event, grouped.
RECOUNT_ALL = (
    "INSERT INTO contact_event_stats (event_name_id, contact_id, visitor_phase, count, first_at, last_at) "
    "SELECT event_name_id, contact_id, CASE WHEN role = 'visitor' THEN 1 ELSE 0 END, COUNT(*), MIN(created_at), "
    "MAX(created_at) FROM events GROUP BY event_name_id, contact_id, CASE WHEN role = 'visitor' THEN 1 ELSE 0 END")


def phase_of(role: str) -> int:
    return 1 if role == VISITOR else 0


class StatsBatch:
    """A write job's new events, summed per key in Python, then written in one statement."""

    def __init__(self) -> None:
        self.rows: dict[Key, list[int]] = {}

    def add(self, name_id: int, contact_id: str, role: str, created_at: int) -> None:
        key = (name_id, contact_id, phase_of(role))
        row = self.rows.get(key)
        if row is None:
            self.rows[key] = [1, created_at, created_at]
        else:
            tally(row, created_at)

    async def write(self, conn: Conn) -> None:
        """One ``executemany`` upsert, rows in key order: two PostgreSQL transactions touching the same
        keys lock them in the same order, so they cannot deadlock on them."""
        if not self.rows:
            return
        least = conn.dialect.least("contact_event_stats.first_at", "excluded.first_at")
        greatest = conn.dialect.greatest("contact_event_stats.last_at", "excluded.last_at")
        await conn.executemany(
            "INSERT INTO contact_event_stats (event_name_id, contact_id, visitor_phase, count, first_at, last_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (event_name_id, contact_id, visitor_phase) DO UPDATE SET "
            f"count = contact_event_stats.count + excluded.count, first_at = {least}, last_at = {greatest}",
            [(*key, n, lo, hi) for key, (n, lo, hi) in sorted(self.rows.items())])


async def subtract_purged(conn: Conn, deleted: dict[tuple[int, str], int]) -> None:
    """After the purge deleted visitor-phase events: ``deleted`` maps ``(event_name_id, contact_id)`` to how many
    of that key's events went. Each row's count drops by that many; its first and last are read again from the
    key's remaining events, one index probe each (``events_contact_name_role_time``); a row with nothing left
    goes. Recounting the key instead read every remaining event of it once per purge batch: a busy visitor's
    (a bot's) hundreds of thousands, a thousand times over, as its old events expired batch by batch.

    On PostgreSQL the rows are locked first (key order, as ingest): an ingest transaction adding to one of them
    commits before the probes read the events (they then see its event) or waits for this one (it then adds
    to the row as written here)."""
    if not deleted:
        return
    rows = sorted((name_id, contact_id, n) for (name_id, contact_id), n in deleted.items())
    keys = [(name_id, contact_id) for name_id, contact_id, _ in rows]
    if conn.dialect.concurrent_writers:
        await conn.executemany("SELECT 1 FROM contact_event_stats WHERE event_name_id = ? AND contact_id = ? "
                               "AND visitor_phase = 1 FOR UPDATE", keys)
    remaining = "FROM events e WHERE e.contact_id = ? AND e.event_name_id = ? AND e.role = 'visitor'"
    await conn.executemany(
        f"UPDATE contact_event_stats SET count = count - CAST(? AS BIGINT), "
        f"first_at = COALESCE((SELECT MIN(e.created_at) {remaining}), first_at), "
        f"last_at = COALESCE((SELECT MAX(e.created_at) {remaining}), last_at) "
        "WHERE event_name_id = ? AND contact_id = ? AND visitor_phase = 1",
        [(n, contact_id, name_id, contact_id, name_id, name_id, contact_id) for name_id, contact_id, n in rows])
    await conn.executemany("DELETE FROM contact_event_stats WHERE event_name_id = ? AND contact_id = ? "
                           "AND visitor_phase = 1 AND count <= 0", keys)


# ---------------------------------------------------------------------------------------------- reading
def visible(what: str, row: str, floor: str) -> str:
    """The visible part of stats row ``row`` (an SQL alias) under the visitor floor ``floor`` (an SQL
    expression, NULL for none): ``what`` is ``count``, ``first_at`` or ``last_at``. Whole when visible,
    nothing when wholly hidden, else recounted from the row's events at or after the floor (one index range
    of ``events_contact_name_role_time``)."""
    agg = {"count": "COUNT(*)", "first_at": "MIN(e.created_at)", "last_at": "MAX(e.created_at)"}[what]
    hidden = "0" if what == "count" else "NULL"
    return (f"(CASE WHEN {row}.visitor_phase = 0 OR {floor} IS NULL OR {row}.first_at >= {floor} "
            f"THEN {row}.{what} WHEN {row}.last_at < {floor} THEN {hidden} "
            f"ELSE (SELECT {agg} FROM events e WHERE e.contact_id = {row}.contact_id "
            f"AND e.event_name_id = {row}.event_name_id AND e.role = 'visitor' AND e.created_at >= {floor}) END)")
