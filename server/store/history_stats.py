"""Per-name count / first / last of a contact's visible history, answered from one covering index.

A contact's history is the union over its *sources* (itself and the contacts merged into it); each
source with a ``visitor_floor`` hides its visitor-phase events older than that floor (``sql_store``,
"history"): an event is visible when ``floor IS NULL OR role <> 'visitor' OR created_at >= floor``.

Aggregating that condition row by row reads every event of every source, hidden ones included, through
the table (``events_contact_time`` has neither the name nor the role). Here the
index ``events_contact_name_role_time (contact_id, event_name_id, role, created_at)`` (migration 5)
answers it instead, group by group:

1. a loose index scan (recursive CTE, one ``MIN`` seek per step) lists the distinct
   ``(event_name_id, role)`` pairs of each source, without reading the events between them;
2. in each pair the visible events are one contiguous index range: the whole pair, or, for the
   ``visitor`` pair of a source with a floor, its part from the floor on. ``MIN``/``MAX`` of that range are
   single seeks and ``COUNT(*)`` steps through the index entries only (no table row is read, no hidden
   entry is visited).

So the cost is a few seeks per (source, name, role) plus a step per *visible* event (the figures: docs/
performance.md, "Design measurements"). The SQL is portable (SQLite and PostgreSQL; ``?`` placeholders); run the
connection's ``dialect.without_jit`` first (PostgreSQL guesses ~10,000 rows for each recursive CTE, so the
query looks expensive enough to JIT-compile: ~500 ms of compiling for a few ms of running).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _agg(what: str, bounded: bool) -> str:
    """One aggregate over a pair's visible range (``g`` is the pair; ``g.lo`` the source's floor)."""
    return (f"(SELECT {what} FROM events e WHERE e.contact_id = g.cid AND e.event_name_id = g.name_id "
            f"AND e.role = g.role{' AND e.created_at >= g.lo' if bounded else ''})")


def _stats_select(bounded: bool, count_only: bool) -> str:
    columns = [_agg("COUNT(*)", bounded)]
    if not count_only:
        columns += [_agg("MIN(e.created_at)", bounded), _agg("MAX(e.created_at)", bounded)]
    return f"SELECT g.name_id, {', '.join(columns)} FROM h_groups g"


def history_stats_sql(n_sources: int, *, visitor_only: bool = False, count_only: bool = False) -> str:
    """``WITH RECURSIVE …`` defining ``h_stats(name_id, n, first_at, last_at)`` (``h_stats(name_id, n)``
    with ``count_only``): one row per (source, event name, role) with its visible events' count, first and
    last (a row may have ``n = 0``, with NULL first and last). Append a ``SELECT … FROM h_stats …``; the
    arguments are :func:`history_args` of the sources, before the appended query's own.

    ``visitor_only`` keeps only visitor-phase events (a conversion's "came from the anonymous visit")."""
    if n_sources < 1:
        raise ValueError("a history has at least one source")
    src = ", ".join(["(CAST(? AS TEXT), CAST(? AS BIGINT))"] * n_sources)
    unbounded = "g.lo IS NULL" if visitor_only else "(g.lo IS NULL OR g.role <> 'visitor')"
    if visitor_only:
        unbounded += " AND g.role = 'visitor'"
    columns = "name_id, n" if count_only else "name_id, n, first_at, last_at"
    return (
        f"WITH RECURSIVE h_src(cid, lo) AS (VALUES {src}), "
        # The event names of each source: the next name id after the previous one, one seek each.
        "h_names(cid, lo, name_id) AS ("
        "SELECT cid, lo, (SELECT MIN(e.event_name_id) FROM events e WHERE e.contact_id = h_src.cid) FROM h_src "
        "UNION ALL SELECT cid, lo, (SELECT MIN(e.event_name_id) FROM events e WHERE e.contact_id = h_names.cid "
        "AND e.event_name_id > h_names.name_id) FROM h_names WHERE name_id IS NOT NULL), "
        # The roles of each (source, name): the next role after the previous one, one seek each.
        "h_groups(cid, lo, name_id, role) AS ("
        "SELECT cid, lo, name_id, (SELECT MIN(e.role) FROM events e WHERE e.contact_id = h_names.cid "
        "AND e.event_name_id = h_names.name_id) FROM h_names WHERE name_id IS NOT NULL "
        "UNION ALL SELECT cid, lo, name_id, (SELECT MIN(e.role) FROM events e WHERE e.contact_id = h_groups.cid "
        "AND e.event_name_id = h_groups.name_id AND e.role > h_groups.role) FROM h_groups WHERE role IS NOT NULL), "
        # Visible: the whole pair, or the visitor pair of a source with a floor from that floor on.
        f"h_stats({columns}) AS ("
        f"{_stats_select(False, count_only)} WHERE g.role IS NOT NULL AND {unbounded} "
        f"UNION ALL {_stats_select(True, count_only)} WHERE g.role = 'visitor' AND g.lo IS NOT NULL) ")


def history_args(sources: Sequence[tuple[str, int | None]]) -> list[Any]:
    """The arguments of :func:`history_stats_sql`: ``(contact id, visitor floor or None)`` per source."""
    return [v for contact_id, floor in sources for v in (contact_id, floor)]

