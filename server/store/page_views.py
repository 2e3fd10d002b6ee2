"""Page views: stored, read for a contact's timeline and export, counted by the "visited a URL containing …" filter.

A part of :class:`~trailmark.store.sql_store.SQLStore` (which offers its methods as its own). Page views are not
events: they have no event name (so they never use the 120-name budget) and REST ``GET /events`` does not list
them, as Intercom does not. Like events they keep, forever, the contact that viewed the page and the role it had then,
and a contact's history is its own page views plus those of the contacts merged into it, minus visitor-phase
ones older than each source's ``visitor_floor``. Each carries a dedupe key checked by a unique index inside the
inserting transaction: a resent page view counts once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ..domain_errors import UnknownIdentity
from .db import Conn, Database
from .holders import find_holders, holder_of
from .models import Contact, Workspace
from .sql_helpers import placeholders

_INSERT_CHUNK = 300  # rows per multi-row INSERT (9 parameters each)


@dataclass(frozen=True)
class NewPageView:
    """A page view that passed validation and waits to be stored."""

    url: str
    title: str | None
    referrer: str | None
    created_at: int
    dedupe_key: str


@dataclass(frozen=True)
class StoredPageView:
    id: int
    contact_id: str
    role: str
    created_at: int
    url: str
    title: str | None
    referrer: str | None

    @classmethod
    def from_row(cls, row: Any) -> StoredPageView:
        return cls(id=row["id"], contact_id=row["contact_id"], role=row["role"], created_at=row["created_at"],
                   url=row["url"], title=row["title"], referrer=row["referrer"])


def contains_pattern(text: str) -> str:
    """A ``LIKE … ESCAPE '\\'`` pattern for "contains ``text``" (lower-cased: both stores compare the
    lower-cased URL, so the match ignores ASCII case on SQLite and PostgreSQL alike)."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# The visibility rule of events (admin_reads), for page views ``p`` of contact ``c`` / merged source ``s``.
VISIBLE_OWN = "(c.visitor_floor IS NULL OR p.role <> 'visitor' OR p.created_at >= c.visitor_floor)"
VISIBLE_SRC = "(s.visitor_floor IS NULL OR p.role <> 'visitor' OR p.created_at >= s.visitor_floor)"


def visited_condition(text: str) -> tuple[str, list[Any]]:
    """"Visited a URL containing ``text``" for the contact ``c`` of the outer query: its own visible page
    views or those of a contact merged into it (scalar probes, as the event filters: admin_reads)."""
    like = "LOWER(p.url) LIKE ? ESCAPE '\\'"
    own = f"SELECT 1 FROM page_views p WHERE p.contact_id = c.id AND {like} AND {VISIBLE_OWN} LIMIT 1"
    merged = (f"SELECT 1 FROM contacts s CROSS JOIN page_views p WHERE s.merged_into = c.id AND p.contact_id = s.id "
              f"AND {like} AND {VISIBLE_SRC} LIMIT 1")
    pattern = contains_pattern(text)
    return f"COALESCE(({own}), ({merged})) IS NOT NULL", [pattern, pattern]


async def visited_stats(conn: Conn, owners: list[str], text: str) -> dict[str, tuple[int, int | None, int | None]]:
    """``owner → (count, first, last)`` of the page views whose URL contains ``text``, for one list page."""
    if not owners:
        return {}
    marks = placeholders(len(owners))
    rows = await conn.fetch_all(
        "SELECT COALESCE(c.merged_into, c.id) AS owner, COUNT(*) AS n, MIN(p.created_at) AS first_at, "
        "MAX(p.created_at) AS last_at FROM contacts c CROSS JOIN page_views p WHERE p.contact_id = c.id "
        f"AND (c.id IN ({marks}) OR c.merged_into IN ({marks})) AND LOWER(p.url) LIKE ? ESCAPE '\\' "
        f"AND {VISIBLE_OWN} GROUP BY COALESCE(c.merged_into, c.id)", (*owners, *owners, contains_pattern(text)))
    return {r["owner"]: (int(r["n"]), r["first_at"], r["last_at"]) for r in rows}


async def export_rows(conn: Conn, contact_ids: list[str]) -> list[Any]:
    """Every stored page view of these contacts, oldest first (the GDPR export)."""
    marks = placeholders(len(contact_ids))
    return await conn.fetch_all(
        "SELECT id, contact_id, role, created_at, received_at, url, title, referrer FROM page_views "
        f"WHERE contact_id IN ({marks}) ORDER BY created_at, id", contact_ids)


@dataclass(frozen=True)
class _PageViewRequest:
    workspace_id: int
    contact_id: str
    views: list[NewPageView]
    received_at: int


