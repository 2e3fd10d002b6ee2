"""The live view's reads: events in arrival order (by id) after a cursor, with the contact they now belong to.

A store part of its own (it needs only ``db``). Events are read by primary key range, so the query costs the
events it returns, whatever the table's size.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .db import Database
from .models import Workspace

_SELECT = (
    "SELECT e.id, n.name AS event_name, e.created_at, e.source, e.metadata, e.metadata_types, "
    "COALESCE(r.id, c.id) AS contact_id, COALESCE(r.role, c.role) AS role, COALESCE(r.name, c.name) AS name, "
    "COALESCE(r.email, c.email) AS email, COALESCE(r.external_id, c.external_id) AS user_id "
    "FROM events e JOIN event_names n ON n.id = e.event_name_id JOIN contacts c ON c.id = e.contact_id "
    "LEFT JOIN contacts r ON r.id = c.merged_into")


@dataclass(frozen=True)
class LiveEvent:
    id: int
    event_name: str
    created_at: int
    source: str
    metadata: dict[str, Any]
    metadata_types: dict[str, str]
    contact_id: str
    role: str
    name: str | None
    email: str | None
    user_id: str | None

    @classmethod
    def from_row(cls, row: Any) -> LiveEvent:
        return cls(id=row["id"], event_name=row["event_name"], created_at=row["created_at"], source=row["source"],
                   metadata=json.loads(row["metadata"] or "{}"),
                   metadata_types=json.loads(row["metadata_types"] or "{}"),
                   contact_id=row["contact_id"], role=row["role"], name=row["name"], email=row["email"],
                   user_id=row["user_id"])

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "event_name": self.event_name, "created_at": self.created_at, "source": self.source,
                "metadata": self.metadata, "contact": {"id": self.contact_id, "role": self.role, "name": self.name,
                                                       "email": self.email, "user_id": self.user_id}}


class LiveReads:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def events_after(self, workspace: Workspace, after_id: int | None, *, limit: int = 100,
                           event_name: str | None = None, contact_id: str | None = None) -> list[LiveEvent]:
        """Events after ``after_id`` in arrival order; with ``after_id`` None, the latest ``limit`` (oldest
        first). ``contact_id`` matches the contact and every contact merged into it."""
        where = ["e.workspace_id = ?"]
        args: list[int | str] = [workspace.id]
        if after_id is not None:
            where.append("e.id > ?")
            args.append(after_id)
        if event_name:
            where.append("n.name = ?")
            args.append(event_name)
        if contact_id:
            where.append("(c.id = ? OR c.merged_into = ?)")
            args += [contact_id, contact_id]
        order = "ASC" if after_id is not None else "DESC"
        async with self.db.read() as conn:
            rows = await conn.fetch_all(f"{_SELECT} WHERE {' AND '.join(where)} ORDER BY e.id {order} LIMIT ?",
                                        (*args, limit))
        events = [LiveEvent.from_row(r) for r in rows]
        return events if after_id is not None else events[::-1]

    async def last_event_id(self, workspace: Workspace) -> int:
        async with self.db.read() as conn:
            row = await conn.fetch_one("SELECT MAX(id) AS id FROM events WHERE workspace_id = ?", (workspace.id,))
        return int(row["id"] or 0) if row else 0
