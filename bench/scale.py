"""The figures docs/scale.md quotes, at a given number of stored events, on SQLite and PostgreSQL side by side:
import (the importer's old writer, ``store.append_many``, and its lean one, ``store_import_chunk``, on the same
chunks), single-event ingest through the store (32 callers at once, against the same on a fresh empty database
of that store, alternating), the first timeline page, the admin's contact filters, and the 90-day purge.

    python bench/scale.py [--events 1000000] [--contacts 100000] [--postgres postgresql://postgres@127.0.0.1/postgres]
        [--purge-seconds 60] [--ingest-seconds 5] [--stores sqlite,postgres]

Each store gets a scratch copy of the cached dataset (bench/dataset.py, bench/dataset_postgres.py): a file copy,
or ``CREATE DATABASE … TEMPLATE``), since importing and purging change it; the copy is removed at the end.
Medians of warm calls; the machine's load is printed with the figures (they move with it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import dataset as sqlite_dataset  # noqa: E402
import dataset_postgres  # noqa: E402
from import_speed import make_rows  # noqa: E402

CHUNK = 20_000  # the importer's chunk (server/importer.py CHUNK_ROWS)
DAY = 86400


async def timed(fn: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await fn()
    return time.perf_counter() - started, result


def ms(seconds: list[float]) -> str:
    return f"{statistics.median(seconds) * 1000:.1f} ms"


async def import_chunks(store: Any, ws: Any, chunks: int) -> dict[str, list[float]]:
    """events/s of each writer on ``chunks`` chunks each of CHUNK fresh users' events, alternating."""
    from trailmark import importer
    from trailmark.store.import_writer import ImportEvent, as_append_requests, store_import_chunk

    rates: dict[str, list[float]] = {"old: append_many": [], "new: store_import_chunk": []}
    now = int(time.time())
    for n in range(chunks * 2):
        label = list(rates)[n % 2]
        rows = make_rows(CHUNK, CHUNK // 20, seed=n)
        for row in rows:  # fresh users per chunk: no event of it is a duplicate
            if "user_id" in row:
                row["user_id"] = f"scale-{n}-{row['user_id']}"
        batch = next(importer.validated_batches(iter(enumerate(rows, 1)), strict=False, now=now, chunk_rows=10**9))
        cache: dict[tuple[str, str], str | None] = {}
        await importer.resolve_contacts(store, ws, {(r[1], r[2]) for r in batch.valid}, cache, create_users=True)
        groups: dict[str, list[ImportEvent]] = {}
        for _, kind, value, name, created_at, metadata, types, dropped in batch.valid:
            cid = cache[(kind, value)]
            assert cid is not None
            groups.setdefault(cid, []).append(ImportEvent(name, created_at, f"r:{cid}:{name}:{created_at}",
                                                          metadata, types, dropped))
        ordered = sorted(groups.items())
        if label.startswith("old"):
            requests = as_append_requests(ws.id, "import", ordered)  # the dicts the old writer JSON-encoded itself
            seconds, out = await timed(lambda requests=requests: store.append_many(requests))
        else:
            seconds, out = await timed(lambda ordered=ordered: store_import_chunk(store, ws.id, "import", ordered))
        stored = sum(1 for o in out if isinstance(o, list) for r in o if r.status == "accepted")
        assert stored == len(batch.valid), (label, stored, len(batch.valid))
        rates[label].append(stored / seconds)
    return rates


async def ingest_rate(store: Any, ws: Any, name: str, seconds: float, run: str) -> float:
    """Single-event requests/s through the store (group commit, durable), 32 visitors sending at once."""
    from trailmark.store.models import AppendRequest, NewEvent

    visitors = [(await store.create_visitor(ws)).id for _ in range(32)]
    sent = 0
    started = time.perf_counter()

    async def client(cid: str) -> None:
        nonlocal sent
        while time.perf_counter() - started < seconds:
            event = NewEvent(name, int(time.time()), f"{run}-{cid}-{sent}", {"plan": "pro"}, {"plan": "string"})
            await store.append_events(AppendRequest(ws.id, cid, "js", [event]))
            sent += 1

    await asyncio.gather(*(client(cid) for cid in visitors))
    return sent / (time.perf_counter() - started)


async def ingest_beside_fresh(store: Any, ws: Any, fresh_url: str, name: str, seconds: float) -> str:
    """The big store's ingest rate against a fresh empty database's, two alternating rounds each."""
    from trailmark.store import open_store

    fresh = open_store(fresh_url)
    await fresh.open()
    try:
        fresh_ws = await fresh.create_workspace("Fresh")
        big: list[float] = []
        empty: list[float] = []
        for n in range(2):
            big.append(await ingest_rate(store, ws, name, seconds, f"big{n}"))
            empty.append(await ingest_rate(fresh, fresh_ws, name, seconds, f"fresh{n}"))
    finally:
        await fresh.close()
    return (f"{statistics.median(big):,.0f} requests/s (fresh empty database, same run: "
            f"{statistics.median(empty):,.0f}; ratio {statistics.median(big) / statistics.median(empty):.2f})")


async def measure(url: str, ds: Any, *, chunks: int, purge_seconds: float, log: Any,
                  fresh_url: str | None = None, ingest_seconds: float = 5.0) -> dict[str, str]:
    from trailmark.store import open_store
    from trailmark.store.admin_reads import EventFilter

    out: dict[str, str] = {}
    store = open_store(url)
    await store.open()
    try:
        ws = await store.workspace_by_app_id(ds.app_id)
        heavy = await store.get_contact(ws, ds.heavy_contact)
        first, page = await timed(lambda: store.events_for(ws, heavy, limit=50))
        assert len(page) == 50
        warm = [(await timed(lambda: store.events_for(ws, heavy, limit=50)))[0] for _ in range(20)]
        out[f"timeline page 1 (50 of {ds.heavy_events:,} events, 2 sources)"] = \
            f"{ms(warm)} (first call {first * 1000:.0f} ms)"
        filters = {"contact list, no filter": [],
                   f"'{ds.filter_event}' count > 2": [EventFilter("count_gt", ds.filter_event, 2)],
                   f"has done '{sqlite_dataset.EVENT_NAMES[-1]}' (rare)": [EventFilter("done",
                                                                                      sqlite_dataset.EVENT_NAMES[-1])],
                   f"'{ds.filter_event}' > 2 AND last '{sqlite_dataset.EVENT_NAMES[1]}' < 7 days":
                       [EventFilter("count_gt", ds.filter_event, 2),
                        EventFilter("last_lt", sqlite_dataset.EVENT_NAMES[1], 7)]}
        for label, f in filters.items():
            first, _ = await timed(lambda f=f: store.admin_contacts(ws, filters=f, limit=50))
            warm = [(await timed(lambda f=f: store.admin_contacts(ws, filters=f, limit=50)))[0] for _ in range(5)]
            out[f"contacts: {label}"] = f"{ms(warm)} (first call {first * 1000:.0f} ms)"
        if fresh_url:
            log("    ingest…")
            out["ingest: single-event requests through the store, 32 at once"] = await ingest_beside_fresh(
                store, ws, fresh_url, sqlite_dataset.EVENT_NAMES[0], ingest_seconds)
        log("    import…")
        for label, rates in (await import_chunks(store, ws, chunks)).items():
            out[f"import, {CHUNK:,}-event chunks, {label}"] = \
                f"{statistics.median(rates):,.0f} events/s ({', '.join(f'{r:,.0f}' for r in rates)})"
        log("    purge…")
        cutoff = int(time.time()) - 90 * DAY
        seconds, (expired, _) = await timed(lambda: store.count_expired(ws, cutoff))
        out["purge: counting expired visitor events"] = f"{expired:,} events, {seconds * 1000:.0f} ms"
        from trailmark.store.retention import PurgeCursor

        deleted, started, cursor = 0, time.perf_counter(), PurgeCursor()  # as a round of the server's purge
        while time.perf_counter() - started < purge_seconds:
            events, visitors = await store.purge_expired_batch(ws, cutoff, 1000, cursor)
            if not events and not visitors:
                break
            deleted += events
        spent = time.perf_counter() - started
        out["purge: batches of 1,000 (DELETE)"] = (
            f"{deleted / spent:,.0f} events/s ({deleted:,} in {spent:.0f} s; all {expired:,}: "
            f"~{expired / max(deleted / spent, 1):.0f} s)")
    finally:
        await store.close()
    return out


async def scratch_postgres(server: str, ds: Any) -> str:
    source = ds.path.rsplit("/", 1)[1]
    name = f"{source}_scratch"
    await dataset_postgres.admin_sql(server, f"DROP DATABASE IF EXISTS {name}")
    await dataset_postgres.admin_sql(server, f"CREATE DATABASE {name} TEMPLATE {source}")
    return dataset_postgres.database_url(server, name)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--contacts", type=int, default=100_000)
    ap.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--stores", default="sqlite,postgres")
    ap.add_argument("--chunks", type=int, default=2, help="import chunks per writer")
    ap.add_argument("--purge-seconds", type=float, default=60.0)
    ap.add_argument("--ingest-seconds", type=float, default=5.0, help="length of one ingest round (0: no ingest)")
    args = ap.parse_args()
    results: dict[str, dict[str, str]] = {}
    for kind in args.stores.split(","):
        print(f"[{kind}] {args.events:,} events, {args.contacts:,} contacts; load {os.getloadavg()[0]:.1f} "
              f"on {os.cpu_count()} cores", flush=True)
        if kind == "postgres":
            ds = await dataset_postgres.postgres_dataset(args.postgres, args.events, args.contacts)
            url = await scratch_postgres(args.postgres, ds)
            fresh_name = "tm_scale_fresh"
            await dataset_postgres.admin_sql(args.postgres, f"DROP DATABASE IF EXISTS {fresh_name}")
            await dataset_postgres.admin_sql(args.postgres, f"CREATE DATABASE {fresh_name}")
            fresh_url = dataset_postgres.database_url(args.postgres, fresh_name)
        else:
            ds = await asyncio.to_thread(sqlite_dataset.dataset, args.events, args.contacts)
            url = f"{ds.path}.scratch.db"
            shutil.copyfile(ds.path, url)
            fresh_url = f"{ds.path}.fresh.db"
        try:
            results[kind] = await measure(url, ds, chunks=args.chunks, purge_seconds=args.purge_seconds,
                                          log=lambda m: print(m, flush=True),
                                          fresh_url=fresh_url if args.ingest_seconds > 0 else None,
                                          ingest_seconds=args.ingest_seconds)
        finally:
            if kind == "postgres":
                for database in (url.rsplit("/", 1)[1], fresh_name):
                    await dataset_postgres.admin_sql(args.postgres, f"DROP DATABASE IF EXISTS {database}")
            else:
                for path in (url, fresh_url):
                    for suffix in ("", "-wal", "-shm"):
                        Path(path + suffix).unlink(missing_ok=True)
        for label, figure in results[kind].items():
            print(f"  {label:<62} {figure}", flush=True)
    print(f"load at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    asyncio.run(main())
