"""The admin pages' store queries: the filtered contact list, profile helpers, teammates, the secret key.

A part of :class:`~trailmark.store.sql_store.SQLStore` (which offers its methods as its own). The SQL is
portable between SQLite and PostgreSQL with ``?`` placeholders.

Identity model (see ``sql_store``): events never move. A live contact's history is its own events plus
those of the contacts merged into it (``contacts.merged_into``); each source's visitor-phase events older
than its ``visitor_floor`` are hidden. The event filters count exactly that history, so a user "has done X"
when a visitor merged into it did X within its window, and a lead does not count the visitor events from
before its 90-day window.

The contact list is keyset-paginated on ``(seen, id)`` where ``seen = COALESCE(last_seen_at, created_at)``,
newest first, over the partial indexes of migration 4 (live contacts only).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .db import Conn, Database
from .history_stats import history_args, history_stats_sql
from .models import ROLES, VISITOR, Contact, Merge, Workspace
from .name_policy import WHY
from .page_views import visited_condition, visited_stats
from .sql_helpers import DAY, placeholders

SEEN = "COALESCE(c.last_seen_at, c.created_at)"

# Intercom's event filters on the contact list (their words for the admin: admin/filters.py). "N days ago"
# compares with now − N days; "exactly N days ago" is that whole UTC day.
EVENT_FILTER_OPS = ("done", "not_done", "count_gt", "count_lt", "count_eq", "first_gt", "first_lt", "first_eq",
                    "last_gt", "last_lt", "last_eq")
OPS_WITH_VALUE = frozenset(op for op in EVENT_FILTER_OPS if op not in ("done", "not_done"))
# "Visited a URL containing …": about page views (store/page_views.py), not an event; its text is ``url``.
VISITED_URL = "visited_url"
MAX_URL_FILTER = 2048


@dataclass(frozen=True)
class EventFilter:
    """One filter row: ``op`` (a key of :data:`EVENT_FILTER_OPS`) about event ``event_name``; ``value`` is
    the count or the number of days for the ops that take one. Or :data:`VISITED_URL`, with no event name:
    the contact viewed a page whose URL contains ``url`` (ignoring ASCII case)."""

    op: str
    event_name: str
    value: int = 0
    url: str = ""

    def __post_init__(self) -> None:
        if self.op == VISITED_URL:
            if not self.url or len(self.url) > MAX_URL_FILTER or self.event_name:
                raise ValueError(f"visited_url takes a URL fragment of 1 to {MAX_URL_FILTER} characters, no event")
        elif self.op not in EVENT_FILTER_OPS:
            raise ValueError(f"unknown event filter {self.op!r}")
        if self.value < 0:
            raise ValueError("the number must not be negative")

    @classmethod
    def visited(cls, url: str) -> EventFilter:
        return cls(VISITED_URL, "", url=url)


@dataclass(frozen=True)
class ListedContact:
    """A contact of the list, with ``(count, first, last)`` of each filter's event (``None`` when the
    contact never did it)."""

    contact: Contact
    stats: tuple[tuple[int, int | None, int | None], ...] = ()

    @property
    def seen(self) -> int:
        return self.contact.last_seen_at or self.contact.created_at


@dataclass(frozen=True)
class ContactPage:
    contacts: list[ListedContact]
    next_after: tuple[int, str] | None  # the keyset cursor of the next page, if there is one


@dataclass(frozen=True)
class Teammate:
    id: int
    email: str
    password_hash: str
    created_at: int
    session_version: int = 0

    @classmethod
    def from_row(cls, row: Any) -> Teammate:
        return cls(id=row["id"], email=row["email"], password_hash=row["password_hash"],
                   created_at=row["created_at"], session_version=row["session_version"])


@dataclass(frozen=True)
class RefusedName:
    """Events refused because their (new) name was: how many, when last, and why."""

    name: str
    reason: str  # a code of name_policy.WHY
    count: int
    last_seen: int

    @property
    def why(self) -> str:
        return WHY.get(self.reason, self.reason)


@dataclass(frozen=True)
class MergeView:
    """A ``merges`` row for the profile, with the contact on the other side and what it brought."""

    merge: Merge
    into_role_before: str | None
    other: Contact | None  # the from-contact when viewing the survivor, the survivor when viewing the source
    visible_events: int  # events of the from-contact that the survivor's timeline shows
    became: str | None = None  # for a conversion: the role it led to, when known


# Visible: not a visitor-phase event older than its contact's floor (``sql_store``, "history").
_VISIBLE_OWN = "(c.visitor_floor IS NULL OR e.role <> 'visitor' OR e.created_at >= c.visitor_floor)"
_VISIBLE_SRC = "(s.visitor_floor IS NULL OR e.role <> 'visitor' OR e.created_at >= s.visitor_floor)"
_GROUP_ALL_VISIBLE = "(s.visitor_floor IS NULL OR g.lo >= s.visitor_floor)"


def _src_correction(agg: str) -> str:
    return (f"(SELECT {agg} FROM events e WHERE e.event_name_id = ? AND e.contact_id = g.contact_id "
            f"AND (e.role <> 'visitor' OR e.created_at >= s.visitor_floor))")


# Per live contact ("owner"), count / first / last of one event name over its merged history. Events are
# grouped per source contact straight from the (event_name_id, contact_id, created_at) index; only a
# source with a visitor floor and events older than it is recounted event by event; then sources fold onto
# their owner. Four placeholders, all the event name id.
_OWNER_STATS = (
    "SELECT COALESCE(s.merged_into, s.id) AS owner, "
    f"SUM(CASE WHEN {_GROUP_ALL_VISIBLE} THEN g.n ELSE {_src_correction('COUNT(*)')} END) AS n, "
    f"MIN(CASE WHEN {_GROUP_ALL_VISIBLE} THEN g.lo ELSE {_src_correction('MIN(e.created_at)')} END) AS first_at, "
    f"MAX(CASE WHEN {_GROUP_ALL_VISIBLE} THEN g.hi ELSE {_src_correction('MAX(e.created_at)')} END) AS last_at "
    "FROM (SELECT contact_id, COUNT(*) AS n, MIN(created_at) AS lo, MAX(created_at) AS hi FROM events "
    "WHERE event_name_id = ? GROUP BY contact_id) AS g JOIN contacts s ON s.id = g.contact_id "
    "GROUP BY COALESCE(s.merged_into, s.id)")

# The same, one join per event: PostgreSQL hash-joins and aggregates this well (and plans the grouped form
# above badly: a nested loop over the materialized aggregate). One placeholder.
_OWNER_STATS_PER_EVENT = (
    "SELECT COALESCE(s.merged_into, s.id) AS owner, COUNT(*) AS n, MIN(e.created_at) AS first_at, "
    "MAX(e.created_at) AS last_at FROM events e JOIN contacts s ON s.id = e.contact_id "
    f"WHERE e.event_name_id = ? AND {_VISIBLE_SRC} GROUP BY COALESCE(s.merged_into, s.id)")

# Contacts checked one by one before the list considers an aggregate instead (~10-30 ms of probes).
WALK_WINDOW = 2000
# Measured on both backends (docs/performance.md, "Design measurements"): an aggregate costs about a third of
# the walk's cost per contact for each event of its name, so it is the cheaper way on when its name has fewer
# than ~3 events per contact still to walk.
DRIVE_EVENTS_PER_CONTACT = 3


def _after(base: list[str], base_args: list[Any], start: tuple[int, str] | None) -> tuple[list[str], list[Any]]:
    """The base conditions plus the keyset condition "after ``start``" (newest first)."""
    if start is None:
        return base, base_args
    return ([*base, f"({SEEN} < ? OR ({SEEN} = ? AND c.id < ?))"],
            [*base_args, start[0], start[0], start[1]])


def _pick_driver(filters: Sequence[EventFilter], names: dict[str, tuple[int, int]], contacts: int) -> int | None:
    """The filter whose aggregate is cheapest, among those that need the event done, if that aggregate is
    cheaper than walking ``contacts`` more contacts; ``None`` otherwise."""
    usable = [i for i, f in enumerate(filters) if _needs_done(f) and f.event_name in names
              and names[f.event_name][1] <= DRIVE_EVENTS_PER_CONTACT * contacts]
    return min(usable, key=lambda i: names[filters[i].event_name][1], default=None)


def _needs_done(f: EventFilter) -> bool:
    """Does the filter only match contacts that did the event at least once? (A URL filter is about page
    views: it never drives the list from an event's aggregate.)"""
    return f.op in ("done", "count_gt") or f.op.startswith(("first", "last")) or (f.op == "count_eq" and f.value > 0)


def _condition(f: EventFilter, n: str, first: str, last: str, now: int) -> tuple[str, list[Any]]:
    """One filter as a condition on the count / first / last expressions of its event (NULL = never)."""
    v = f.value
    count = f"COALESCE({n}, 0)"
    if f.op == "done":
        return f"{count} > 0", []
    if f.op == "not_done":
        return f"{count} = 0", []
    if f.op == "count_gt":
        return f"{count} > ?", [v]
    if f.op == "count_lt":
        return f"{count} < ?", [v]
    if f.op == "count_eq":
        return f"{count} = ?", [v]
    column = first if f.op.startswith("first") else last
    moment = now - v * DAY
    if f.op.endswith("_gt"):  # more than N days ago: before that moment
        return f"{column} < ?", [moment]
    if f.op.endswith("_lt"):  # less than N days ago: since that moment
        return f"{column} > ?", [moment]
    day = moment - moment % DAY  # exactly N days ago: during that UTC day
    return f"{column} BETWEEN ? AND ?", [day, day + DAY - 1]


def _correlated_condition(f: EventFilter, name_id: int, now: int) -> tuple[str, list[Any]]:
    """One filter checked for the contact ``c`` of the outer query: its own events and those of the
    contacts merged into it (``CROSS JOIN`` keeps SQLite's join order: merged contacts first, through their
    index, then their events through ``(event_name_id, contact_id)``). A URL filter probes page views."""
    if f.op == VISITED_URL:
        return visited_condition(f.url)
    own = f"FROM events e WHERE e.event_name_id = ? AND e.contact_id = c.id AND {_VISIBLE_OWN}"
    merged = (f"FROM contacts s CROSS JOIN events e WHERE s.merged_into = c.id AND e.contact_id = s.id "
              f"AND e.event_name_id = ? AND {_VISIBLE_SRC}")
    if f.op in ("done", "not_done"):
        # Scalar subqueries with LIMIT 1, not EXISTS: PostgreSQL may turn an EXISTS into a set it builds
        # once over every event of the name ("hashed subplan"); a scalar subquery stays a per-contact probe.
        found = f"COALESCE((SELECT 1 {own} LIMIT 1), (SELECT 1 {merged} LIMIT 1))"
        return f"{found} IS {'NOT ' if f.op == 'done' else ''}NULL", [name_id, name_id]
    if f.op.startswith("count"):
        cond, args = _condition(f, f"((SELECT COUNT(*) {own}) + (SELECT COUNT(*) {merged}))", "", "", now)
        return cond, [name_id, name_id, *args]
    agg = "MIN" if f.op.startswith("first") else "MAX"
    both = (f"(SELECT {agg}(t) FROM (SELECT {agg}(e.created_at) AS t {own} "
            f"UNION ALL SELECT {agg}(e.created_at) AS t {merged}) AS m)")
    cond, args = _condition(f, "", both, both, now)
    return cond, [name_id, name_id, *args]


async def _stats_for(conn: Conn, owners: list[str], name_id: int) -> dict[str, tuple[int, int | None, int | None]]:
    """``owner → (count, first, last)`` of one event name, for the contacts of one page."""
    if not owners:
        return {}
    marks = placeholders(len(owners))
    rows = await conn.fetch_all(
        "SELECT COALESCE(c.merged_into, c.id) AS owner, COUNT(*) AS n, MIN(e.created_at) AS first_at, "
        "MAX(e.created_at) AS last_at FROM contacts c CROSS JOIN events e WHERE e.contact_id = c.id "
        f"AND e.event_name_id = ? AND (c.id IN ({marks}) OR c.merged_into IN ({marks})) AND {_VISIBLE_OWN} "
        "GROUP BY COALESCE(c.merged_into, c.id)", (name_id, *owners, *owners))
    return {r["owner"]: (int(r["n"]), r["first_at"], r["last_at"]) for r in rows}


class AdminReads:
    """Queries behind ``/admin``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # ------------------------------------------------------------------ the contact list
    async def admin_contacts(self, workspace: Workspace, *, role: str | None = None,
                             filters: Sequence[EventFilter] = (), after: tuple[int, str] | None = None,
                             limit: int = 50, now: int | None = None) -> ContactPage:
        """Live contacts (not merged away), newest seen first, matching ``role`` and every filter (AND).

        ``after`` is the previous page's ``next_after``. The plan (timed on 100,000 contacts and 1,000,000
        events, bench/dataset.py, both backends):

        1. walk the next :data:`WALK_WINDOW` live contacts down the ``(seen, id)`` index, checking each
           filter per contact with index probes. When matches are common the page fills here (a few ms).
        2. Otherwise continue after that window: with a filter that needs the event done (has done, count
           more than, first/last did …), one aggregate over that name's events (an index range) gives the
           candidates when that is cheaper than walking on (:data:`DRIVE_EVENTS_PER_CONTACT`); else the walk
           goes on to the end. The slow case is a rare condition on a very frequent event (count more than
           1,000 of the name with 212,000 events): ~0.4 s on SQLite, ~0.6 s on PostgreSQL.
        """
        if role is not None and role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        now = int(time.time()) if now is None else now
        names = await self._event_name_counts(workspace, [f.event_name for f in filters])
        name_ids = [names.get(f.event_name, (-1, 0))[0] for f in filters]  # -1: no event has that id
        base = ["c.workspace_id = ?", "c.merged_into IS NULL"]
        base_args: list[Any] = [workspace.id]
        if role is not None:
            base.append("c.role = ?")
            base_args.append(role)
        walk = [_correlated_condition(f, name_ids[i], now) for i, f in enumerate(filters)]
        walk_sql = " AND ".join(c for c, _ in walk) or "1 = 1"
        walk_args = [a for _, args in walk for a in args]
        order = f"ORDER BY {SEEN} DESC, c.id DESC"
        need = limit + 1

        async with self.db.read() as conn:
            # The per-contact probes make the planner's cost estimate large: no JIT compiling for them.
            await conn.dialect.without_jit(conn)

            async def walk_page(start: tuple[int, str] | None, until: tuple[int, str] | None, n: int) -> list[Any]:
                where, args = _after(base, base_args, start)
                if until is not None:  # up to and including the contact ``until``
                    where = [*where, f"({SEEN} > ? OR ({SEEN} = ? AND c.id >= ?))"]
                    args = [*args, until[0], until[0], until[1]]
                return await conn.fetch_all(f"SELECT c.* FROM contacts c WHERE {' AND '.join(where)} "
                                            f"AND {walk_sql} {order} LIMIT ?", (*args, *walk_args, n))

            if not filters:
                rows = await walk_page(after, None, need)
            elif any(_needs_done(f) and f.event_name not in names for f in filters):
                rows = []  # nobody did an event that was never tracked
            else:
                where, args = _after(base, base_args, after)
                edge_row = await conn.fetch_one(f"SELECT {SEEN} AS seen, c.id FROM contacts c WHERE "
                                                f"{' AND '.join(where)} {order} LIMIT 1 OFFSET ?",
                                                (*args, WALK_WINDOW - 1))
                edge = (int(edge_row["seen"]), str(edge_row["id"])) if edge_row else None
                rows = await walk_page(after, edge, need)
                if len(rows) < need and edge is not None:
                    where, args = _after(base, base_args, edge)
                    left = await conn.fetch_one(f"SELECT COUNT(*) AS n FROM contacts c WHERE {' AND '.join(where)}",
                                                args)
                    # How far the walk would still go, judging by how often the window matched.
                    found = len(rows)
                    ahead = int(left["n"]) if left else 0
                    if found:
                        ahead = min(ahead, (need - found) * WALK_WINDOW // found)
                    driver = _pick_driver(filters, names, ahead)
                    if driver is None:
                        rows += await walk_page(edge, None, need - len(rows))
                    else:
                        rows += await self._driven_page(conn, base, base_args, edge, filters, name_ids, driver,
                                                        now, need - len(rows))
            contacts = [Contact.from_row(r) for r in rows[:limit]]
            stats = [await visited_stats(conn, [c.id for c in contacts], f.url) if f.op == VISITED_URL
                     else await _stats_for(conn, [c.id for c in contacts], name_ids[i]) for i, f in enumerate(filters)]
        listed = [ListedContact(c, tuple(s.get(c.id, (0, None, None)) for s in stats)) for c in contacts]
        more = len(rows) > limit
        return ContactPage(listed, (listed[-1].seen, listed[-1].contact.id) if more and listed else None)

    async def _driven_page(self, conn: Conn, base: list[str], base_args: list[Any], start: tuple[int, str],
                           filters: Sequence[EventFilter], name_ids: list[int], driver: int, now: int,
                           n: int) -> list[Any]:
        """Candidates from one aggregate over the driver filter's event; the other filters per contact."""
        where, args = _after(base, base_args, start)
        conds, cond_args = [], []
        for i, f in enumerate(filters):
            if i == driver:
                cond, a = _condition(f, "d.n", "d.first_at", "d.last_at", now)
            else:
                cond, a = _correlated_condition(f, name_ids[i], now)
            conds.append(cond)
            cond_args += a
        if conn.dialect.prefers_plain_aggregates:
            stats, stats_args = _OWNER_STATS_PER_EVENT, [name_ids[driver]]
        else:
            stats, stats_args = _OWNER_STATS, [name_ids[driver]] * 4
        return await conn.fetch_all(
            f"SELECT c.* FROM contacts c JOIN ({stats}) AS d ON d.owner = c.id WHERE {' AND '.join(where)} "
            f"AND {' AND '.join(conds)} ORDER BY {SEEN} DESC, c.id DESC LIMIT ?",
            (*stats_args, *args, *cond_args, n))

    async def admin_role_counts(self, workspace: Workspace) -> dict[str, int]:
        """Live contacts per role (an index-only count per role)."""
        async with self.db.read() as conn:
            out = {}
            for role in ROLES:
                row = await conn.fetch_one("SELECT COUNT(*) AS n FROM contacts c WHERE c.workspace_id = ? "
                                           "AND c.role = ? AND c.merged_into IS NULL", (workspace.id, role))
                out[role] = int(row["n"]) if row else 0
        return out

    async def _event_name_counts(self, workspace: Workspace, names: Sequence[str]) -> dict[str, tuple[int, int]]:
        """``name → (id, stored event count)`` for the names that exist."""
        wanted = sorted(set(names))
        if not wanted:
            return {}
        async with self.db.read() as conn:
            rows = await conn.fetch_all(
                f"SELECT id, name, event_count FROM event_names WHERE workspace_id = ? "
                f"AND name IN ({placeholders(len(wanted))})", (workspace.id, *wanted))
        return {r["name"]: (int(r["id"]), int(r["event_count"])) for r in rows}

    # ------------------------------------------------------------------ the profile
    async def admin_oldest_event_at(self, workspace: Workspace, contact_id: str) -> int | None:
        """When the contact's own oldest stored event or page view happened (a visitor's first to expire)."""
        async with self.db.read() as conn:
            row = await conn.fetch_one(
                "SELECT MIN(t) AS t FROM (SELECT MIN(e.created_at) AS t FROM events e WHERE e.contact_id = ? "
                "AND e.workspace_id = ? UNION ALL SELECT MIN(p.created_at) AS t FROM page_views p "
                "WHERE p.contact_id = ? AND p.workspace_id = ?) AS m",
                (contact_id, workspace.id, contact_id, workspace.id))
        return int(row["t"]) if row and row["t"] is not None else None

    async def admin_merge_history(self, workspace: Workspace, contact: Contact) -> list[MergeView]:
        """The merges and conversions that involve ``contact``, newest first, each with the contact on the
        other side and how many of the from-contact's events the survivor's timeline shows."""
        async with self.db.read() as conn:
            rows = await conn.fetch_all(
                "SELECT * FROM merges WHERE workspace_id = ? AND (into_contact = ? OR from_contact = ?) "
                "ORDER BY created_at DESC, id DESC", (workspace.id, contact.id, contact.id))
            ids = sorted({r["from_contact"] for r in rows} | {r["into_contact"] for r in rows})
            others: dict[str, Contact] = {}
            if ids:
                crow = await conn.fetch_all(
                    f"SELECT * FROM contacts WHERE workspace_id = ? AND id IN ({placeholders(len(ids))})",
                    (workspace.id, *ids))
                others = {r["id"]: Contact.from_row(r) for r in crow}
            views: list[MergeView] = []
            for r in rows:
                merge = Merge.from_row(r)
                visible = await _visible_count(conn, merge, others.get(merge.from_contact))
                other_id = merge.from_contact if merge.into_contact == contact.id else merge.into_contact
                views.append(MergeView(merge, r["into_role_before"], others.get(other_id) if other_id != contact.id
                                       else None, visible))
        return _with_became(views, contact)

    async def refused_event_names(self, workspace: Workspace, limit: int = 100) -> list[RefusedName]:
        """The most recently refused new event names (server/store/name_policy.py)."""
        async with self.db.read() as conn:
            rows = await conn.fetch_all(
                "SELECT name, reason, count, last_seen FROM refused_event_names WHERE workspace_id = ? "
                "ORDER BY last_seen DESC, name, reason LIMIT ?", (workspace.id, limit))
        return [RefusedName(r["name"], r["reason"], int(r["count"]), int(r["last_seen"])) for r in rows]

    # ------------------------------------------------------------------ teammates and the session key
    async def teammates(self) -> list[Teammate]:
        async with self.db.read() as conn:
            rows = await conn.fetch_all("SELECT * FROM teammates ORDER BY email")
        return [Teammate.from_row(r) for r in rows]

    async def create_teammate(self, email: str, password_hash: str) -> Teammate:
        """A new teammate, or a new password for an existing one (emails are unique, case-insensitive)."""
        email = email.strip().lower()
        t = int(time.time())

        async def job(conn: Conn) -> None:
            await conn.execute(
                "INSERT INTO teammates (email, password_hash, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT (email) DO UPDATE SET password_hash = excluded.password_hash",
                (email, password_hash, t))

        await self.db.write(job)
        teammate = await self.teammate_by_email(email)
        assert teammate is not None
        return teammate

    async def teammate_by_email(self, email: str) -> Teammate | None:
        async with self.db.read() as conn:
            row = await conn.fetch_one("SELECT * FROM teammates WHERE email = ?", (email.strip().lower(),))
        return Teammate.from_row(row) if row else None

    async def teammate_by_id(self, teammate_id: int) -> Teammate | None:
        async with self.db.read() as conn:
            row = await conn.fetch_one("SELECT * FROM teammates WHERE id = ?", (teammate_id,))
        return Teammate.from_row(row) if row else None

    async def end_teammate_sessions(self, teammate_id: int) -> None:
        """Raise the teammate's session version: every session cookie issued before is refused from now on."""
        async def job(conn: Conn) -> None:
            await conn.execute("UPDATE teammates SET session_version = session_version + 1 WHERE id = ?",
                               (teammate_id,))

        await self.db.write(job)


