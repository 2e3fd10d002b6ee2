"""The identity lifecycle, the one home of its rules: visitor → lead (convert), → user (identify), merges and
their undo, each recorded (a part of the store; the O(1) merge: ``sql_store``'s module docstring)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ..domain_errors import Conflict, InvalidMerge, NotFound
from .db import Conn, Database
from .models import (
    USER,
    VISITOR,
    Contact,
    Merge,
    Workspace,
)
from .sql_helpers import DAY, new_contact_id, now_s


class Lifecycle:
    """A contact's identity over time, the one home of its rules: a visitor converts to a lead, is identified
    as a user, is merged into one; any of these can be undone. Each runs under the workspace's lifecycle lock
    (``sql_store``'s module docstring says why none of them touches event rows)."""

    def __init__(self, db: Database, *,
                 get_contact: Callable[[Workspace, str], Awaitable[Contact | None]]) -> None:
        self.db = db
        self.get_contact = get_contact

    # ---------------------------------------------------------------- lifecycle
    async def convert_to_lead(self, workspace: Workspace, contact_id: str, *, email: str | None = None,
                              message: str | None = None, name: str | None = None,
                              reason: str, proof: str) -> Contact:
        """First contact: a visitor becomes a lead in place. Idempotent: a lead or user stays what it is
        (its email/message are filled in if missing), so two tabs converting at once yield one lead."""
        t = now_s()
        floor = t - workspace.retention_days * DAY

        async def job(conn: Conn) -> str:
            await lock_lifecycle(conn, workspace.id)
            row = await _live_row(conn, workspace.id, contact_id)
            if row is None:
                raise NotFound("Visitor Not Found")
            cid = row["id"]
            changed = await conn.execute(
                "UPDATE contacts SET role = 'lead', contacted_at = ?, visitor_floor = ?, updated_at = ?, "
                "email = COALESCE(?, email), message = COALESCE(?, message), name = COALESCE(?, name) "
                "WHERE id = ? AND role = 'visitor'", (t, floor, t, email, message, name, cid))
            if changed:
                await _record_merge(conn, workspace.id, "convert", cid, cid, VISITOR, VISITOR, reason,
                                    proof, floor, t)
            else:
                await conn.execute(
                    "UPDATE contacts SET email = COALESCE(email, ?), message = COALESCE(?, message), "
                    "updated_at = ? WHERE id = ?", (email, message, t, cid))
            return str(cid)

        cid = await self.db.write(job)
        contact = await self.get_contact(workspace, cid)
        assert contact is not None
        return contact

    async def identify_user(self, workspace: Workspace, current_id: str | None, *, user_id: str | None,
                            email: str | None, reason: str, proof: str,
                            name: str | None = None) -> Contact:
        """Attach the browser's current contact to the user named by ``user_id`` (or ``email``).

        - that user exists: a visitor or lead is merged into it (lead → user only, as Intercom);
          a different *user* is never merged: the session simply switches to the named user;
        - no such user: the current visitor or lead becomes that user in place;
          when the current contact is already another user, a new user is created.
        """
        t = now_s()
        floor = t - workspace.retention_days * DAY

        async def job(conn: Conn) -> str:
            await lock_lifecycle(conn, workspace.id)
            if user_id is not None:
                target = await conn.fetch_one(
                    "SELECT * FROM contacts WHERE workspace_id = ? AND external_id = ? AND role = 'user' "
                    "AND merged_into IS NULL", (workspace.id, user_id))
            else:
                # Identified by email alone: exactly one user may match, never a pick among several
                # (Intercom's 409 "Multiple existing users match this email address").
                matches = await conn.fetch_all(
                    "SELECT * FROM contacts WHERE workspace_id = ? AND lower(email) = lower(?) "
                    "AND role = 'user' AND merged_into IS NULL ORDER BY created_at LIMIT 2",
                    (workspace.id, email))
                if len(matches) > 1:
                    raise Conflict("Multiple existing users match this email address", "email")
                target = matches[0] if matches else None
            current = await _live_row(conn, workspace.id, current_id) if current_id else None
            if target is not None:
                if current is not None and current["id"] != target["id"] and current["role"] != USER:
                    await _merge(conn, workspace.id, current, target["id"], reason, proof, floor, t)
                await conn.execute("UPDATE contacts SET email = COALESCE(?, email), name = COALESCE(?, name), "
                                   "last_seen_at = ?, updated_at = ? WHERE id = ?",
                                   (email, name, t, t, target["id"]))
                return str(target["id"])
            if current is not None and current["role"] != USER:
                await conn.execute(
                    "UPDATE contacts SET role = 'user', external_id = ?, email = COALESCE(?, email), "
                    "name = COALESCE(?, name), contacted_at = COALESCE(contacted_at, ?), "
                    "visitor_floor = COALESCE(visitor_floor, ?), signed_up_at = COALESCE(signed_up_at, ?), "
                    "last_seen_at = ?, updated_at = ? WHERE id = ?",
                    (user_id, email, name, t, floor, t, t, t, current["id"]))
                await _record_merge(conn, workspace.id, "convert", current["id"], current["id"],
                                    current["role"], current["role"], reason, proof,
                                    floor if current["role"] == VISITOR else current["visitor_floor"], t)
                return str(current["id"])
            cid = new_contact_id()
            await conn.execute(
                "INSERT INTO contacts (id, workspace_id, role, external_id, email, name, created_at, "
                "updated_at, last_seen_at, contacted_at, signed_up_at) VALUES (?, ?, 'user', ?, ?, ?, ?, ?, ?, ?, ?)",
                (cid, workspace.id, user_id, email, name, t, t, t, t, t))
            return cid

        cid = await self.db.write(job)
        contact = await self.get_contact(workspace, cid)
        assert contact is not None
        return contact

    async def merge_contacts(self, workspace: Workspace, from_id: str, into_id: str, *, reason: str,
                             proof: str) -> Contact:
        """Merge a visitor or lead into a user (the only direction Intercom allows)."""
        t = now_s()
        floor = t - workspace.retention_days * DAY

        async def job(conn: Conn) -> str:
            await lock_lifecycle(conn, workspace.id)
            source = await _live_row(conn, workspace.id, from_id)
            target = await _live_row(conn, workspace.id, into_id)
            if source is None:
                raise NotFound("Contact Not Found", "from")
            if target is None:
                raise NotFound("Contact Not Found", "into")
            if source["id"] == target["id"]:
                raise InvalidMerge("Cannot merge a contact into itself")
            if source["role"] == USER or target["role"] != USER:
                raise InvalidMerge("Only a lead or visitor can be merged into a user")
            await _merge(conn, workspace.id, source, target["id"], reason, proof, floor, t)
            return str(target["id"])

        cid = await self.db.write(job)
        contact = await self.get_contact(workspace, cid)
        assert contact is not None
        return contact

    async def undo_merge(self, workspace: Workspace, merge_id: int, undone_by: str) -> Merge:
        """Undo a merge or conversion: only pointers and roles change, never event rows."""
        t = now_s()

        async def job(conn: Conn) -> None:
            await lock_lifecycle(conn, workspace.id)
            row = await conn.fetch_one("SELECT * FROM merges WHERE id = ? AND workspace_id = ?",
                                       (merge_id, workspace.id))
            if row is None:
                raise NotFound("Merge Not Found")
            if row["undone_at"] is not None:
                raise InvalidMerge("This merge was already undone")
            if row["kind"] == "merge":
                await conn.execute("UPDATE contacts SET merged_into = NULL, updated_at = ? WHERE id = ?",
                                   (t, row["from_contact"]))
                # Contacts merged into the restored one earlier were re-pointed at the survivor: point
                # them back.
                await conn.execute(
                    "UPDATE contacts SET merged_into = ? WHERE id IN (SELECT from_contact FROM merges "
                    "WHERE into_contact = ? AND kind = 'merge' AND undone_at IS NULL)",
                    (row["from_contact"], row["from_contact"]))
            else:
                await conn.execute(
                    "UPDATE contacts SET role = ?, contacted_at = CASE WHEN ? = 'visitor' THEN NULL "
                    "ELSE contacted_at END, visitor_floor = CASE WHEN ? = 'visitor' THEN NULL "
                    "ELSE visitor_floor END, external_id = CASE WHEN ? = 'user' THEN external_id "
                    "ELSE NULL END, updated_at = ? WHERE id = ?",
                    (row["from_role"], row["from_role"], row["from_role"], row["from_role"], t,
                     row["from_contact"]))
            await conn.execute("UPDATE merges SET undone_at = ?, undone_by = ? WHERE id = ?",
                               (t, undone_by, merge_id))

        await self.db.write(job)
        async with self.db.read() as conn:
            row = await conn.fetch_one("SELECT * FROM merges WHERE id = ?", (merge_id,))
        return Merge.from_row(row)

    async def merges_for(self, workspace: Workspace, contact_id: str) -> list[Merge]:
        async with self.db.read() as conn:
            rows = await conn.fetch_all(
                "SELECT * FROM merges WHERE workspace_id = ? AND (into_contact = ? OR from_contact = ?) "
                "ORDER BY created_at DESC, id DESC", (workspace.id, contact_id, contact_id))
        return [Merge.from_row(r) for r in rows]


async def _live_row(conn: Conn, workspace_id: int, contact_id: str | None) -> Any:
    """The contact row now holding ``contact_id`` (following one merge pointer; merges keep chains flat)."""
    row = await conn.fetch_one("SELECT * FROM contacts WHERE workspace_id = ? AND id = ?", (workspace_id, contact_id))
    if row is not None and row["merged_into"] is not None:
        row = await conn.fetch_one("SELECT * FROM contacts WHERE id = ?", (row["merged_into"],))
    return row


async def _record_merge(conn: Conn, workspace_id: int, kind: str, from_id: str, into_id: str, from_role: str,
                        into_role_before: str | None, reason: str, proof: str, events_since: int | None,
                        t: int) -> None:
    await conn.execute(
        "INSERT INTO merges (workspace_id, kind, from_contact, into_contact, from_role, into_role_before, "
        "reason, proof, events_since, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (workspace_id, kind, from_id, into_id, from_role, into_role_before, reason, proof, events_since, t))


async def _merge(conn: Conn, workspace_id: int, source: Any, into_id: str, reason: str, proof: str,
                 floor: int, t: int) -> None:
    """Point ``source`` (and whatever was merged into it) at ``into_id``. O(merged contacts), not O(events)."""
    source_floor = floor if source["role"] == VISITOR else source["visitor_floor"]
    await conn.execute(
        "UPDATE contacts SET merged_into = ?, visitor_floor = ?, contacted_at = COALESCE(contacted_at, ?), "
        "updated_at = ? WHERE id = ?", (into_id, source_floor, t, t, source["id"]))
    await conn.execute("UPDATE contacts SET merged_into = ? WHERE merged_into = ?", (into_id, source["id"]))
    await _record_merge(conn, workspace_id, "merge", source["id"], into_id, source["role"], USER, reason,
                        proof, source_floor, t)


async def lock_lifecycle(conn: Conn, workspace_id: int) -> None:
    """Serialise conversions, identifications, merges, undos and erasures per workspace across processes, as
    SQLite's single writer does: each then reads what the previous one committed (two tabs identifying
    at once convert once; an erasure never reads a merge that an undo is taking back). They are rare next to
    events, which never take this lock."""
    await conn.dialect.lock(conn, 7302, workspace_id)
