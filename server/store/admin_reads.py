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

from .contact_stats import visible
from .db import Conn, Database
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


# A stats row ``a`` of name ``?`` of the contact ``c`` itself, or of a contact ``s`` merged into it
# (``contact_stats``: each row whole, nothing, or recounted when it straddles its source's floor). The
# ``CROSS JOIN`` keeps SQLite's join order: merged contacts first, through their index, then their rows.
_OWN_ROWS = "FROM contact_event_stats a WHERE a.event_name_id = ? AND a.contact_id = c.id"
_MERGED_ROWS = ("FROM contacts s CROSS JOIN contact_event_stats a WHERE s.merged_into = c.id "
                "AND a.event_name_id = ? AND a.contact_id = s.id")

# Per live contact ("owner"), count / first / last of one event name over its merged history: that name's
# stats rows (one primary-key range), each made visible for its source, folded onto their owner. One
# placeholder, the event name id.
_SRC_N, _SRC_FIRST, _SRC_LAST = (visible(what, "a", "s.visitor_floor") for what in ("count", "first_at", "last_at"))
_OWN_N = visible("count", "a", "c.visitor_floor")
_OWNER_STATS = (
    f"SELECT COALESCE(s.merged_into, s.id) AS owner, SUM({_SRC_N}) AS n, MIN({_SRC_FIRST}) AS first_at, "
    f"MAX({_SRC_LAST}) AS last_at FROM contact_event_stats a JOIN contacts s ON s.id = a.contact_id "
    "WHERE a.event_name_id = ? GROUP BY COALESCE(s.merged_into, s.id)")

# A filter that needs the event done drives the list from its name's stats rows (``_OWNER_STATS``) when
# the name has at most this many events (so at most this many rows): a few ms at most, where the walk could
# go through every contact before it finds a page (bench/section_timeline.py; docs/performance.md, "Contact
# filters from aggregates").
DRIVE_MAX_EVENTS = 5000


def _after(base: list[str], base_args: list[Any], start: tuple[int, str] | None) -> tuple[list[str], list[Any]]:
    """The base conditions plus the keyset condition "after ``start``" (newest first)."""
    if start is None:
        return base, base_args
    return ([*base, f"({SEEN} < ? OR ({SEEN} = ? AND c.id < ?))"],
            [*base_args, start[0], start[0], start[1]])


def _pick_driver(filters: Sequence[EventFilter], names: dict[str, tuple[int, int]]) -> int | None:
    """The filter whose name is rarest, among those that need the event done, if it is rare enough to drive
    the list (:data:`DRIVE_MAX_EVENTS`); ``None`` otherwise."""
    usable = [i for i, f in enumerate(filters) if _needs_done(f) and f.event_name in names
              and names[f.event_name][1] <= DRIVE_MAX_EVENTS]
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
    """One filter checked for the contact ``c`` of the outer query: its own stats rows of the name and those
    of the contacts merged into it, a few primary-key probes whatever the number of events. A URL filter
    probes page views."""
    if f.op == VISITED_URL:
        return visited_condition(f.url)
    if f.op in ("done", "not_done"):
        # A row means the source did it; visible unless its only row is a hidden visitor-phase one.
        # Scalar subqueries, not EXISTS: PostgreSQL may turn an EXISTS into a set it builds once over every
        # row of the name ("hashed subplan"); a scalar subquery stays a per-contact probe.
        own = f"(SELECT SUM({_OWN_N}) {_OWN_ROWS})"
        merged = f"(SELECT SUM({_SRC_N}) {_MERGED_ROWS})"
        found = f"(COALESCE({own}, 0) > 0 OR COALESCE({merged}, 0) > 0)"
        return (found if f.op == "done" else f"NOT {found}"), [name_id, name_id]
    if f.op.startswith("count"):
        total = (f"(COALESCE((SELECT SUM({_OWN_N}) {_OWN_ROWS}), 0) "
                 f"+ COALESCE((SELECT SUM({_SRC_N}) {_MERGED_ROWS}), 0))")
        cond, args = _condition(f, total, "", "", now)
        return cond, [name_id, name_id, *args]
    what, agg = ("first_at", "MIN") if f.op.startswith("first") else ("last_at", "MAX")
    both = (f"(SELECT {agg}(t) FROM (SELECT {agg}({visible(what, 'a', 'c.visitor_floor')}) AS t {_OWN_ROWS} "
            f"UNION ALL SELECT {agg}({visible(what, 'a', 's.visitor_floor')}) AS t {_MERGED_ROWS}) AS m)")
    cond, args = _condition(f, "", both, both, now)
    return cond, [name_id, name_id, *args]