async def _visible_count(conn: Conn, merge: Merge, source: Contact | None) -> int:
    """How many of the from-contact's own events the survivor shows: for a merge, all but its visitor-phase
    events older than its floor; for a conversion, the visitor-phase events it kept.

    Both count from the ``(contact, name, role, created_at)`` index (migration 5), never the table. SQLite
    counts one range per name and role (``history_stats``): a step per visible event, where filtering the
    contact's entries one by one costs twice as much. PostgreSQL filters one index-only scan of the
    contact's entries: as fast there, and until VACUUM has marked fresh pages all-visible it then reads
    each heap page once rather than once per name."""
    visitor_only = merge.kind == "convert"
    if visitor_only:
        if merge.from_role != VISITOR:
            return 0
        floor: int | None = merge.events_since if merge.events_since is not None else 0
    else:
        floor = source.visitor_floor if source else None
    if conn.dialect.prefers_plain_aggregates:
        sql = "SELECT COUNT(*) AS n FROM events e WHERE e.contact_id = ?"
        args: list[str | int | None] = [merge.from_contact]
        if visitor_only:
            sql, args = sql + " AND e.role = 'visitor' AND e.created_at >= ?", [*args, floor]
        elif floor is not None:
            sql, args = sql + " AND (e.role <> 'visitor' OR e.created_at >= ?)", [*args, floor]
    else:
        sql = (history_stats_sql(1, visitor_only=visitor_only, count_only=True) +
               "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) AS n FROM h_stats")
        args = history_args([(merge.from_contact, floor)])
    row = await conn.fetch_one(sql, args)
    return int(row["n"]) if row else 0


def _with_became(views: list[MergeView], contact: Contact) -> list[MergeView]:
    """Fill in the role each conversion led to. The ``merges`` row keeps the role before; the role after
    is the role before of the next conversion still in force, or the contact's role now."""
    following: str | None = contact.role
    out: dict[int, str | None] = {}
    for v in views:  # newest first: the newest conversion in force led to the current role
        if v.merge.kind != "convert" or v.merge.from_contact != contact.id or v.merge.undone_at is not None:
            continue  # an undone conversion's target role is not recorded
        out[v.merge.id] = following
        following = v.merge.from_role
    return [MergeView(v.merge, v.into_role_before, v.other, v.visible_events, out.get(v.merge.id, v.became))
            for v in views]
