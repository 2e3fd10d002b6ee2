"""Reads at scale (section ``timeline``): a contact's timeline pages, its recent-events summary and the admin's
filtered contact lists on a generated 1,000,000-event SQLite database (bench/dataset.py), against the same reads
on a small contact or a 10,000-event database."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from report import NOTES, TITLES, add, median_ms, ms, say, timed

FALLBACK_FILTER_SQL = (
    "SELECT c.id, c.role, c.email, c.last_seen_at FROM contacts c "
    "JOIN (SELECT contact_id FROM events WHERE event_name_id = ? GROUP BY contact_id HAVING COUNT(*) > ?) x "
    "ON x.contact_id = c.id WHERE c.workspace_id = ? AND c.merged_into IS NULL "
    "ORDER BY COALESCE(c.last_seen_at, c.created_at) DESC, c.id DESC LIMIT 50")


@dataclass
class ListQuery:
    label: str
    op: str | None  # an admin_reads EventFilter op, or None for the unfiltered list
    event: str | None = None
    value: int = 0


def list_queries(ds: Any) -> list[ListQuery]:
    import dataset

    return [ListQuery("contact list page 1, no filter", None),
            ListQuery(f"filtered: '{ds.filter_event}' count > 2", "count_gt", ds.filter_event, 2),
            ListQuery(f"filtered: has done '{dataset.EVENT_NAMES[-1]}' (rare)", "done", dataset.EVENT_NAMES[-1]),
            ListQuery(f"filtered: '{ds.filter_event}' > 2 AND last did '{dataset.EVENT_NAMES[1]}' < 7 days ago",
                      "count_gt+last_lt", ds.filter_event, 2)]


def list_calls(store: Any, ws: Any, q: ListQuery, ds: Any) -> list[tuple[Callable[[], Awaitable[Any]], str]]:
    """How to fetch the list, best first: the admin pages' own query (server/store/admin_reads.py) when it
    is there; plain SQL for the one filter that has an obvious SQL equivalent."""
    import dataset

    calls: list[tuple[Callable[[], Awaitable[Any]], str]] = []
    if hasattr(store, "admin_contacts"):
        from trailmark.store.admin_reads import EventFilter

        if q.op is None:
            filters = []
        elif q.op == "count_gt+last_lt":
            filters = [EventFilter("count_gt", q.event, q.value), EventFilter("last_lt", dataset.EVENT_NAMES[1], 7)]
        else:
            filters = [EventFilter(q.op, q.event, q.value)]

        async def admin() -> Any:
            return (await store.admin_contacts(ws, filters=filters, limit=50)).contacts
        calls.append((admin, "admin_reads"))

    async def fallback() -> list[Any]:
        async with store.db.read() as conn:
            return await conn.fetch_all(FALLBACK_FILTER_SQL, (ds.filter_event_id, q.value, ws.id))
    if q.op == "count_gt":
        calls.append((fallback, "plain SQL"))
    return calls


async def timeline_bench(ds: Any, small: Any, reps: int) -> None:
    from trailmark.store import open_store

    async def measure(dataset: Any) -> dict[str, Any]:
        store = open_store(dataset.path)
        await store.open()
        try:
            ws = await store.workspace_by_app_id(dataset.app_id)
            heavy = await store.get_contact(ws, dataset.heavy_contact)
            light = await store.get_contact(ws, dataset.light_contact)
            out: dict[str, Any] = {}
            out["first_call"], page = await timed(lambda: store.events_for(ws, heavy, limit=50))
            assert len(page) == 50
            out["heavy"] = [(await timed(lambda: store.events_for(ws, heavy, limit=50)))[0] for _ in range(reps)]
            out["light"] = [(await timed(lambda: store.events_for(ws, light, limit=50)))[0] for _ in range(reps)]
            before = (page[-1].created_at, page[-1].id)
            out["page2"] = [(await timed(lambda: store.events_for(ws, heavy, limit=50, before=before)))[0]
                            for _ in range(reps)]
            out["summary"] = [(await timed(lambda: store.event_summary(ws, heavy)))[0]
                              for _ in range(max(3, reps // 5))]
            for q in list_queries(ds):
                for fetch, how in list_calls(store, ws, q, dataset):
                    try:
                        _first, rows = await timed(fetch)
                        times = [(await timed(fetch))[0] for _ in range(max(5, reps // 3))]
                    except Exception as exc:  # another engineer's work in progress: report it
                        out[q.label] = (how, None, f"{type(exc).__name__}: {exc}")
                        out.setdefault("failures", []).append(f"{q.label} [{how}]: {type(exc).__name__}: {exc}")
                        continue
                    out[q.label] = (how, times, len(rows))
                    break
            return out
        finally:
            await store.close()

    big = await measure(ds)
    base = await measure(small)
    TITLES["timeline"] = (f"reads at {ds.events:,} stored events, {ds.contacts:,} contacts (SQLite, in-process "
                          f"store); baselines: a small contact, or the same read at {small.events:,} events")
    add("timeline", f"timeline page 1 (events_for, 50) of a contact with {ds.heavy_events:,} events, 2 sources",
        ms(median_ms(big["heavy"])), "the same for a 10-event contact",
        ms(median_ms(big["light"])), median_ms(big["heavy"]) / median_ms(big["light"]),
        first_call_ms=big["first_call"] * 1000)
    add("timeline", "timeline page 2 (keyset, before=…)", ms(median_ms(big["page2"])), "page 1",
        ms(median_ms(big["heavy"])), median_ms(big["page2"]) / median_ms(big["heavy"]))
    add("timeline", f"recent-events summary of that contact (event_summary over {ds.heavy_events:,} events)",
        ms(median_ms(big["summary"])), f"the same at {small.events:,} stored ({small.heavy_events} events)",
        ms(median_ms(base["summary"])), median_ms(big["summary"]) / median_ms(base["summary"]))
    hows = set()
    for q in list_queries(ds):
        if q.label not in big:
            continue
        how, times, rows = big[q.label]
        hows.add(how)
        if times is None:
            add("timeline", f"{q.label} [{how}]", f"FAILED: {rows[:160]}")
            continue
        _b_how, b_times, b_rows = base.get(q.label, (how, None, 0))
        add("timeline", f"{q.label} ({rows} shown) [{how}]", ms(median_ms(times)),
            f"the same at {small.events:,} stored ({b_rows} shown)", ms(median_ms(b_times)) if b_times else "?",
            median_ms(times) / median_ms(b_times) if b_times else None)
    NOTES.append(f"timeline: in-process store on a generated SQLite database ({ds.events:,} events, {ds.contacts:,} "
                 f"contacts, 20 event names; bench/dataset.py, cached in {Path(ds.path).parent}); medians of warm "
                 f"calls; the very first call on a fresh store took {big['first_call'] * 1000:.1f} ms")
    for failure in big.get("failures", []):
        NOTES.append(f"timeline: admin_reads failed, {failure}")
    if "plain SQL" in hows:
        NOTES.append("timeline: server/store/admin_reads.py was missing or failed: the 'count more than' list is "
                     "timed with an equivalent SQL query (contacts who did X more than N times, newest seen "
                     "first), not the admin page's own code")


def section_timeline(quick: bool) -> None:
    say("\n[timeline] first timeline page and a filtered contact list at 1,000,000 stored events")
    import dataset

    ds = dataset.dataset(1_000_000, 100_000, log=say)
    small = dataset.dataset(10_000, 1_000, log=say)
    asyncio.run(timeline_bench(ds, small, 10 if quick else 30))
