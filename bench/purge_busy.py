"""The purge of one busy anonymous visitor (a bot, say): how fast its expired events go, batch by batch.

One visitor tracks ``--events`` events under two names, ``--expired`` of them older than the 90-day cutoff;
then the purge runs in its batches of 1,000 until nothing expired is left. Each batch also updates the
per-contact stats rows it touched (server/store/contact_stats.py): the figure shows what that costs when a
key has many events. Whichever Trailmark the running Python imports is measured, so two checkouts compare
side by side (``OTHER/bin/python bench/purge_busy.py``).

    python bench/purge_busy.py [--events 200000] [--expired 100000] [--store sqlite|postgresql://…]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

DAY = 86400


async def run(url: str, events: int, expired: int) -> tuple[float, int]:
    from trailmark.store import open_store
    from trailmark.store.models import AppendRequest, NewEvent

    store = open_store(url)
    await store.open()
    try:
        ws = await store.create_workspace("Busy visitor")
        visitor = await store.create_visitor(ws)
        now = int(time.time())
        cutoff = now - 90 * DAY
        for start in range(0, events, 1000):
            batch = [NewEvent(("viewed", "clicked")[k % 2],
                              cutoff - 1 - k % (30 * DAY) if k < expired else now - k % (30 * DAY),
                              f"e{k}", {}, {}) for k in range(start, min(events, start + 1000))]
            await store.append_events(AppendRequest(ws.id, visitor.id, "js", batch))
        began = time.perf_counter()
        try:  # as a round of the server's purge; checkouts before 2026-12-02 had no cursor
            from trailmark.store.retention import PurgeCursor
            cursor: tuple[Any, ...] = (PurgeCursor(),)
        except ImportError:
            cursor = ()
        deleted = 0
        while True:
            n, _ = await store.purge_expired_batch(ws, cutoff, 1000, *cursor)
            if n == 0:
                break
            deleted += n
        return time.perf_counter() - began, deleted
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--expired", type=int, default=100_000)
    parser.add_argument("--store", default="sqlite", help="sqlite (a fresh file) or a postgresql:// URL of an empty "
                        "database")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'purge.db'}" if args.store == "sqlite" else args.store
        seconds, deleted = asyncio.run(run(url, args.events, args.expired))
    print(f"purged {deleted:,} of one visitor's {args.events:,} events in {seconds:.1f} s: "
          f"{deleted / seconds:,.0f} events/s")


if __name__ == "__main__":
    main()
