"""Contacts: visitors made and found, by id, user_id, email or visitor id (a part of the store)."""

from __future__ import annotations

import json
from typing import Any

from .db import Conn, Database
from .models import (
    USER,
    VISITOR,
    Contact,
    Workspace,
)
from .sql_helpers import new_contact_id, now_s


class Contacts:
    """Contacts as the Messenger and the admin know them: create a visitor or a contact, find one by an
    identifier, follow a merge to the contact holding it now, record a visit."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # ---------------------------------------------------------------- contacts
    async def create_visitor(self, workspace: Workspace, attributes: dict[str, Any] | None = None) -> Contact:
        import uuid

        contact_id, visitor_id, t = new_contact_id(), str(uuid.uuid4()), now_s()

        async def job(conn: Conn) -> None:
            await conn.execute(
                "INSERT INTO contacts (id, workspace_id, role, visitor_id, custom_attributes, created_at, "
                "updated_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (contact_id, workspace.id, VISITOR, visitor_id, json.dumps(attributes or {}), t, t, t))

        await self.db.write(job)
        contact = await self.get_contact(workspace, contact_id)
        assert contact is not None
        return contact

    async def create_contact(self, workspace: Workspace, role: str, *, external_id: str | None = None,
                             email: str | None = None, name: str | None = None,
                             attributes: dict[str, Any] | None = None) -> Contact:
        contact_id, t = new_contact_id(), now_s()

        async def job(conn: Conn) -> None:
            await conn.execute(
                "INSERT INTO contacts (id, workspace_id, role, external_id, email, name, custom_attributes, "
                "created_at, updated_at, contacted_at, signed_up_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (contact_id, workspace.id, role, external_id, email, name, json.dumps(attributes or {}),
                 t, t, t, t if role == USER else None))

        await self.db.write(job)
        contact = await self.get_contact(workspace, contact_id)
        assert contact is not None
        return contact

    async def get_contact(self, workspace: Workspace, contact_id: str) -> Contact | None:
        async with self.db.read() as conn:
            row = await conn.fetch_one("SELECT * FROM contacts WHERE workspace_id = ? AND id = ?",
                                       (workspace.id, contact_id))
        return Contact.from_row(row) if row else None

    async def resolve_contact(self, workspace: Workspace, contact_id: str) -> Contact | None:
        """The contact that now holds ``contact_id``'s history (itself, or the one it was merged into)."""
        contact = await self.get_contact(workspace, contact_id)
        if contact and contact.merged_into:
            return await self.get_contact(workspace, contact.merged_into)
        return contact

    async def find_contact(self, workspace: Workspace, *, user_id: str | None = None,
                           email: str | None = None, contact_id: str | None = None,
                           visitor_id: str | None = None) -> Contact | None:
        """Look a live (not merged-away) contact up by one identifier."""
        if contact_id is not None:
            return await self.resolve_contact(workspace, contact_id)
        if visitor_id is not None:
            where, arg = "visitor_id = ?", visitor_id
        elif user_id is not None:
            where, arg = "external_id = ? AND role = 'user'", user_id
        elif email is not None:
            where, arg = "lower(email) = lower(?) AND role = 'user'", email
        else:
            return None
        async with self.db.read() as conn:
            row = await conn.fetch_one(
                f"SELECT * FROM contacts WHERE workspace_id = ? AND {where} ORDER BY created_at LIMIT 1",
                (workspace.id, arg))
        if row is None:
            return None
        contact = Contact.from_row(row)
        return await self.resolve_contact(workspace, contact.id) if contact.merged_into else contact

    async def touch_contact(self, workspace: Workspace, contact_id: str,
                            attributes: dict[str, Any] | None = None, name: str | None = None) -> None:
        """Record "last seen" and merge custom attributes (from boot/update pings)."""
        t = now_s()

        async def job(conn: Conn) -> None:
            # Update first: on PostgreSQL that takes the row lock, so a concurrent ping in another process
            # waits and then reads these attributes (read-modify-write without a lost update).
            if not await conn.execute("UPDATE contacts SET last_seen_at = ?, updated_at = ? WHERE id = ? "
                                      "AND workspace_id = ?", (t, t, contact_id, workspace.id)):
                return
            row = await conn.fetch_one("SELECT custom_attributes FROM contacts WHERE id = ?", (contact_id,))
            assert row is not None
            attrs = json.loads(row["custom_attributes"] or "{}")
            attrs.update(attributes or {})
            await conn.execute("UPDATE contacts SET custom_attributes = ?, name = COALESCE(?, name) WHERE id = ?",
                               (json.dumps(attrs), name, contact_id))

        await self.db.write(job)
