"""Purging anonymous visitors' events past the retention window (90 days unless the workspace says so).

Used by the server's background task (every ``purge_interval_seconds``) and by ``trailmark purge``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from .store import SQLStore
from .store.models import Workspace
from .store.retention import PurgeCursor
from .store.sql_helpers import DAY

log = logging.getLogger("trailmark.retention")


def cutoff_for(workspace: Workspace, now: int | None = None) -> int:
    return int(time.time() if now is None else now) - workspace.retention_days * DAY


async def purge_workspace(store: SQLStore, workspace: Workspace, *, now: int | None = None,
                          batch_size: int = 1000,
                          progress: Callable[[int, int], None] | None = None) -> tuple[int, int]:
    """Delete expired visitor events, then expired empty visitors, batch by batch.

    Between batches it yields to the event loop, so ingest requests go first.
    Returns ``(events deleted, visitors deleted)``.
    """
    cutoff = cutoff_for(workspace, now)
    cursor = PurgeCursor()
    events = visitors = 0
    while True:
        e, v = await store.purge_expired_batch(workspace, cutoff, batch_size, cursor)
        if not e and not v:
            return events, visitors
        events, visitors = events + e, visitors + v
        if progress:
            progress(events, visitors)
        await asyncio.sleep(0)


async def purge_forever(store: SQLStore, interval: float) -> None:
    """The server's background task. Several processes may run it at once: deletes are idempotent.
    The first round waits a minute, so start-up (and a test's set-up) goes first."""
    await asyncio.sleep(min(60.0, interval))
    while True:
        try:
            for workspace in await store.list_workspaces():
                events, visitors = await purge_workspace(store, workspace)
                if events or visitors:
                    log.info("purged %s visitor events and %s visitors of %s", events, visitors, workspace.app_id)
        except Exception:  # a failed round must not stop retention for good
            log.exception("purge round failed")
        await asyncio.sleep(interval)