async def _stats_for(conn: Conn, owners: list[str], name_id: int) -> dict[str, tuple[int, int | None, int | None]]:
    """``owner → (count, first, last)`` of one event name, for the contacts of one page."""
    if not owners:
        return {}
    marks = placeholders(len(owners))
    rows = await conn.fetch_all(
        f"SELECT COALESCE(s.merged_into, s.id) AS owner, SUM({_SRC_N}) AS n, MIN({_SRC_FIRST}) AS first_at, "
        f"MAX({_SRC_LAST}) AS last_at "
        "FROM contacts s CROSS JOIN contact_event_stats a WHERE a.event_name_id = ? AND a.contact_id = s.id "
        f"AND (s.id IN ({marks}) OR s.merged_into IN ({marks})) GROUP BY COALESCE(s.merged_into, s.id)",
        (name_id, *owners, *owners))
    return {r["owner"]: (int(r["n"]), r["first_at"], r["last_at"]) for r in rows if r["n"]}


class AdminReads:
    """Queries behind ``/admin``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # ------------------------------------------------------------------ the contact list
    async def admin_contacts(self, workspace: Workspace, *, role: str | None = None,
                             filters: Sequence[EventFilter] = (), after: tuple[int, str] | None = None,
                             limit: int = 50, now: int | None = None) -> ContactPage:
        """Live contacts (not merged away), newest seen first, matching ``role`` and every filter (AND).

        ``after`` is the previous page's ``next_after``. Each filter is a few primary-key probes of the
        per-contact stats (``contact_stats``) per contact, whatever the number of events, so the plan is the
        walk down the ``(seen, id)`` index, checking each contact, until the page is full; except when a
        filter that needs the event done (has done, count more than, first/last did …) names a rare event
        (:data:`DRIVE_MAX_EVENTS`): then that name's stats rows give the candidates, and the walk, which could
        pass every contact without filling a page, is not taken. Timed on 100,000 contacts and 1,000,000
        events (bench/dataset.py; docs/performance.md, "Contact filters from aggregates").
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
            driver = _pick_driver(filters, names)
            if any(_needs_done(f) and f.event_name not in names for f in filters):
                rows = []  # nobody did an event that was never tracked
            elif driver is not None:
                rows = await self._driven_page(conn, base, base_args, after, filters, name_ids, driver, now, need)
            else:
                where, args = _after(base, base_args, after)
                rows = await conn.fetch_all(f"SELECT c.* FROM contacts c WHERE {' AND '.join(where)} "
                                            f"AND {walk_sql} {order} LIMIT ?", (*args, *walk_args, need))
            contacts = [Contact.from_row(r) for r in rows[:limit]]
            stats = [await visited_stats(conn, [c.id for c in contacts], f.url) if f.op == VISITED_URL
                     else await _stats_for(conn, [c.id for c in contacts], name_ids[i]) for i, f in enumerate(filters)]
        listed = [ListedContact(c, tuple(s.get(c.id, (0, None, None)) for s in stats)) for c in contacts]
        more = len(rows) > limit
        return ContactPage(listed, (listed[-1].seen, listed[-1].contact.id) if more and listed else None)

    async def _driven_page(self, conn: Conn, base: list[str], base_args: list[Any], start: tuple[int, str] | None,
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
        return await conn.fetch_all(
            f"SELECT c.* FROM contacts c JOIN ({_OWNER_STATS}) AS d ON d.owner = c.id WHERE {' AND '.join(where)} "
            f"AND {' AND '.join(conds)} ORDER BY {SEEN} DESC, c.id DESC LIMIT ?",
            (name_ids[driver], *args, *cond_args, n))

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
    events older than its floor; for a conversion, the visitor-phase events it kept (from the floor the
    conversion set). Its stats rows (``contact_stats``), each visible under that floor."""
    if merge.kind == "convert":
        if merge.from_role != VISITOR:
            return 0
        floor: int | None = merge.events_since if merge.events_since is not None else 0
        phases = "AND a.visitor_phase = 1"
    else:
        floor, phases = (source.visitor_floor if source else None), ""
    row = await conn.fetch_one(
        f"SELECT SUM({visible('count', 'a', 'f.floor')}) AS n FROM (SELECT CAST(? AS BIGINT) AS floor) AS f "
        f"CROSS JOIN contact_event_stats a WHERE a.contact_id = ? {phases}", (floor, merge.from_contact))
    return int(row["n"] or 0) if row else 0


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
