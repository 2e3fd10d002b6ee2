"""Event names: the list with counters, descriptions, archiving and daily counts (a part of the store)."""

from __future__ import annotations

from typing import Any

from ..domain_errors import NameLimitReached
from .db import Conn, Database
from .events import lock_event_names
from .models import (
    EventName,
    Workspace,
)
from .name_policy import MAX_ACTIVE_EVENT_NAMES
from .sql_helpers import DAY, now_s


class EventNames:
    """A workspace's event names: their counters, daily counts and dropped metadata, description, archiving."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # ---------------------------------------------------------------- event names
    async def event_names(self, workspace: Workspace) -> list[EventName]:
        async with self.db.read() as conn:
            rows = await conn.fetch_all("SELECT * FROM event_names WHERE workspace_id = ? ORDER BY name",
                                        (workspace.id,))
        return [EventName.from_row(r) for r in rows]

    async def event_name(self, workspace: Workspace, name: str) -> EventName | None:
        async with self.db.read() as conn:
            row = await conn.fetch_one("SELECT * FROM event_names WHERE workspace_id = ? AND name = ?",
                                       (workspace.id, name))
        return EventName.from_row(row) if row else None

    async def metadata_drops(self, workspace: Workspace, event_name_id: int) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            rows = await conn.fetch_all(
                "SELECT d.key, d.reason, d.count, d.last_seen FROM metadata_drops d JOIN event_names n "
                "ON n.id = d.event_name_id WHERE n.workspace_id = ? AND d.event_name_id = ? "
                "ORDER BY d.count DESC", (workspace.id, event_name_id))
        return [dict(key=r["key"], reason=r["reason"], count=r["count"], last_seen=r["last_seen"]) for r in rows]

    async def daily_counts(self, workspace: Workspace, event_name_id: int, days: int = 30) -> list[tuple[int, int]]:
        """``(day start, count)`` for the last ``days`` days, zero-filled, oldest first."""
        today = now_s() // DAY
        async with self.db.read() as conn:
            rows = await conn.fetch_all(
                "SELECT c.day, c.count FROM event_daily_counts c JOIN event_names n ON n.id = c.event_name_id "
                "WHERE n.workspace_id = ? AND c.event_name_id = ? AND c.day > ?",
                (workspace.id, event_name_id, today - days))
        by_day = {r["day"]: r["count"] for r in rows}
        return [((d) * DAY, int(by_day.get(d, 0))) for d in range(today - days + 1, today + 1)]

    async def set_event_description(self, workspace: Workspace, name: str, description: str) -> None:
        async def job(conn: Conn) -> None:
            await conn.execute("UPDATE event_names SET description = ? WHERE workspace_id = ? AND name = ?",
                               (description or None, workspace.id, name))
        await self.db.write(job)

    async def set_event_archived(self, workspace: Workspace, name: str, archived: bool) -> None:
        """Archive or unarchive. Unarchiving must respect the 120-active-names limit."""
        async def job(conn: Conn) -> None:
            if not archived:
                await lock_event_names(conn, workspace.id)
                row = await conn.fetch_one("SELECT COUNT(*) AS n FROM event_names WHERE workspace_id = ? "
                                           "AND archived = 0", (workspace.id,))
                if row and row["n"] >= MAX_ACTIVE_EVENT_NAMES:
                    raise NameLimitReached("Cannot have more than 120 active event names")
            await conn.execute("UPDATE event_names SET archived = ? WHERE workspace_id = ? AND name = ?",
                               (int(archived), workspace.id, name))
        await self.db.write(job)


# -------------------------------------------------------------------- helpers run inside write jobs
