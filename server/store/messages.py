"""Event-triggered messages: the documents, their deliveries to contacts, and daily counts.

A store part of its own (``store.messages``; it needs only ``db``). Tables (migration 8):

- ``messages``: one per (workspace, key): the normalised JSON document, its state, the trigger's event name
  (so live messages are found by name), ``went_live_at`` (set each time it goes live: only events after it
  trigger, and "first time" counts from it).
- ``message_deliveries``: one per (message, triggering event's dedupe key), unique, so a retried event never
  triggers twice and gets the same delivery back. Status ``pending`` (a post or chat triggered by a server
  source, shown on the contact's next page view until ``expires_at``), ``sent``, then ``shown``, ``clicked``,
  ``dismissed`` with the time of each, each counted once.
- ``message_daily_stats``: sent / shown / clicked / dismissed per message and UTC day.
- ``message_settings``: the workspace's minimum gap between two messages to one contact (off by default).

The message's own logic (validation, decisions) is in ``server/messages/``; this module only stores.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .admin_reads import EventFilter, _correlated_condition
from .db import Conn, Database
from .models import Contact, Workspace
from .sql_helpers import DAY, placeholders

PENDING, SENT, SHOWN, CLICKED, DISMISSED = "pending", "sent", "shown", "clicked", "dismissed"
MARKS = (SHOWN, CLICKED, DISMISSED)
# Live contacts and the contacts merged into them, as in conversations.
_OWNED = "contact_id IN (SELECT id FROM contacts WHERE id = ? OR merged_into = ?)"


@dataclass(frozen=True)
class StoredMessage:
    id: int
    workspace_id: int
    key: str
    kind: str
    state: str
    event_name: str
    document: dict[str, Any]
    went_live_at: int | None
    created_at: int
    updated_at: int

    @classmethod
    def from_row(cls, row: Any) -> StoredMessage:
        return cls(
            id=row["id"],
            workspace_id=row["workspace_id"],
            key=row["key"],
            kind=row["kind"],
            state=row["state"],
            event_name=row["event_name"],
            document=json.loads(row["document"]),
            went_live_at=row["went_live_at"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


@dataclass(frozen=True)
class Delivery:
    id: int
    message_id: int
    message_key: str
    kind: str
    contact_id: str
    dedupe_key: str
    source: str
    status: str
    content: dict[str, Any]
    created_at: int
    expires_at: int | None
    sent_at: int | None
    shown_at: int | None
    clicked_at: int | None
    dismissed_at: int | None

    @classmethod
    def from_row(cls, row: Any) -> Delivery:
        return cls(
            id=row["id"],
            message_id=row["message_id"],
            message_key=row["message_key"],
            kind=row["kind"],
            contact_id=row["contact_id"],
            dedupe_key=row["dedupe_key"],
            source=row["source"],
            status=row["status"],
            content=json.loads(row["content"]),
            created_at=row["created_at"],
            expires_at=row["expires_at"],
            sent_at=row["sent_at"],
            shown_at=row["shown_at"],
            clicked_at=row["clicked_at"],
            dismissed_at=row["dismissed_at"],
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "message": self.message_key,
            "kind": self.kind,
            "status": self.status,
            "content": self.content,
            "created_at": self.created_at,
            "sent_at": self.sent_at,
            "shown_at": self.shown_at,
            "clicked_at": self.clicked_at,
            "dismissed_at": self.dismissed_at,
        }


@dataclass(frozen=True)
class Applied:
    message: StoredMessage
    outcome: str  # created | updated | unchanged


_DELIVERY = (
    "SELECT d.*, m.key AS message_key, m.kind AS kind FROM message_deliveries d JOIN messages m ON m.id = d.message_id"
)


def _day(t: int) -> int:
    return t - t % DAY


def _lock_key(contact_id: str) -> int:
    return int.from_bytes(hashlib.sha256(b"trailmark-messages:" + contact_id.encode()).digest()[:8], "big", signed=True)


async def _count(conn: Conn, message_id: int, day: int, column: str) -> None:
    assert column in ("sent", "shown", "clicked", "dismissed")
    await conn.execute(
        f"INSERT INTO message_daily_stats (message_id, day, {column}) VALUES (?, ?, 1) "
        f"ON CONFLICT (message_id, day) DO UPDATE SET {column} = message_daily_stats.{column} + 1",
        (message_id, day),
    )


class MessageStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        # The engine's parsed live messages per workspace (server/messages/engine.py); cleared on every change
        # made through this store, so this process sees its own changes at once.
        self.live_cache: dict[int, Any] = {}

    # ------------------------------------------------------------ the documents
    async def apply(
        self,
        workspace: Workspace,
        *,
        key: str,
        kind: str,
        state: str,
        event_name: str,
        document: dict[str, Any],
        now: int | None = None,
    ) -> Applied:
        """Create or update the message ``key`` (idempotent: the same document again changes nothing).
        Going live (from any other state) sets ``went_live_at``."""
        t = int(time.time()) if now is None else now
        text = json.dumps(document, sort_keys=True, separators=(",", ":"))

        async def job(conn: Conn) -> str:
            row = await conn.fetch_one(
                "SELECT id, state, document FROM messages WHERE workspace_id = ? AND key = ?", (workspace.id, key)
            )
            if row is None:
                await conn.execute(
                    "INSERT INTO messages (workspace_id, key, kind, state, event_name, document, went_live_at, "
                    "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (workspace.id, key, kind, state, event_name, text, t if state == "live" else None, t, t),
                )
                return "created"
            if row["document"] == text:
                return "unchanged"
            went_live = "went_live_at = ?, " if state == "live" and row["state"] != "live" else ""
            await conn.execute(
                f"UPDATE messages SET {went_live}kind = ?, state = ?, event_name = ?, document = ?, updated_at = ? "
                "WHERE id = ?",
                (*([t] if went_live else []), kind, state, event_name, text, t, row["id"]),
            )
            return "updated"

        outcome: str = await self.db.write(job)
        self.live_cache.pop(workspace.id, None)
        stored = await self.get(workspace, key)
        assert stored is not None
        return Applied(stored, outcome)

    async def list(self, workspace: Workspace, state: str | None = None) -> builtins.list[StoredMessage]:
        where, args = "workspace_id = ?", builtins.list[Any]([workspace.id])
        if state is not None:
            where, args = where + " AND state = ?", [*args, state]
        async with self.db.read() as conn:
            rows = await conn.fetch_all(f"SELECT * FROM messages WHERE {where} ORDER BY key", args)
        return [StoredMessage.from_row(r) for r in rows]

    async def get(self, workspace: Workspace, key: str) -> StoredMessage | None:
        async with self.db.read() as conn:
            row = await conn.fetch_one("SELECT * FROM messages WHERE workspace_id = ? AND key = ?", (workspace.id, key))
        return StoredMessage.from_row(row) if row else None

    async def set_state(
        self, workspace: Workspace, key: str, state: str, now: int | None = None
    ) -> StoredMessage | None:
        """Change the state (the document's ``state`` too); None when there is no such message."""
        current = await self.get(workspace, key)
        if current is None:
            return None
        applied = await self.apply(
            workspace,
            key=key,
            kind=current.kind,
            state=state,
            event_name=current.event_name,
            document={**current.document, "state": state},
            now=now,
        )
        return applied.message

    async def live_by_event(self, workspace_id: int) -> dict[str, builtins.list[StoredMessage]]:
        """The workspace's live messages, by their trigger's event name."""
        async with self.db.read() as conn:
            rows = await conn.fetch_all(
                "SELECT * FROM messages WHERE workspace_id = ? AND state = 'live' ORDER BY key", (workspace_id,)
            )
        out: dict[str, builtins.list[StoredMessage]] = {}
        for r in rows:
            m = StoredMessage.from_row(r)
            out.setdefault(m.event_name, []).append(m)
        return out

    # ------------------------------------------------------------ workspace setting
    async def gap_minutes(self, workspace: Workspace) -> int | None:
        """At most one message per contact per this many minutes, across all messages (None: off)."""
        async with self.db.read() as conn:
            row = await conn.fetch_one(
                "SELECT gap_minutes FROM message_settings WHERE workspace_id = ?", (workspace.id,)
            )
        return int(row["gap_minutes"]) if row and row["gap_minutes"] else None

    async def set_gap_minutes(self, workspace: Workspace, minutes: int | None) -> None:
        async def job(conn: Conn) -> None:
            await conn.execute(
                "INSERT INTO message_settings (workspace_id, gap_minutes) VALUES (?, ?) "
                "ON CONFLICT (workspace_id) DO UPDATE SET gap_minutes = excluded.gap_minutes",
                (workspace.id, minutes or None),
            )

        await self.db.write(job)
        self.live_cache.pop(workspace.id, None)

    # ------------------------------------------------------------ deliveries
    async def record_delivery(
        self,
        workspace: Workspace,
        message: StoredMessage,
        contact_id: str,
        dedupe_key: str,
        *,
        source: str,
        content: dict[str, Any],
        pending_days: int | None = None,
        cap: tuple[int, int] | None = None,
        gap_since: int | None = None,
        now: int | None = None,
    ) -> tuple[Delivery | None, bool]:
        """Record that ``message`` goes to the contact because of the event ``dedupe_key``.

        Idempotent per (message, dedupe key): a retry returns the first delivery and ``False``. ``cap``
        ``(max, since)``: refused (``(None, False)``) when the contact already has ``max`` deliveries of this
        message since then; ``gap_since``: refused when the contact had any delivery since then. Both are
        checked in the transaction that inserts (per contact, under a lock on PostgreSQL), so two events at
        once cannot both pass a cap of one. ``pending_days``: a pending delivery (next page view) kept that
        many days; otherwise it is sent now."""
        t = int(time.time()) if now is None else now
        status = PENDING if pending_days is not None else SENT
        expires = t + pending_days * DAY if pending_days is not None else None

        async def job(conn: Conn) -> tuple[int | None, bool]:
            await conn.dialect.lock(conn, _lock_key(contact_id))
            # The contact may have been erased since the caller resolved it (an erasure beside its browser's
            # batch): nothing to deliver. Erased after this read, the insert's foreign key fails and the
            # transaction runs again (postgres_db: a lost race), and this read then sees it gone.
            alive = await conn.fetch_one("SELECT 1 AS x FROM contacts WHERE id = ? AND workspace_id = ?",
                                         (contact_id, workspace.id))
            if alive is None:
                return None, False
            seen = await conn.fetch_one(
                "SELECT id FROM message_deliveries WHERE message_id = ? AND dedupe_key = ?", (message.id, dedupe_key)
            )
            if seen is not None:
                return int(seen["id"]), False
            if cap is not None:
                row = await conn.fetch_one(
                    "SELECT COUNT(*) AS n FROM message_deliveries WHERE message_id = ? AND contact_id = ? "
                    "AND created_at > ?",
                    (message.id, contact_id, cap[1]),
                )
                if row and int(row["n"]) >= cap[0]:
                    return None, False
            if gap_since is not None:
                row = await conn.fetch_one(
                    "SELECT 1 AS x FROM message_deliveries WHERE workspace_id = ? AND "
                    "contact_id = ? AND created_at > ? LIMIT 1",
                    (workspace.id, contact_id, gap_since),
                )
                if row is not None:
                    return None, False
            await conn.execute(
                "INSERT INTO message_deliveries (workspace_id, message_id, contact_id, dedupe_key, source, status, "
                "content, created_at, expires_at, sent_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    workspace.id,
                    message.id,
                    contact_id,
                    dedupe_key,
                    source,
                    status,
                    json.dumps(content),
                    t,
                    expires,
                    t if status == SENT else None,
                ),
            )
            row = await conn.fetch_one(
                "SELECT id FROM message_deliveries WHERE message_id = ? AND dedupe_key = ?", (message.id, dedupe_key)
            )
            assert row is not None
            if status == SENT:
                await _count(conn, message.id, _day(t), "sent")
            return int(row["id"]), True

        delivery_id, created = await self.db.write(job)
        if delivery_id is None:
            return None, False
        return await self.delivery(workspace, delivery_id), created

    async def find_delivery(self, workspace: Workspace, message_id: int, dedupe_key: str) -> Delivery | None:
        async with self.db.read() as conn:
            row = await conn.fetch_one(
                f"{_DELIVERY} WHERE d.message_id = ? AND d.dedupe_key = ? AND d.workspace_id = ?",
                (message_id, dedupe_key, workspace.id),
            )
        return Delivery.from_row(row) if row else None

    async def delivery(self, workspace: Workspace, delivery_id: int) -> Delivery | None:
        async with self.db.read() as conn:
            row = await conn.fetch_one(
                f"{_DELIVERY} WHERE d.id = ? AND d.workspace_id = ?", (delivery_id, workspace.id)
            )
        return Delivery.from_row(row) if row else None

    async def mark(self, workspace: Workspace, delivery_id: int, what: str, now: int | None = None) -> bool:
        """Record that a delivery was shown, clicked or dismissed: once each (a repeat changes nothing and
        returns False). A click or a dismissal implies it was shown."""
        if what not in MARKS:
            raise ValueError(what)
        t = int(time.time()) if now is None else now

        async def job(conn: Conn) -> bool:
            row = await conn.fetch_one(
                "SELECT message_id, status FROM message_deliveries WHERE id = ? AND workspace_id = ?",
                (delivery_id, workspace.id),
            )
            if row is None:
                return False
            if row["status"] == PENDING:  # shown straight from pending: it was handed over, so it counts as sent
                await conn.execute(
                    "UPDATE message_deliveries SET status = 'sent', sent_at = ? WHERE id = ?", (t, delivery_id)
                )
                await _count(conn, int(row["message_id"]), _day(t), "sent")
            marks = [SHOWN, what] if what != SHOWN else [SHOWN]
            counted = False
            for mark in marks:
                changed = await conn.execute(
                    f"UPDATE message_deliveries SET {mark}_at = ?, status = ?, sent_at = COALESCE(sent_at, ?) "
                    f"WHERE id = ? AND {mark}_at IS NULL",
                    (t, what, t, delivery_id),
                )
                if changed:
                    await _count(conn, int(row["message_id"]), _day(t), mark)
                    counted = counted or mark == what
            return counted

        result: bool = await self.db.write(job)
        return result

    async def pending_for_contact(
        self, workspace: Workspace, contact_id: str, now: int | None = None
    ) -> builtins.list[Delivery]:
        """Posts and chats waiting for the contact's next page view (not expired), oldest first."""
        t = int(time.time()) if now is None else now
        async with self.db.read() as conn:
            rows = await conn.fetch_all(
                f"{_DELIVERY} WHERE d.workspace_id = ? AND d.status = 'pending' AND d.expires_at > ? AND d.{_OWNED} "
                "ORDER BY d.created_at, d.id",
                (workspace.id, t, contact_id, contact_id),
            )
        return [Delivery.from_row(r) for r in rows]

    async def mark_delivered(self, workspace: Workspace, ids: Sequence[int], now: int | None = None) -> int:
        """Pending deliveries handed to the browser: now sent (counted once)."""
        t = int(time.time()) if now is None else now
        if not ids:
            return 0

        async def job(conn: Conn) -> int:
            done = 0
            for i in ids:
                row = await conn.fetch_one(
                    "SELECT message_id FROM message_deliveries WHERE id = ? AND workspace_id = ? "
                    "AND status = 'pending'",
                    (i, workspace.id),
                )
                if row is None:
                    continue
                if await conn.execute(
                    "UPDATE message_deliveries SET status = 'sent', sent_at = ? WHERE id = ? AND status = 'pending'",
                    (t, i),
                ):
                    await _count(conn, int(row["message_id"]), _day(t), "sent")
                    done += 1
            return done

        result: int = await self.db.write(job)
        return result

    async def deliveries_for_contact(
        self, workspace: Workspace, contact_id: str, limit: int = 20
    ) -> builtins.list[Delivery]:
        """What the contact (and the contacts merged into it) was sent, newest first (the profile's card)."""
        async with self.db.read() as conn:
            rows = await conn.fetch_all(
                f"{_DELIVERY} WHERE d.workspace_id = ? AND d.{_OWNED} ORDER BY d.created_at DESC, d.id DESC LIMIT ?",
                (workspace.id, contact_id, contact_id, limit),
            )
        return [Delivery.from_row(r) for r in rows]

    async def sent_times(
        self, workspace: Workspace, message_id: int, contact_id: str, since: int
    ) -> builtins.list[int]:
        """When this message was delivered to the contact (its merged history) since ``since`` (for caps)."""
        async with self.db.read() as conn:
            rows = await conn.fetch_all(
                f"SELECT created_at FROM message_deliveries WHERE message_id = ? AND {_OWNED} "
                "AND created_at > ? ORDER BY created_at",
                (message_id, contact_id, contact_id, since),
            )
        return [int(r["created_at"]) for r in rows]

    async def count_for_contact(
        self, workspace: Workspace, contact_id: str, since: int, message_id: int | None = None
    ) -> int:
        """Deliveries to the contact since ``since``: of one message, or of any."""
        where, args = f"workspace_id = ? AND {_OWNED} AND created_at > ?", [workspace.id, contact_id, contact_id, since]
        if message_id is not None:
            where, args = where + " AND message_id = ?", [*args, message_id]
        async with self.db.read() as conn:
            row = await conn.fetch_one(f"SELECT COUNT(*) AS n FROM message_deliveries WHERE {where}", args)
        return int(row["n"]) if row else 0

    async def last_delivery_at(self, workspace: Workspace, contact_id: str) -> int | None:
        async with self.db.read() as conn:
            row = await conn.fetch_one(
                f"SELECT MAX(created_at) AS t FROM message_deliveries WHERE workspace_id = ? AND {_OWNED}",
                (workspace.id, contact_id, contact_id),
            )
        return int(row["t"]) if row and row["t"] is not None else None

    async def contact_by_email(self, workspace: Workspace, email: str) -> Contact | None:
        """The live user, else lead, with this email (case-insensitive): a message's recipient."""
        async with self.db.read() as conn:
            row = await conn.fetch_one(
                "SELECT * FROM contacts WHERE workspace_id = ? AND lower(email) = lower(?) AND merged_into IS NULL "
                "AND role IN ('user', 'lead') ORDER BY CASE role WHEN 'user' THEN 0 ELSE 1 END, created_at LIMIT 1",
                (workspace.id, email),
            )
        return Contact.from_row(row) if row else None

    # ------------------------------------------------------------ stats
    async def daily_stats(
        self, workspace: Workspace, message_id: int, days: int = 30, now: int | None = None
    ) -> builtins.list[tuple[int, dict[str, int]]]:
        """``(day start, {sent, shown, clicked, dismissed})`` for each of the last ``days`` UTC days, oldest first."""
        t = int(time.time()) if now is None else now
        first = _day(t) - (days - 1) * DAY
        async with self.db.read() as conn:
            rows = await conn.fetch_all(
                "SELECT s.* FROM message_daily_stats s JOIN messages m ON m.id = s.message_id WHERE s.message_id = ? "
                "AND m.workspace_id = ? AND s.day >= ?",
                (message_id, workspace.id, first),
            )
        found = {int(r["day"]): {k: int(r[k]) for k in ("sent", "shown", "clicked", "dismissed")} for r in rows}
        zero = {"sent": 0, "shown": 0, "clicked": 0, "dismissed": 0}
        return [(first + i * DAY, found.get(first + i * DAY, dict(zero))) for i in range(days)]

    async def totals(self, workspace: Workspace) -> dict[int, dict[str, int]]:
        """All-time sent / shown / clicked / dismissed per message id."""
        async with self.db.read() as conn:
            rows = await conn.fetch_all(
                "SELECT s.message_id, SUM(s.sent) AS sent, SUM(s.shown) AS shown, SUM(s.clicked) AS clicked, "
                "SUM(s.dismissed) AS dismissed FROM message_daily_stats s JOIN messages m ON m.id = s.message_id "
                "WHERE m.workspace_id = ? GROUP BY s.message_id",
                (workspace.id,),
            )
        return {
            int(r["message_id"]): {k: int(r[k] or 0) for k in ("sent", "shown", "clicked", "dismissed")} for r in rows
        }

    # ------------------------------------------------------------ audience (the contact list's filters)
    async def _name_ids(self, conn: Conn, workspace: Workspace, names: Sequence[str]) -> dict[str, int]:
        wanted = sorted(set(names))
        if not wanted:
            return {}
        rows = await conn.fetch_all(
            f"SELECT id, name FROM event_names WHERE workspace_id = ? AND name IN ({placeholders(len(wanted))})",
            (workspace.id, *wanted),
        )
        return {r["name"]: int(r["id"]) for r in rows}

    async def event_filters_match(
        self, workspace: Workspace, contact_id: str, filters: Sequence[EventFilter], now: int | None = None
    ) -> builtins.list[bool]:
        """Each filter for one live contact, with the contact list's own SQL (``admin_reads``): the same
        merged history and visitor floors, the same "N days ago"."""
        if not filters:
            return []
        t = int(time.time()) if now is None else now
        async with self.db.read() as conn:
            ids = await self._name_ids(conn, workspace, [f.event_name for f in filters])
            out = []
            for f in filters:
                cond, args = _correlated_condition(f, ids.get(f.event_name, -1), t)
                row = await conn.fetch_one(
                    f"SELECT 1 AS x FROM contacts c WHERE c.id = ? AND c.workspace_id = ? AND {cond}",
                    (contact_id, workspace.id, *args),
                )
                out.append(row is not None)
        return out

    async def audience_contacts(
        self,
        workspace: Workspace,
        roles: Sequence[str],
        filters: Sequence[EventFilter],
        *,
        count_only: bool,
        limit: int = 20000,
        now: int | None = None,
    ) -> tuple[int, builtins.list[Contact]]:
        """Live contacts with one of ``roles`` matching every event filter: their number (``count_only``), or
        up to ``limit`` of them (for conditions checked in Python, such as attributes)."""
        t = int(time.time()) if now is None else now
        async with self.db.read() as conn:
            await conn.dialect.without_jit(conn)  # as the contact list: per-contact probes
            ids = await self._name_ids(conn, workspace, [f.event_name for f in filters])
            conds, args = (
                ["c.workspace_id = ?", "c.merged_into IS NULL", f"c.role IN ({placeholders(len(roles))})"],
                [workspace.id, *roles],
            )
            for f in filters:
                cond, a = _correlated_condition(f, ids.get(f.event_name, -1), t)
                conds.append(cond)
                args += a
            where = " AND ".join(conds)
            if count_only:
                row = await conn.fetch_one(f"SELECT COUNT(*) AS n FROM contacts c WHERE {where}", args)
                return (int(row["n"]) if row else 0), []
            rows = await conn.fetch_all(f"SELECT c.* FROM contacts c WHERE {where} LIMIT ?", (*args, limit))
        return len(rows), [Contact.from_row(r) for r in rows]

    async def earlier_occurrences(
        self, workspace: Workspace, contact_id: str, event_name: str, since: int, created_at: int, dedupe_key: str
    ) -> int:
        """The contact's events named ``event_name`` (its merged history) from ``since`` up to ``created_at``,
        other than the event ``dedupe_key`` itself ("first time since the message went live")."""
        async with self.db.read() as conn:
            row = await conn.fetch_one(
                f"SELECT COUNT(*) AS n FROM events e JOIN event_names n ON n.id = e.event_name_id "
                f"WHERE n.workspace_id = ? AND n.name = ? AND e.{_OWNED} AND e.created_at >= ? "
                "AND e.created_at <= ? AND e.dedupe_key <> ?",
                (workspace.id, event_name, contact_id, contact_id, since, created_at, dedupe_key),
            )
        return int(row["n"]) if row else 0
