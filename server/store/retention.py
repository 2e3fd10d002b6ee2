"""Retention: the 90-day purge of anonymous visitors' events, in small write batches (a part of the store)."""

from __future__ import annotations

from collections import Counter

from .contact_stats import subtract_purged
from .db import Conn, Database
from .models import (
    Workspace,
)


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

    async def purge_expired_batch(self, workspace: Workspace, cutoff: int, batch_size: int = 1000) -> tuple[int, int]:
        """Delete at most ``batch_size`` expired visitor events (once none are left, expired visitor page
        views; then expired empty visitors); returns ``(events or page views deleted, visitors deleted)``.
        Call until it returns ``(0, 0)``."""
        async def job(conn: Conn) -> tuple[int, int]:
            gone = await conn.fetch_all(
                f"DELETE FROM events WHERE id IN (SELECT e.id {self._EXPIRED_EVENTS} LIMIT ?) "
                "RETURNING event_name_id, contact_id", (workspace.id, cutoff, batch_size))
            if gone:
                # Only visitor-phase events expire: the per-contact stats they were counted in lose them.
                await subtract_purged(conn, Counter((r["event_name_id"], r["contact_id"]) for r in gone))
                return len(gone), 0
            n = await conn.execute(
                f"DELETE FROM page_views WHERE id IN (SELECT p.id {self._EXPIRED_PAGE_VIEWS} LIMIT ?)",
                (workspace.id, cutoff, batch_size))
            if n:
                return n, 0
            v = await conn.execute(f"DELETE FROM contacts WHERE id IN (SELECT c.id {self._EXPIRED_VISITORS} LIMIT ?)",
                                   (workspace.id, cutoff, batch_size))
            return 0, v

        result: tuple[int, int] = await self.db.write(job)
        return result
