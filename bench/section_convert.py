"""Conversion (section ``convert``): visitor → lead and visitor → existing user on the in-process SQLite store, with
a history of 10 against 100,000 events, and reading the merged history afterwards."""

from __future__ import annotations

import asyncio
import functools
import random
import time
from pathlib import Path
from typing import Any

from report import NOTES, TITLES, add, median_ms, ms, say, timed


async def bulk_events(store: Any, ws: Any, contact_id: str, n: int, name_ids: list[int], tag: str) -> None:
    """``n`` events for one contact straight into the events table, in the store's writer (big executemany
    jobs); the aggregates (per name, per contact) are not maintained (the conversion does not read them)."""
    now = int(time.time())
    rng = random.Random(tag)
    chunk = 50_000
    for start in range(0, n, chunk):
        rows = [(ws.id, contact_id, name_ids[i % len(name_ids)], now - rng.randrange(30 * 86400), now, "visitor",
                 "js", f"b:{tag}:{i}", '{"plan":"pro"}', '{"plan":"string"}')
                for i in range(start, min(n, start + chunk))]

        async def job(conn: Any, rows: list[tuple] = rows) -> None:
            await conn.executemany(
                "INSERT INTO events (workspace_id, contact_id, event_name_id, created_at, received_at, role, "
                "source, dedupe_key, metadata, metadata_types) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

        await store.db.write(job)


async def convert_bench(tmp: Path, big: int, runs: int) -> None:
    from trailmark.store import open_store
    from trailmark.store.models import USER, AppendRequest, NewEvent

    path = tmp / "convert.db"
    store = open_store(str(path))
    await store.open()
    try:
        ws = await store.create_workspace("Bench")
        sizes = (10, big)
        # Visitors: per run and size, one to convert to a lead and one to merge into an existing user.
        visitors: dict[tuple[str, int, int], Any] = {}
        t0 = time.perf_counter()
        for r in range(runs):
            for size in sizes:
                for op in ("lead", "user"):
                    v = await store.create_visitor(ws)
                    first = min(size, 10)  # through the real ingest path: names created, aggregates kept
                    await store.append_events(AppendRequest(ws.id, v.id, "js", [
                        NewEvent(event_name=f"bench-{i % 5}", created_at=int(time.time()) - i,
                                 dedupe_key=f"c:{v.id}:{i}", metadata={"plan": "pro"},
                                 metadata_types={"plan": "string"}) for i in range(first)]))
                    if size > first:
                        names = [n.id for n in await store.event_names(ws)]
                        await bulk_events(store, ws, v.id, size - first, names, f"{v.id}")
                    visitors[(op, size, r)] = v
                await store.create_contact(ws, USER, external_id=f"bench-user-{size}-{r}",
                                           email=f"u{size}-{r}@example.com")
        total = await store.count_events(ws)
        say(f"    loaded {total:,} events for {runs * 4} visitors in {time.perf_counter() - t0:.1f} s")

        lead_t: dict[int, list[float]] = {s: [] for s in sizes}
        user_t: dict[int, list[float]] = {s: [] for s in sizes}
        merged: dict[int, Any] = {}
        for r in range(runs):
            for size in (sizes if r % 2 == 0 else sizes[::-1]):  # alternate the order
                v = visitors[("lead", size, r)]
                dt, lead = await timed(functools.partial(
                    store.convert_to_lead, ws, v.id, email=f"lead-{size}-{r}@example.com", message="Hi",
                    reason="bench", proof="none"))
                assert lead.role == "lead", lead
                lead_t[size].append(dt)
                v2 = visitors[("user", size, r)]
                dt, user = await timed(functools.partial(
                    store.identify_user, ws, v2.id, user_id=f"bench-user-{size}-{r}", email=None, reason="bench",
                    proof="none"))
                assert user.role == "user" and user.id != v2.id, user
                user_t[size].append(dt)
                merged[size] = user
        # The histories are whole: the lead's and the user's timelines hold every event of the visitor.
        for size in sizes:
            summary = await store.event_summary(ws, merged[size])
            held = sum(s["count"] for s in summary)
            if held != size:
                NOTES.append(f"convert: the user merged with a {size}-event visitor shows {held} events")
        small, large = sizes
        TITLES["convert"] = (f"SQLite, in-process store, {total:,} events stored; medians of {runs} runs, each on a "
                             f"fresh visitor; baseline: the same at {small} events")
        add("convert", f"visitor → lead (convert_to_lead), {big:,} events", ms(median_ms(lead_t[large])),
            f"the same at {small} events", ms(median_ms(lead_t[small])),
            median_ms(lead_t[large]) / median_ms(lead_t[small]), runs=runs, lead_ms=[x * 1000 for x in lead_t[large]])
        add("convert", f"visitor → existing user (identify_user merge), {big:,} events", ms(median_ms(user_t[large])),
            f"the same at {small} events", ms(median_ms(user_t[small])),
            median_ms(user_t[large]) / median_ms(user_t[small]))
        # Reading the merged history afterwards: the first timeline page of the user.
        page: dict[int, list[float]] = {s: [] for s in sizes}
        for _ in range(15):
            for size in sizes:
                dt, _events = await timed(functools.partial(store.events_for, ws, merged[size], limit=50))
                page[size].append(dt)
        add("convert", f"first timeline page of that user afterwards, {big:,} events", ms(median_ms(page[large])),
            f"the same at {small} events", ms(median_ms(page[small])), median_ms(page[large]) / median_ms(page[small]))
        summ: dict[int, list[float]] = {s: [] for s in sizes}
        for _ in range(3):
            for size in sizes:
                summ[size].append((await timed(functools.partial(store.event_summary, ws, merged[size])))[0])
        add("convert", f"its recent-events summary (event_summary), {big:,} events", ms(median_ms(summ[large])),
            f"the same at {small} events", ms(median_ms(summ[small])), median_ms(summ[large]) / median_ms(summ[small]))
        if hasattr(store, "admin_merge_history"):  # the admin profile's merge history (admin_reads)
            hist: dict[int, list[float]] = {s: [] for s in sizes}
            for _ in range(5):
                for size in sizes:
                    hist[size].append((await timed(functools.partial(store.admin_merge_history, ws, merged[size])))[0])
            add("convert", f"its merge history (admin_merge_history), {big:,} events", ms(median_ms(hist[large])),
                f"the same at {small} events", ms(median_ms(hist[small])),
                median_ms(hist[large]) / median_ms(hist[small]))
        NOTES.append("convert: the times include the store's write queue and re-reading the contact")
    finally:
        await store.close()


def section_convert(tmp: Path, quick: bool) -> None:
    say("\n[convert] conversion time at 10 vs 100,000 events")
    asyncio.run(convert_bench(tmp, 100_000, 3 if quick else 5))
