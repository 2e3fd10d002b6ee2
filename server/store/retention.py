"""Retention: the 90-day purge of anonymous visitors' events, in small write batches (a part of the store)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

from .contact_stats import subtract_purged
from .db import Conn, Database
from .models import (
    Workspace,
)

PURGE_LOCK = 7303  # with the workspace id (db.py's two-key advisory locks: 7301 names, 7302 lifecycle)


@dataclass
class PurgeCursor:
    """Where a purge round has got to: the ``created_at`` of the last expired event (and page view) it deleted.

    Each batch takes the oldest expired rows, so every deletable row older than that is gone, and the next batch
    starts its walk there instead of at the oldest visitor-phase row. Without it each batch walked again past
    every expired row it may not delete (converted contacts' visitor-phase events): 200 ms of a 1,000-event batch
    at 1,000,000 events, growing batch by batch. A row that becomes deletable behind the cursor during the round
    (an undone merge, an import of old events) waits for the next round."""

    events_from: int | None = None
    page_views_from: int | None = None


class Retention:
    """Retention: visitors who never got in touch keep their events ``retention_days`` (90 by default).

    Purging works in small batches, each its own short write transaction, so ingest waits at most one
    batch (which also takes what it deleted off the per-contact stats: ``contact_stats``). It only ever deletes
    events tracked by a contact that is *still* an anonymous visitor: leads' and users' events (including
    the visitor history they carried over) are never touched. Page views expire with them, by the same rule.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    _EXPIRED_EVENTS = ("FROM events e JOIN contacts c ON c.id = e.contact_id WHERE e.workspace_id = ? "
                       "AND e.role = 'visitor' AND e.created_at < ? AND c.role = 'visitor' "
                       "AND c.merged_into IS NULL")
    _EXPIRED_PAGE_VIEWS = ("FROM page_views p JOIN contacts c ON c.id = p.contact_id WHERE p.workspace_id = ? "
                           "AND p.role = 'visitor' AND p.created_at < ? AND c.role = 'visitor' "
                           "AND c.merged_into IS NULL")
    _EXPIRED_VISITORS = ("FROM contacts c WHERE c.workspace_id = ? AND c.role = 'visitor' AND c.merged_into IS NULL "
                         "AND COALESCE(c.last_seen_at, c.created_at) < ? "
                         "AND NOT EXISTS (SELECT 1 FROM events e WHERE e.contact_id = c.id) "
                         "AND NOT EXISTS (SELECT 1 FROM page_views p WHERE p.contact_id = c.id)")

    async def count_expired(self, workspace: Workspace, cutoff: int) -> tuple[int, int]:
        """``(events, visitors)`` a purge with this cutoff would delete now (visitors counted after their
        events are gone); expired page views count as events."""
        async with self.db.read() as conn:
            events = await conn.fetch_one(f"SELECT COUNT(*) AS n {self._EXPIRED_EVENTS}", (workspace.id, cutoff))
            views = await conn.fetch_one(f"SELECT COUNT(*) AS n {self._EXPIRED_PAGE_VIEWS}", (workspace.id, cutoff))
            visitors = await conn.fetch_one(
                "SELECT COUNT(*) AS n FROM contacts c WHERE c.workspace_id = ? AND c.role = 'visitor' "
                "AND c.merged_into IS NULL AND COALESCE(c.last_seen_at, c.created_at) < ? AND NOT EXISTS "
                "(SELECT 1 FROM events e WHERE e.contact_id = c.id AND NOT (e.role = 'visitor' AND e.created_at < ?)) "
                "AND NOT EXISTS (SELECT 1 FROM page_views p WHERE p.contact_id = c.id "
                "AND NOT (p.role = 'visitor' AND p.created_at < ?))",
                (workspace.id, cutoff, cutoff, cutoff))
        return (int(events["n"] if events else 0) + int(views["n"] if views else 0),
                int(visitors["n"] if visitors else 0))

    async def purge_expired_batch(self, workspace: Workspace, cutoff: int, batch_size: int = 1000,
                                  cursor: PurgeCursor | None = None) -> tuple[int, int]:
        """Delete at most ``batch_size`` expired visitor events, oldest first (once none are left, expired
        visitor page views; then expired empty visitors); returns ``(events or page views deleted, visitors
        deleted)``. Call until it returns ``(0, 0)``, with one ``cursor`` for the round (same cutoff)."""
        cursor = cursor or PurgeCursor()

        async def job(conn: Conn) -> tuple[int, int, PurgeCursor]:
            """(events or page views deleted, visitors deleted, the cursor's new place)."""
            # One purge batch per workspace at a time, across processes (each may run the purge): two batches
            # deleting overlapping rows lock them in different orders and deadlock (PostgreSQL). Ingest never
            # takes this lock, and the purge takes it before any row.
            await conn.dialect.lock(conn, PURGE_LOCK, workspace.id)
            gone = await _delete_oldest(conn, "events", "e", self._EXPIRED_EVENTS,
                                        "event_name_id, contact_id, created_at", (workspace.id, cutoff),
                                        cursor.events_from, batch_size)
            if gone:
                # Only visitor-phase events expire: the per-contact stats they were counted in lose them.
                await subtract_purged(conn, Counter((r["event_name_id"], r["contact_id"]) for r in gone))
                return len(gone), 0, replace(cursor, events_from=max(r["created_at"] for r in gone))
            views = await _delete_oldest(conn, "page_views", "p", self._EXPIRED_PAGE_VIEWS, "created_at",
                                         (workspace.id, cutoff), cursor.page_views_from, batch_size)
            if views:
                return len(views), 0, replace(cursor, page_views_from=max(r["created_at"] for r in views))
            v = await conn.execute(f"DELETE FROM contacts WHERE id IN (SELECT c.id {self._EXPIRED_VISITORS} LIMIT ?)",
                                   (workspace.id, cutoff, batch_size))
            return 0, v, cursor

        deleted, visitors, moved = await self.db.write(job)
        # Moved only once the batch committed (a job may run again after a lost race).
        cursor.events_from, cursor.page_views_from = moved.events_from, moved.page_views_from
        return deleted, visitors

async def _delete_oldest(conn: Conn, table: str, alias: str, expired: str, returning: str, args: tuple[int, int],
                         since: int | None, batch_size: int) -> list[Any]:
    """Delete the oldest ``batch_size`` rows of ``table`` that ``expired`` (a ``FROM … WHERE`` over ``alias``,
    with ``args``) selects, from the cursor's ``since`` on (all of them before a round's first batch)."""
    after, after_args = ("", ()) if since is None else (f" AND {alias}.created_at >= ?", (since,))
    return await conn.fetch_all(
        f"DELETE FROM {table} WHERE id IN (SELECT {alias}.id {expired}{after} ORDER BY {alias}.created_at LIMIT ?) "
        f"RETURNING {returning}", (*args, *after_args, batch_size))
