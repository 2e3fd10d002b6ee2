"""The floor under SQLite ingest: what storing the rows costs with no server and no Python rules around it.

Plain ``sqlite3`` on a fresh file with the store's own schema (made by its migrations), WAL and
``synchronous = FULL`` as the store runs it, writing per event what ``_append_group`` writes: the ``events``
row (its table and four indexes), then the aggregates (the contact's stats row, the name's counters, the
daily count), one transaction per batch of requests as group commit makes them. CPU µs per event (the
process's, so the kernel's share of the WAL writes and the fsync is in it).

It answers "how low can the writer go?": compare it with the ``writer`` step of bench/ingest_costs.py, and
with the bare endpoint's whole cost per request under wrk (section ``ingest``).

    python bench/sqlite_floor.py [--batches 1,16,32] [--events 6000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

CONTACTS = 2000
NAMES = ["page-view", "pricing-viewed", "signup-started", "upload-complete", "invited-friend", "plan-upgraded",
         "search", "video-played"]
METADATA = json.dumps({"plan": "pro", "seats": 1, "page": "/pricing"})
TYPES = json.dumps({"plan": "string", "seats": "integer", "page": "string"})


async def _fresh(path: str) -> tuple[int, list[str]]:
    """A store-made database with one workspace and its contacts; returns (workspace id, contact ids)."""
    from trailmark.store import open_store

    store = open_store(f"sqlite:///{path}")
    await store.open()
    try:
        ws = await store.create_workspace("floor")
        return ws.id, [(await store.create_visitor(ws)).id for _ in range(CONTACTS)]
    finally:
        await store.close()


def per_event_us(path: str, workspace_id: int, contacts: list[str], batch: int, events: int,
                 aggregates: bool) -> float:
    db = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode = WAL", "synchronous = FULL", "foreign_keys = ON"):
        db.execute(f"PRAGMA {pragma}")
    for name in NAMES:
        db.execute("INSERT OR IGNORE INTO event_names (workspace_id, name, created_at) VALUES (?, ?, 0)",
                   (workspace_id, name))
    name_ids = [r[0] for r in db.execute("SELECT id FROM event_names WHERE workspace_id = ?", (workspace_id,))]

    def one_batch() -> None:
        t = int(time.time())
        rows = [(workspace_id, random.choice(contacts), random.choice(name_ids), t, t, "visitor", "js",
                 f"js:{random.getrandbits(64):x}", METADATA, TYPES) for _ in range(batch)]
        db.execute("BEGIN IMMEDIATE")
        db.executemany("INSERT INTO events (workspace_id, contact_id, event_name_id, created_at, received_at, role, "
                       "source, dedupe_key, metadata, metadata_types) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        if aggregates:
            db.executemany("INSERT INTO contact_event_stats (event_name_id, contact_id, visitor_phase, count, "
                           "first_at, last_at) VALUES (?, ?, 1, 1, ?, ?) ON CONFLICT DO UPDATE SET "
                           "count = count + 1, last_at = max(last_at, excluded.last_at)",
                           sorted((r[2], r[1], r[3], r[3]) for r in rows))
            db.executemany("UPDATE event_names SET event_count = event_count + 1, last_seen = ? WHERE id = ?",
                           [(t, n) for n in sorted({r[2] for r in rows})])
            db.executemany("INSERT INTO event_daily_counts (event_name_id, day, count) VALUES (?, ?, 1) "
                           "ON CONFLICT DO UPDATE SET count = count + 1", [(r[2], t // 86400) for r in rows])
        db.execute("COMMIT")

    for _ in range(max(1, events // 2 // batch)):  # warm: the indexes grow past the first pages
        one_batch()
    rounds = max(1, events // batch)
    start = time.process_time()
    for _ in range(rounds):
        one_batch()
    db.close()
    return (time.process_time() - start) / (rounds * batch) * 1e6


def measure(batches: list[int], events: int) -> list[tuple[int, float, float]]:
    """``(batch, events only, events + aggregates)`` in CPU µs per event, each on a fresh file."""
    out = []
    with tempfile.TemporaryDirectory(prefix="trailmark-floor-") as tmp:
        for batch in batches:
            figures = []
            for aggregates in (False, True):
                path = f"{tmp}/floor-{batch}-{aggregates}.db"
                workspace_id, contacts = asyncio.run(_fresh(path))
                figures.append(per_event_us(path, workspace_id, contacts, batch, events, aggregates))
            out.append((batch, figures[0], figures[1]))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", default="1,16,32", help="requests per transaction (1,16,32)")
    parser.add_argument("--events", type=int, default=6000, help="events measured per figure (6000)")
    args = parser.parse_args(argv)
    for batch, plain, full in measure([int(b) for b in args.batches.split(",")], args.events):
        print(f"{batch:>3} per transaction: events row only {plain:6.1f} µs, with the aggregates {full:6.1f} µs "
              "CPU per event")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
