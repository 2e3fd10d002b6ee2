"""Conversations: what a contact writes from the Messenger's panel and what teammates answer in the inbox.

A store part of its own (the store is composed of parts; this one needs only ``db``). Tables (migration 7):
``conversations`` (one thread: its contact, open/closed, assignee, read marks) and ``conversation_parts``
(every message, and every close, reopen and assignment, as a recorded part: nothing is overwritten).

Whose conversation: the contact that wrote it. When that contact is merged (a lead into a user), its
conversations show on the survivor, found through ``contacts.merged_into`` (which always names the root),
like its events: nothing is copied, and an undone merge takes them back.

Unread, by part ids (times can tie within a second): for the team, a conversation whose last contact
message is after ``team_read_part``; for the contact, teammate comments after ``contact_read_part`` (the
launcher's badge).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from .db import Conn, Database
from .models import Workspace
from .sql_helpers import placeholders

OPEN, CLOSED = "open", "closed"
COMMENT, CLOSE, REOPEN, ASSIGN = "comment", "close", "open", "assign"
CONTACT, TEAMMATE = "contact", "teammate"
# A contact's conversations: those of the contact itself and of every contact merged into it.
OWNED_BY = "cv.contact_id IN (SELECT id FROM contacts WHERE id = ? OR merged_into = ?)"


@dataclass(frozen=True)
class Part:
    id: int
    conversation_id: int
    kind: str  # comment | close | open | assign
    author_type: str  # contact | teammate
    author_id: str | None  # the contact's id, or the teammate's id (as text)
    author_name: str | None  # the teammate's email or the contact's name/email, for display
    body: str | None  # a comment's text; for assign, the assignee's email (or None: unassigned)
    created_at: int

    @classmethod
    def from_row(cls, row: Any) -> Part:
        return cls(id=row["id"], conversation_id=row["conversation_id"], kind=row["kind"],
                   author_type=row["author_type"], author_id=row["author_id"], author_name=row["author_name"],
                   body=row["body"], created_at=row["created_at"])


@dataclass(frozen=True)
class Conversation:
    id: int
    workspace_id: int
    contact_id: str  # who wrote it
    owner_id: str  # the live contact it shows on now (the writer, or the contact it was merged into)
    state: str
    assignee_id: int | None
    assignee_email: str | None
    created_at: int
    updated_at: int
    last_contact_at: int | None
    last_contact_part: int
    team_read_part: int
    preview: str | None  # the last comment, shortened
    contact_name: str | None
    contact_email: str | None
    contact_role: str

    @property
    def unread_by_team(self) -> bool:
        return self.last_contact_part > self.team_read_part

    @classmethod
    def from_row(cls, row: Any) -> Conversation:
        return cls(id=row["id"], workspace_id=row["workspace_id"], contact_id=row["contact_id"],
                   owner_id=row["owner_id"], state=row["state"], assignee_id=row["assignee_id"],
                   assignee_email=row["assignee_email"], created_at=row["created_at"], updated_at=row["updated_at"],
                   last_contact_at=row["last_contact_at"], last_contact_part=row["last_contact_part"],
                   team_read_part=row["team_read_part"],
                   preview=row["preview"], contact_name=row["contact_name"], contact_email=row["contact_email"],
                   contact_role=row["contact_role"])


@dataclass(frozen=True)
class NewMessage:
    """What ``add_contact_message`` did: the conversation, and whether it (or only the message) is new."""

    conversation_id: int
    part_id: int
    new_conversation: bool
    duplicate: bool  # the same client message id was sent before (a retry): nothing was added


# The last comment of a conversation, for the inbox's preview (correlated on the parts index).
_PREVIEW = ("(SELECT p.body FROM conversation_parts p WHERE p.conversation_id = cv.id AND p.kind = 'comment' "
            "ORDER BY p.id DESC LIMIT 1)")
_SELECT = (
    "SELECT cv.*, COALESCE(c.merged_into, c.id) AS owner_id, t.email AS assignee_email, "
    f"{_PREVIEW} AS preview, COALESCE(r.name, c.name) AS contact_name, COALESCE(r.email, c.email) AS contact_email, "
    "COALESCE(r.role, c.role) AS contact_role "
    "FROM conversations cv JOIN contacts c ON c.id = cv.contact_id "
    "LEFT JOIN contacts r ON r.id = c.merged_into LEFT JOIN teammates t ON t.id = cv.assignee_id")
_PARTS = ("SELECT p.*, CASE WHEN p.author_type = 'teammate' THEN t.email ELSE COALESCE(c.name, c.email) END "
          "AS author_name FROM conversation_parts p LEFT JOIN teammates t ON p.author_type = 'teammate' "
          "AND CAST(t.id AS TEXT) = p.author_id LEFT JOIN contacts c ON p.author_type = 'contact' "
          "AND c.id = p.author_id")


def _now() -> int:
    return int(time.time())


async def _add_part(conn: Conn, conversation_id: int, kind: str, author_type: str, author_id: str | None,
                    body: str | None, t: int, client_id: str | None = None) -> int:
    await conn.execute(
        "INSERT INTO conversation_parts (conversation_id, workspace_id, kind, author_type, author_id, body, client_id, "
        "created_at) SELECT id, workspace_id, ?, ?, ?, ?, ?, ? FROM conversations WHERE id = ?",
        (kind, author_type, author_id, body, client_id, t, conversation_id))
    row = await conn.fetch_one("SELECT MAX(id) AS id FROM conversation_parts WHERE conversation_id = ?",
                               (conversation_id,))
    assert row is not None
    return int(row["id"])


class ConversationStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ------------------------------------------------------------ the contact's side (Messenger)
    async def add_contact_message(self, workspace: Workspace, contact_id: str, body: str,
                                  client_id: str | None = None) -> NewMessage:
        """Append the contact's message to its open conversation, or start one. ``client_id`` (the
        panel's id for the message) makes a retry or a second tab's resend count once."""
        t = _now()

        async def job(conn: Conn) -> NewMessage:
            if client_id is not None:
                seen = await conn.fetch_one(
                    "SELECT id, conversation_id FROM conversation_parts WHERE workspace_id = ? AND client_id = ?",
                    (workspace.id, client_id))
                if seen is not None:
                    return NewMessage(int(seen["conversation_id"]), int(seen["id"]), False, True)
            root = await conn.fetch_one("SELECT COALESCE(merged_into, id) AS id FROM contacts WHERE id = ? "
                                        "AND workspace_id = ?", (contact_id, workspace.id))
            owner = root["id"] if root else contact_id
            current = await conn.fetch_one(
                f"SELECT cv.id FROM conversations cv WHERE cv.workspace_id = ? AND cv.state = 'open' AND {OWNED_BY} "
                "ORDER BY cv.updated_at DESC, cv.id DESC LIMIT 1", (workspace.id, owner, owner))
            new = current is None
            if new:
                await conn.execute(
                    "INSERT INTO conversations (workspace_id, contact_id, state, created_at, updated_at) "
                    "VALUES (?, ?, 'open', ?, ?)", (workspace.id, contact_id, t, t))
                current = await conn.fetch_one(
                    "SELECT MAX(id) AS id FROM conversations WHERE workspace_id = ? AND contact_id = ?",
                    (workspace.id, contact_id))
            assert current is not None
            cid = int(current["id"])
            part = await _add_part(conn, cid, COMMENT, CONTACT, contact_id, body, t, client_id)
            # Writing means having read what came before.
            await conn.execute("UPDATE conversations SET updated_at = ?, last_contact_at = ?, last_contact_part = ?, "
                               "contact_read_part = ? WHERE id = ?", (t, t, part, part, cid))
            return NewMessage(cid, part, new, False)

        result: NewMessage = await self.db.write(job)
        return result

    async def thread_for_contact(self, workspace: Workspace, contact_id: str,
                                 mark_read: bool = True) -> tuple[list[Conversation], dict[int, list[Part]]]:
        """The contact's conversations (newest first, at most 5) and their comments; marks them read by
        the contact."""
        async with self.db.read() as conn:
            rows = await conn.fetch_all(f"{_SELECT} WHERE cv.workspace_id = ? AND {OWNED_BY} "
                                        "ORDER BY cv.updated_at DESC, cv.id DESC LIMIT 5",
                                        (workspace.id, contact_id, contact_id))
            conversations = [Conversation.from_row(r) for r in rows]
            parts = await self._parts(conn, [c.id for c in conversations], comments_only=True)
        if mark_read and conversations:
            ids = [c.id for c in conversations]

            async def job(conn: Conn) -> None:
                marks = placeholders(len(ids))
                await conn.execute(
                    "UPDATE conversations SET contact_read_part = (SELECT COALESCE(MAX(p.id), 0) FROM "
                    f"conversation_parts p WHERE p.conversation_id = conversations.id) WHERE id IN ({marks})", ids)

            await self.db.write(job)
        return conversations, parts

    async def unread_for_contact(self, workspace: Workspace, contact_id: str) -> int:
        """Teammate replies the contact has not seen yet (the launcher's badge)."""
        async with self.db.read() as conn:
            row = await conn.fetch_one(
                "SELECT COUNT(*) AS n FROM conversation_parts p JOIN conversations cv ON cv.id = p.conversation_id "
                f"WHERE cv.workspace_id = ? AND {OWNED_BY} AND p.kind = 'comment' AND p.author_type = 'teammate' "
                "AND p.id > cv.contact_read_part", (workspace.id, contact_id, contact_id))
        return int(row["n"]) if row else 0

    # ------------------------------------------------------------ the team's side (inbox)
    async def inbox(self, workspace: Workspace, *, state: str | None = OPEN, assignee_id: int | None = None,
                    unassigned: bool = False, limit: int = 50) -> list[Conversation]:
        where = ["cv.workspace_id = ?"]
        args: list[int | str] = [workspace.id]
        if state is not None:
            where.append("cv.state = ?")
            args.append(state)
        if assignee_id is not None:
            where.append("cv.assignee_id = ?")
            args.append(assignee_id)
        elif unassigned:
            where.append("cv.assignee_id IS NULL")
        async with self.db.read() as conn:
            rows = await conn.fetch_all(f"{_SELECT} WHERE {' AND '.join(where)} "
                                        "ORDER BY cv.updated_at DESC, cv.id DESC LIMIT ?", (*args, limit))
        return [Conversation.from_row(r) for r in rows]

    async def counts(self, workspace: Workspace) -> dict[str, int]:
        """Open, closed and unread (open, with a contact message the team has not read) conversations."""
        async with self.db.read() as conn:
            row = await conn.fetch_one(
                "SELECT COUNT(*) FILTER (WHERE state = 'open') AS open, COUNT(*) FILTER (WHERE state = 'closed') "
                "AS closed, COUNT(*) FILTER (WHERE state = 'open' AND last_contact_part > team_read_part) "
                "AS unread FROM conversations WHERE workspace_id = ?", (workspace.id,))
        return {k: int(row[k] or 0) for k in ("open", "closed", "unread")} if row else {}

    async def conversation(self, workspace: Workspace, conversation_id: int) -> tuple[Conversation, list[Part]] | None:
        async with self.db.read() as conn:
            row = await conn.fetch_one(f"{_SELECT} WHERE cv.workspace_id = ? AND cv.id = ?",
                                       (workspace.id, conversation_id))
            if row is None:
                return None
            conversation = Conversation.from_row(row)
            parts = (await self._parts(conn, [conversation.id], comments_only=False))[conversation.id]
        return conversation, parts

    async def for_contact(self, workspace: Workspace, contact_id: str) -> list[Conversation]:
        """Every conversation shown on a contact's profile (its own and its merged contacts')."""
        async with self.db.read() as conn:
            rows = await conn.fetch_all(f"{_SELECT} WHERE cv.workspace_id = ? AND {OWNED_BY} "
                                        "ORDER BY cv.updated_at DESC, cv.id DESC",
                                        (workspace.id, contact_id, contact_id))
        return [Conversation.from_row(r) for r in rows]

    async def mark_read_by_team(self, workspace: Workspace, conversation_id: int) -> None:
        async def job(conn: Conn) -> None:
            await conn.execute("UPDATE conversations SET team_read_part = last_contact_part WHERE id = ? "
                               "AND workspace_id = ? AND team_read_part < last_contact_part",
                               (conversation_id, workspace.id))

        await self.db.write(job)

    async def reply(self, workspace: Workspace, conversation_id: int, teammate_id: int, body: str) -> int | None:
        """A teammate's reply (reopens a closed conversation, as Intercom does); None if there is no such
        conversation in the workspace."""
        t = _now()

        async def job(conn: Conn) -> int | None:
            row = await conn.fetch_one("SELECT state FROM conversations WHERE id = ? AND workspace_id = ?",
                                       (conversation_id, workspace.id))
            if row is None:
                return None
            if row["state"] == CLOSED:
                await _add_part(conn, conversation_id, REOPEN, TEAMMATE, str(teammate_id), None, t)
            part = await _add_part(conn, conversation_id, COMMENT, TEAMMATE, str(teammate_id), body, t)
            # Replying means having read the conversation.
            await conn.execute("UPDATE conversations SET state = 'open', updated_at = ?, "
                               "team_read_part = last_contact_part WHERE id = ?", (t, conversation_id))
            return part

        result: int | None = await self.db.write(job)
        return result

    async def start_from_teammate(self, workspace: Workspace, contact_id: str, teammate_id: int,
                                  body: str) -> tuple[int, int]:
        """A teammate writes first (Intercom's ``POST /messages``): the comment goes to the contact's open
        conversation, or starts one; ``(conversation id, part id)``. The contact sees it as unread."""
        t = _now()

        async def job(conn: Conn) -> tuple[int, int]:
            current = await conn.fetch_one(
                f"SELECT cv.id FROM conversations cv WHERE cv.workspace_id = ? AND cv.state = 'open' AND {OWNED_BY} "
                "ORDER BY cv.updated_at DESC, cv.id DESC LIMIT 1", (workspace.id, contact_id, contact_id))
            if current is None:
                await conn.execute("INSERT INTO conversations (workspace_id, contact_id, state, created_at, "
                                   "updated_at) "
                                   "VALUES (?, ?, 'open', ?, ?)", (workspace.id, contact_id, t, t))
                current = await conn.fetch_one("SELECT MAX(id) AS id FROM conversations WHERE workspace_id = ? "
                                               "AND contact_id = ?", (workspace.id, contact_id))
                assert current is not None
            cid = int(current["id"])
            part = await _add_part(conn, cid, COMMENT, TEAMMATE, str(teammate_id), body, t)
            await conn.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (t, cid))
            return cid, part

        result: tuple[int, int] = await self.db.write(job)
        return result

    async def set_state(self, workspace: Workspace, conversation_id: int, state: str, teammate_id: int) -> bool:
        """Close or reopen, recorded as a part; False when there is no such conversation or nothing changes."""
        if state not in (OPEN, CLOSED):
            raise ValueError(state)
        t = _now()

        async def job(conn: Conn) -> bool:
            changed = await conn.execute("UPDATE conversations SET state = ?, updated_at = ? WHERE id = ? "
                                         "AND workspace_id = ? AND state <> ?",
                                         (state, t, conversation_id, workspace.id, state))
            if changed:
                await _add_part(conn, conversation_id, CLOSE if state == CLOSED else REOPEN, TEAMMATE,
                                str(teammate_id), None, t)
            return changed > 0

        result: bool = await self.db.write(job)
        return result

    async def assign(self, workspace: Workspace, conversation_id: int, assignee_id: int | None,
                     teammate_id: int) -> bool:
        t = _now()

        async def job(conn: Conn) -> bool:
            changed = await conn.execute(
                "UPDATE conversations SET assignee_id = ? WHERE id = ? AND workspace_id = ? "
                "AND COALESCE(assignee_id, 0) <> COALESCE(?, 0)", (assignee_id, conversation_id, workspace.id,
                                                                  assignee_id))
            if changed:
                email = None
                if assignee_id is not None:
                    row = await conn.fetch_one("SELECT email FROM teammates WHERE id = ?", (assignee_id,))
                    email = row["email"] if row else None
                await _add_part(conn, conversation_id, ASSIGN, TEAMMATE, str(teammate_id), email, t)
            return changed > 0

        result: bool = await self.db.write(job)
        return result

    # ------------------------------------------------------------ helpers
    async def _parts(self, conn: Conn, ids: list[int], comments_only: bool) -> dict[int, list[Part]]:
        out: dict[int, list[Part]] = {i: [] for i in ids}
        if not ids:
            return out
        marks = placeholders(len(ids))
        kind = " AND p.kind = 'comment'" if comments_only else ""
        rows = await conn.fetch_all(f"{_PARTS} WHERE p.conversation_id IN ({marks}){kind} ORDER BY p.id", ids)
        for r in rows:
            out[r["conversation_id"]].append(Part.from_row(r))
        return out