async def _append_page_view_group(conn: Conn, requests: list[_PageViewRequest]) -> list[Any]:
    """Each request's statuses, or the UnknownIdentity that refused it (nothing of it written). The requests'
    contacts are looked up together and their rows inserted together, in request order; a key sent twice in
    the group (a resend racing its original) is accepted for the first and a duplicate for the other."""
    found = await find_holders(conn, [r.contact_id for r in requests])
    out: list[Any] = [None] * len(requests)
    rows: list[tuple[int, NewPageView, tuple[Any, ...]]] = []  # (request index, view, the row's values)
    for i, request in enumerate(requests):
        holder = holder_of(found, request.contact_id, request.workspace_id)
        if holder is None:
            out[i] = UnknownIdentity("The identity token names no contact; ping again")
            continue
        contact_id, role = holder
        rows += [(i, v, (request.workspace_id, contact_id, role, v.created_at, request.received_at, v.dedupe_key,
                         v.url, v.title, v.referrer)) for v in request.views]
    stored: set[tuple[int, str]] = set()
    for start in range(0, len(rows), _INSERT_CHUNK):
        chunk = rows[start:start + _INSERT_CHUNK]
        values = ", ".join("(?, ?, ?, ?, ?, ?, ?, ?, ?)" for _ in chunk)
        inserted = await conn.fetch_all(
            "INSERT INTO page_views (workspace_id, contact_id, role, created_at, received_at, dedupe_key, "
            f"url, title, referrer) VALUES {values} ON CONFLICT (workspace_id, dedupe_key) DO NOTHING "
            "RETURNING workspace_id, dedupe_key", [value for _, _, row in chunk for value in row])
        stored.update((r["workspace_id"], r["dedupe_key"]) for r in inserted)
    statuses: dict[int, list[str]] = {}
    for i, view, row in rows:
        key = (row[0], view.dedupe_key)
        statuses.setdefault(i, []).append("accepted" if key in stored else "duplicate")
        stored.discard(key)  # claimed: the same key again in this group is a duplicate
    for i in range(len(requests)):
        if out[i] is None:
            out[i] = statuses.get(i, [])
    return out


class PageViews:
    """Page views: stored once per client id, read for a contact's timeline (a part of the store)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def append_page_views(self, workspace: Workspace, contact_id: str,
                                views: list[NewPageView]) -> list[str]:
        """Store page views on the contact now holding ``contact_id``; returns each one's status, ``accepted``
        or ``duplicate`` (its dedupe key was stored before), after the commit. A grouped write: requests
        queued together share one transaction, and a browser batch's events and page views one commit."""
        if not views:
            return []
        # Ranked before ingest's group in a shared transaction: a fixed order between the two groups (no
        # deadlock between two batches, one holding a resent page view, the other its events), and the hot
        # counters locked last (db.in_run_order). Within the group rows go in request order, as events do: two
        # batches holding the same resent page views in opposite orders may deadlock, and are run again.
        result: list[str] = await self.db.write_grouped(
            _append_page_view_group, _PageViewRequest(workspace.id, contact_id, views, int(time.time())), rank=-1)
        return result

    async def page_views_for(self, workspace: Workspace, contact: Contact, *, limit: int,
                             before: tuple[int, int] | None = None) -> list[StoredPageView]:
        """A contact's merged page views, newest first, keyset-paginated on ``(created_at, id)`` (strictly
        before ``before``), with the timeline's visibility rule."""
        async with self.db.read() as conn:
            sources = await conn.fetch_all("SELECT id, visitor_floor FROM contacts WHERE id = ? OR merged_into = ?",
                                           (contact.id, contact.id))
            parts: list[str] = []
            args: list[Any] = []
            for source in sources:
                clause = "SELECT * FROM page_views p WHERE p.contact_id = ? AND p.workspace_id = ?"
                part_args: list[Any] = [source["id"], workspace.id]
                if source["visitor_floor"] is not None:
                    clause += " AND (p.role <> 'visitor' OR p.created_at >= ?)"
                    part_args.append(source["visitor_floor"])
                if before is not None:
                    clause += " AND (p.created_at < ? OR (p.created_at = ? AND p.id < ?))"
                    part_args += [before[0], before[0], before[1]]
                clause += " ORDER BY p.created_at DESC, p.id DESC LIMIT ?"
                parts.append(f"SELECT * FROM ({clause}) AS s{len(parts)}")
                args += [*part_args, limit]
            if not parts:
                return []
            rows = await conn.fetch_all(" UNION ALL ".join(parts) + " ORDER BY created_at DESC, id DESC LIMIT ?",
                                        (*args, limit))
        return [StoredPageView.from_row(r) for r in rows]

