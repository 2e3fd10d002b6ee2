"""Events as they are committed, for the admin's live view (server-sent events).

``LiveHub`` wakes the live view's streams of a workspace when events of that workspace were committed. In one
process (SQLite) the store tells it directly after each commit (``store.on_commit``). With PostgreSQL and several
processes, each committed ingest batch sends one ``NOTIFY trailmark_events, '<workspace ids>'`` inside its
transaction (delivered only if it commits; one per batch, not per event), and every process LISTENs on a
connection of its own and wakes its streams. A stream, once woken, reads what is new after its cursor (the last
event id it sent), so a missed or merged wake-up loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

log = logging.getLogger("trailmark.live")
CHANNEL = "trailmark_events"


class LiveHub:
    def __init__(self) -> None:
        self._waiters: dict[int, set[asyncio.Event]] = defaultdict(set)
        self._listener: Any = None

    def notify(self, workspace_ids: Iterable[int]) -> None:
        for ws in workspace_ids:
            for event in self._waiters.get(ws, ()):
                event.set()

    def notify_payload(self, payload: str) -> None:
        self.notify(int(p) for p in payload.split(",") if p.isdigit())

    @contextlib.contextmanager
    def subscribe(self, workspace_id: int) -> Any:
        event = asyncio.Event()
        self._waiters[workspace_id].add(event)
        try:
            yield event
        finally:
            self._waiters[workspace_id].discard(event)
            if not self._waiters[workspace_id]:
                del self._waiters[workspace_id]

    # ------------------------------------------------------------ PostgreSQL: LISTEN in every process
    async def listen(self, url: str) -> None:
        import asyncpg

        self._listener = await asyncpg.connect(url)
        await self._listener.add_listener(CHANNEL, lambda _c, _pid, _ch, payload: self.notify_payload(payload))

    async def close(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None
