"""The store: every read and write Trailmark makes, named for the product, answered by parts with one concern each.

:class:`SQLStore` is a facade: each part holds the :class:`~trailmark.store.db.Database` (aiosqlite or asyncpg)
and the sibling operations it calls, and the facade offers every part's methods as its own
(``store.create_contact(...)``). The parts defined here: :class:`Workspaces` (and their REST access tokens),
:class:`Contacts`, :class:`Lifecycle` (convert, identify, merge, undo: the one home of the identity rules),
:class:`Events` (append, timeline, summaries), :class:`EventNames` and :class:`Retention`; in their own modules:
``sources_store`` (Segment, Stripe, import, GDPR), ``contacts_store`` (the REST contacts API), ``admin_reads``,
``conversations``, ``messages``, ``live_reads`` and ``contact_search``. The SQL is portable between SQLite and
PostgreSQL; what differs is asked of the connection's dialect (``dialect.py``).

Identity and history (the O(1) merge): an event row keeps, forever, the contact that tracked it and the
role that contact had then (``visitor``, ``lead``, ``user``). Converting or merging never copies or
rewrites event rows. A conversion changes the contact's role in place and sets ``visitor_floor`` (contact
time − 90 days); a merge points the merged contact at the survivor (``merged_into``) and records a row in
``merges``. A contact's history is the union of its own events and those of the contacts merged into it,
where visitor-phase events older than each source's ``visitor_floor`` stay hidden. So a conversion costs
the same for 10 events as for 100,000, and undoing a merge only clears a pointer.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..domain_errors import Conflict, InvalidMerge, NameLimitReached, NotFound, UnknownIdentity
from ..live import CHANNEL as LIVE_CHANNEL
from ..tokens import PREFIX as TOKEN_PREFIX
from ..tokens import hash_token, new_access_token, token_hint
from .admin_reads import AdminReads
from .contact_search import ContactSearch
from .contacts_store import RestContacts
from .conversations import ConversationStore
from .db import Conn, Database
from .history_stats import history_args, history_stats_sql
from .live_reads import LiveReads
from .messages import MessageStore
from .models import (
    USER,
    VISITOR,
    AccessToken,
    AppendRequest,
    Contact,
    EventName,
    EventResult,
    Merge,
    StoredEvent,
    Workspace,
)
from .name_policy import MAX_ACTIVE_EVENT_NAMES, NAME_LIMIT, reason_text, record_refusals, screen_new_names
from .page_views import PageViews
from .schema import token_placeholder
from .sources_store import SourcesStore
from .sql_helpers import DAY, new_contact_id, now_s, placeholders

_INSERT_CHUNK = 400  # rows per multi-row INSERT (11 parameters each; SQLite allows 32,766)

_EVENT_COLUMNS = ("e.id, e.contact_id, e.created_at, e.role, e.source, e.metadata, e.metadata_types, "
                  "n.name")


class SQLStore:
    """Trailmark's storage, over either database backend: a facade over parts with one concern each.

    Each part's methods are the store's own (``store.create_contact(...)``): bound here, once, so a caller
    need not know which part answers, and mypy sees each one's signature. A part reaches a sibling only through
    the operations handed to its constructor below; the parts share nothing else but the database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        # Called with the workspace ids of every ingest commit (the live view's wake-up, server/live.py).
        self.on_commit: list[Callable[[set[int]], None]] = []
        self.workspaces = Workspaces(db)
        self.contacts = Contacts(db)
        self.lifecycle = Lifecycle(db, get_contact=self.contacts.get_contact)
        self.events = Events(db, self.on_commit)
        self.names = EventNames(db)
        self.retention = Retention(db)
        self.event_sources = SourcesStore(db, workspace_by_token=self.workspaces.workspace_by_token)
        self.rest_contacts = RestContacts(db, delete_contact=self.event_sources.delete_contact)
        self.admin = AdminReads(db)
        self.conversations = ConversationStore(db)
        self.messages = MessageStore(db)
        self.live = LiveReads(db)
        self.search = ContactSearch(db)
        self.page_views = PageViews(db)

        # workspaces and REST access tokens
        self.create_workspace = self.workspaces.create_workspace
        self.create_access_token = self.workspaces.create_access_token
        self.access_tokens = self.workspaces.access_tokens
        self.revoke_access_token = self.workspaces.revoke_access_token
        self.list_workspaces = self.workspaces.list_workspaces
        self.workspace_by_app_id = self.workspaces.workspace_by_app_id
        self.workspace_by_token = self.workspaces.workspace_by_token
        self.update_workspace = self.workspaces.update_workspace
        self.rotate_identity_secret = self.workspaces.rotate_identity_secret
        self.rotate_signing_key = self.workspaces.rotate_signing_key
        # contacts
        self.create_visitor = self.contacts.create_visitor
        self.create_contact = self.contacts.create_contact
        self.get_contact = self.contacts.get_contact
        self.resolve_contact = self.contacts.resolve_contact
        self.find_contact = self.contacts.find_contact
        self.touch_contact = self.contacts.touch_contact
        # the identity lifecycle: convert, identify, merge, undo
        self.convert_to_lead = self.lifecycle.convert_to_lead
        self.identify_user = self.lifecycle.identify_user
        self.merge_contacts = self.lifecycle.merge_contacts
        self.undo_merge = self.lifecycle.undo_merge
        self.merges_for = self.lifecycle.merges_for
        # events: append, timeline, summaries
        self.append_events = self.events.append_events
        self.append_many = self.events.append_many
        self.sources = self.events.sources
        self.events_for = self.events.events_for
        self.event_summary = self.events.event_summary
        self.count_events = self.events.count_events
        # event names
        self.event_names = self.names.event_names
        self.event_name = self.names.event_name
        self.metadata_drops = self.names.metadata_drops
        self.daily_counts = self.names.daily_counts
        self.set_event_description = self.names.set_event_description
        self.set_event_archived = self.names.set_event_archived
        # page views (not events: no name, outside REST GET /events)
        self.append_page_views = self.page_views.append_page_views
        self.page_views_for = self.page_views.page_views_for
        # retention
        self.count_expired = self.retention.count_expired
        self.purge_expired_batch = self.retention.purge_expired_batch
        # the event sources (Segment, Stripe, import) and the GDPR export and erase
        self.visitor_for = self.event_sources.visitor_for
        self.user_for = self.event_sources.user_for
        self.contact_by_email = self.event_sources.contact_by_email
        self.update_contact_traits = self.event_sources.update_contact_traits
        self.users_by_external_ids = self.event_sources.users_by_external_ids
        self.contacts_by_emails = self.event_sources.contacts_by_emails
        self.live_contact_ids = self.event_sources.live_contact_ids
        self.workspace_by_write_key = self.event_sources.workspace_by_write_key
        self.segment_write_key = self.event_sources.segment_write_key
        self.add_stripe_secret = self.event_sources.add_stripe_secret
        self.remove_stripe_secret = self.event_sources.remove_stripe_secret
        self.stripe_secrets = self.event_sources.stripe_secrets
        self.all_stripe_secrets = self.event_sources.all_stripe_secrets
        self.contact_for_stripe_customer = self.event_sources.contact_for_stripe_customer
        self.map_stripe_customer = self.event_sources.map_stripe_customer
        self.record_unmatched_stripe_event = self.event_sources.record_unmatched_stripe_event
        self.unmatched_stripe_events = self.event_sources.unmatched_stripe_events
        self.resolve_unmatched_stripe_event = self.event_sources.resolve_unmatched_stripe_event
        self.contact_export = self.event_sources.contact_export
        self.delete_contact = self.event_sources.delete_contact
        # the REST contacts API
        self.contact_view = self.rest_contacts.contact_view
        self.contact_by_external_id = self.rest_contacts.contact_by_external_id
        self.contact_page = self.rest_contacts.contact_page
        self.create_api_contact = self.rest_contacts.create_api_contact
        self.update_api_contact = self.rest_contacts.update_api_contact
        self.delete_api_contact = self.rest_contacts.delete_api_contact
        self.update_visitor = self.rest_contacts.update_visitor
        self.add_event_summaries = self.rest_contacts.add_event_summaries
        self.imported_summaries = self.rest_contacts.imported_summaries
        # the admin's reads and teammates
        self.admin_contacts = self.admin.admin_contacts
        self.admin_role_counts = self.admin.admin_role_counts
        self.admin_oldest_event_at = self.admin.admin_oldest_event_at
        self.admin_merge_history = self.admin.admin_merge_history
        self.refused_event_names = self.admin.refused_event_names
        self.teammates = self.admin.teammates
        self.create_teammate = self.admin.create_teammate
        self.teammate_by_email = self.admin.teammate_by_email
        self.teammate_by_id = self.admin.teammate_by_id
        self.end_teammate_sessions = self.admin.end_teammate_sessions

    async def open(self) -> None:
        await self.db.open()

    async def close(self) -> None:
        await self.db.close()


class Retention:
    """Retention: visitors who never got in touch keep their events ``retention_days`` (90 by default).

    Purging works in small batches, each its own short write transaction, so ingest waits at most one
    batch. It only ever deletes events tracked by a contact that is *still* an anonymous visitor: leads'
    and users' events (including the visitor history they carried over) are never touched. Page views
    expire with them, by the same rule.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    _EXPIRED_EVENTS = ("FROM events e JOIN contacts c ON c.id = e.contact_id WHERE e.workspace_id = ? "
                       "AND e.role = 'visitor' AND e.created_at < ? AND c.role = 'visitor' "
                       "AND c.merged_into IS NULL")
    _EXPIRED_PAGE_VIEWS = ("FROM page_views p JOIN contacts c ON c.id = p.contact_id WHERE p.workspace_id = ? "
                           "AND p.role = 'visitor' AND p.created_at < ? AND c.role = 'visitor' "
                           "AND c.merged_into IS NULL")
    _EXPIRED_VISITORS = ("FROM contacts c WHERE c.workspace_id = ? AND c.role = 'visitor' AND c.merged_into IS NULL "
                         "AND COALESCE(c.last_seen_at, c.created_at) < ? "
                         "AND NOT EXISTS (SELECT 1 FROM events e WHERE e.contact_id = c.id) "
                         "AND NOT EXISTS (SELECT 1 FROM page_views p WHERE p.contact_id = c.id)")

    async def count_expired(self, workspace: Workspace, cutoff: int) -> tuple[int, int]:
        """``(events, visitors)`` a purge with this cutoff would delete now (visitors counted after their
        events are gone); expired page views count as events."""
        async with self.db.read() as conn:
            events = await conn.fetch_one(f"SELECT COUNT(*) AS n {self._EXPIRED_EVENTS}", (workspace.id, cutoff))
            views = await conn.fetch_one(f"SELECT COUNT(*) AS n {self._EXPIRED_PAGE_VIEWS}", (workspace.id, cutoff))
            visitors = await conn.fetch_one(
                "SELECT COUNT(*) AS n FROM contacts c WHERE c.workspace_id = ? AND c.role = 'visitor' "
                "AND c.merged_into IS NULL AND COALESCE(c.last_seen_at, c.created_at) < ? AND NOT EXISTS "
                "(SELECT 1 FROM events e WHERE e.contact_id = c.id AND NOT (e.role = 'visitor' AND e.created_at < ?)) "
                "AND NOT EXISTS (SELECT 1 FROM page_views p WHERE p.contact_id = c.id "
                "AND NOT (p.role = 'visitor' AND p.created_at < ?))",
                (workspace.id, cutoff, cutoff, cutoff))
        return (int(events["n"] if events else 0) + int(views["n"] if views else 0),
                int(visitors["n"] if visitors else 0))

    async def purge_expired_batch(self, workspace: Workspace, cutoff: int, batch_size: int = 1000) -> tuple[int, int]:
        """Delete at most ``batch_size`` expired visitor events (once none are left, expired visitor page
        views; then expired empty visitors); returns ``(events or page views deleted, visitors deleted)``.
        Call until it returns ``(0, 0)``."""
        async def job(conn: Conn) -> tuple[int, int]:
            n = await conn.execute(f"DELETE FROM events WHERE id IN (SELECT e.id {self._EXPIRED_EVENTS} LIMIT ?)",
                                   (workspace.id, cutoff, batch_size))
            if n:
                return n, 0
            n = await conn.execute(
                f"DELETE FROM page_views WHERE id IN (SELECT p.id {self._EXPIRED_PAGE_VIEWS} LIMIT ?)",
                (workspace.id, cutoff, batch_size))
            if n:
                return n, 0
            v = await conn.execute(f"DELETE FROM contacts WHERE id IN (SELECT c.id {self._EXPIRED_VISITORS} LIMIT ?)",
                                   (workspace.id, cutoff, batch_size))
            return 0, v

        result: tuple[int, int] = await self.db.write(job)
        return result


@dataclass(frozen=True)
class Source:
    """A contact whose events make up part of another contact's history."""

    contact_id: str
    visitor_floor: int | None


class Workspaces:
    """Workspaces (read on every request, so cached briefly) and their REST access tokens."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._workspace_cache: dict[str, tuple[float, Workspace | None]] = {}

    # ---------------------------------------------------------------- workspaces
    async def create_workspace(self, name: str, allowed_origins: Sequence[str] = (),
                               app_id: str | None = None, *, enforce_identity_verification: bool = True) -> Workspace:
        """A new workspace and its first REST access token: the returned workspace carries that token in
        plain text, the only time it is known (only its hash is stored). Secure by default: a browser must
        prove a user's identity (user_hash or JWT) unless the operator opts out."""
        app_id = app_id or secrets.token_hex(4)
        created = now_s()
        token = new_access_token()

        async def job(conn: Conn) -> None:
            await conn.execute(
                "INSERT INTO workspaces (app_id, name, access_token, signing_key, identity_secret, "
                "allowed_origins, enforce_identity_verification, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (app_id, name, token_placeholder(app_id), secrets.token_urlsafe(32),
                 secrets.token_urlsafe(32), json.dumps(list(allowed_origins)), int(enforce_identity_verification),
                 created))
            row = await conn.fetch_one("SELECT id FROM workspaces WHERE app_id = ?", (app_id,))
            assert row is not None
            await _insert_token(conn, row["id"], "first token", token, created)

        await self.db.write(job)
        ws = await self.workspace_by_app_id(app_id, cached=False)
        assert ws is not None
        return replace(ws, access_token=token)

    # ---------------------------------------------------------------- REST access tokens
    async def create_access_token(self, workspace: Workspace, name: str) -> str:
        """A new token for ``workspace``: returned once, stored as a hash."""
        token = new_access_token()

        async def job(conn: Conn) -> None:
            await _insert_token(conn, workspace.id, name, token, now_s())

        await self.db.write(job)
        return token

    async def access_tokens(self, workspace: Workspace) -> list[AccessToken]:
        async with self.db.read() as conn:
            rows = await conn.fetch_all("SELECT * FROM access_tokens WHERE workspace_id = ? ORDER BY id",
                                        (workspace.id,))
        return [AccessToken.from_row(r) for r in rows]

    async def revoke_access_token(self, workspace: Workspace, token_id: int) -> bool:
        async def job(conn: Conn) -> int:
            return await conn.execute("UPDATE access_tokens SET revoked_at = ? WHERE id = ? AND workspace_id = ? "
                                      "AND revoked_at IS NULL", (now_s(), token_id, workspace.id))

        changed: int = await self.db.write(job)
        return changed > 0

    async def list_workspaces(self) -> list[Workspace]:
        async with self.db.read() as conn:
            rows = await conn.fetch_all("SELECT * FROM workspaces ORDER BY id")
        return [Workspace.from_row(r) for r in rows]

    async def workspace_by_app_id(self, app_id: str, cached: bool = True) -> Workspace | None:
        """Workspaces are read on every request: keep them 5 s in memory (other processes' edits
        show up within that time)."""
        hit = self._workspace_cache.get(app_id)
        if cached and hit and hit[0] > time.monotonic():
            return hit[1]
        async with self.db.read() as conn:
            row = await conn.fetch_one("SELECT * FROM workspaces WHERE app_id = ?", (app_id,))
        ws = Workspace.from_row(row) if row else None
        if len(self._workspace_cache) > 10_000:
            self._workspace_cache.clear()
        self._workspace_cache[app_id] = (time.monotonic() + 5.0, ws)
        return ws

    async def workspace_by_token(self, token: str) -> Workspace | None:
        """The workspace a live (not revoked) REST access token belongs to."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        async with self.db.read() as conn:
            row = await conn.fetch_one(
                "SELECT w.* FROM workspaces w JOIN access_tokens t ON t.workspace_id = w.id "
                "WHERE t.token_hash = ? AND t.revoked_at IS NULL", (hash_token(token),))
        return Workspace.from_row(row) if row else None

    async def update_workspace(self, workspace_id: int, **fields: Any) -> None:
        allowed = {"name", "allowed_origins", "enforce_identity_verification", "strict_metadata",
                   "retention_days", "identity_secret", "previous_identity_secret",
                   "previous_secret_expires_at", "browser_new_names_per_contact",
                   "browser_new_names_per_address", "browser_event_names", "consent_required",
                   "honour_gpc", "signing_key", "page_views"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"unknown workspace fields: {sorted(unknown)}")
        values = [json.dumps(list(v)) if k in ("allowed_origins", "browser_event_names") else
                  int(v) if isinstance(v, bool) else v for k, v in fields.items()]

        async def job(conn: Conn) -> None:
            sets = ", ".join(f"{k} = ?" for k in fields)
            await conn.execute(f"UPDATE workspaces SET {sets} WHERE id = ?", (*values, workspace_id))

        await self.db.write(job)
        self._workspace_cache.clear()

    async def rotate_identity_secret(self, workspace: Workspace, grace_seconds: int = 7 * DAY) -> str:
        """A new identity-verification secret; the old one keeps verifying for ``grace_seconds``."""
        secret = secrets.token_urlsafe(32)
        await self.update_workspace(workspace.id, identity_secret=secret,
                                    previous_identity_secret=workspace.identity_secret,
                                    previous_secret_expires_at=now_s() + grace_seconds)
        return secret

    async def rotate_signing_key(self, workspace: Workspace) -> None:
        """A new key for the device and session tokens: every token signed before reads as forged, so every
        browser starts again as a new visitor (users are identified again at their next boot). After a leak
        of the database, a copy of the old key can no longer forge tokens."""
        await self.update_workspace(workspace.id, signing_key=secrets.token_urlsafe(32))


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


class Lifecycle:
    """A contact's identity over time, the one home of its rules: a visitor converts to a lead, is identified
    as a user, is merged into one; any of these can be undone. Each runs under the workspace's lifecycle lock
    (see the module docstring for why none of them touches event rows)."""

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
            await _lock_lifecycle(conn, workspace.id)
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
            await _lock_lifecycle(conn, workspace.id)
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
            await _lock_lifecycle(conn, workspace.id)
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
            await _lock_lifecycle(conn, workspace.id)
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


class Events:
    """Events: storing them (group commit, then the ``on_commit`` hooks) and reading a contact's merged
    history back (the timeline and its per-name summary)."""

    def __init__(self, db: Database, on_commit: list[Callable[[set[int]], None]]) -> None:
        self.db = db
        self.on_commit = on_commit  # the store's list: hooks added to it later are called too

    # ---------------------------------------------------------------- events: writing
    async def append_events(self, request: AppendRequest) -> list[EventResult]:
        """Store one request's events (all or nothing); returns after the commit."""
        result: list[EventResult] = await self.db.write_grouped(_append_group, request)
        for hook in self.on_commit:
            hook({request.workspace_id})
        return result

    async def append_many(self, requests: list[AppendRequest]) -> list[Any]:
        """Store many requests' events in one transaction: the importer's path (thousands of contacts
        with a few events each per chunk). The same writing code as :meth:`append_events`, run as one
        write job: one transaction and one commit for the lot, and no future per request.

        Returns, per request, its list of ``EventResult`` or the ``DomainError`` that refused it (nothing of
        that request written). If the transaction fails as a whole, each request is stored on its own
        through ``append_events`` (as group commit retries a failed batch), so one request cannot fail the
        others; the exception it raised then stands in its place."""
        if not requests:
            return []
        try:
            result: list[Any] = await self.db.write(lambda conn: _append_group(conn, requests))
        except Exception:
            return list(await asyncio.gather(*(self.append_events(r) for r in requests), return_exceptions=True))
        for hook in self.on_commit:
            hook({r.workspace_id for r in requests})
        return result

    # ---------------------------------------------------------------- events: reading
    async def sources(self, conn: Conn, contact: Contact) -> list[Source]:
        rows = await conn.fetch_all(
            "SELECT id, visitor_floor FROM contacts WHERE id = ? OR merged_into = ?", (contact.id, contact.id))
        return [Source(r["id"], r["visitor_floor"]) for r in rows]

    async def events_for(self, workspace: Workspace, contact: Contact, *, limit: int,
                         before: tuple[int, int] | None = None, since: int | None = None,
                         newer_than: int | None = None, event_name: str | None = None) -> list[StoredEvent]:
        """A contact's merged history, newest first: its own events and those of the contacts merged into
        it, minus visitor-phase events older than 90 days before contact. Keyset-paginated on
        ``(created_at, id)``; ``since`` bounds by age (the REST listing's 90-day window)."""
        async with self.db.read() as conn:
            sources = await self.sources(conn, contact)
            parts: list[str] = []
            args: list[Any] = []
            for source in sources:
                clause = f"SELECT {_EVENT_COLUMNS} FROM events e JOIN event_names n ON n.id = e.event_name_id " \
                         "WHERE e.contact_id = ?"
                part_args: list[Any] = [source.contact_id]
                if source.visitor_floor is not None:
                    clause += " AND (e.role <> 'visitor' OR e.created_at >= ?)"
                    part_args.append(source.visitor_floor)
                if before is not None:
                    clause += " AND (e.created_at < ? OR (e.created_at = ? AND e.id < ?))"
                    part_args += [before[0], before[0], before[1]]
                if since is not None:
                    clause += " AND e.created_at >= ?"
                    part_args.append(since)
                if newer_than is not None:
                    clause += " AND e.created_at > ?"
                    part_args.append(newer_than)
                if event_name is not None:
                    clause += " AND n.name = ?"
                    part_args.append(event_name)
                clause += " ORDER BY e.created_at DESC, e.id DESC LIMIT ?"
                part_args.append(limit)
                parts.append(f"SELECT * FROM ({clause}) AS s{len(parts)}")
                args += part_args
            sql = " UNION ALL ".join(parts) + " ORDER BY created_at DESC, id DESC LIMIT ?"
            rows = await conn.fetch_all(sql, (*args, limit))
        return [StoredEvent.from_row(r) for r in rows]

    async def event_summary(self, workspace: Workspace, contact: Contact) -> list[dict[str, Any]]:
        """Per event name: count, first, last over the contact's merged history (all time), most recent
        first. Read from the ``(contact, name, role, created_at)`` index per source and pair
        (``history_stats``): a few seeks per name plus a step per visible event, no table rows."""
        async with self.db.read() as conn:
            sources = await self.sources(conn, contact)
            if not sources:
                return []
            await conn.dialect.without_jit(conn)
            rows = await conn.fetch_all(
                history_stats_sql(len(sources)) +
                "SELECT n.name, n.description, CAST(SUM(s.n) AS BIGINT) AS count, MIN(s.first_at) AS first, "
                "MAX(s.last_at) AS last FROM h_stats s JOIN event_names n ON n.id = s.name_id "
                "GROUP BY n.name, n.description HAVING SUM(s.n) > 0 ORDER BY MAX(s.last_at) DESC, n.name",
                history_args([(s.contact_id, s.visitor_floor) for s in sources]))
        return [dict(name=r["name"], description=r["description"], count=r["count"], first=r["first"],
                     last=r["last"]) for r in rows]

    async def count_events(self, workspace: Workspace) -> int:
        async with self.db.read() as conn:
            row = await conn.fetch_one("SELECT COUNT(*) AS n FROM events WHERE workspace_id = ?", (workspace.id,))
        return int(row["n"]) if row else 0


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
                await _lock_event_names(conn, workspace.id)
                row = await conn.fetch_one("SELECT COUNT(*) AS n FROM event_names WHERE workspace_id = ? "
                                           "AND archived = 0", (workspace.id,))
                if row and row["n"] >= MAX_ACTIVE_EVENT_NAMES:
                    raise NameLimitReached("Cannot have more than 120 active event names")
            await conn.execute("UPDATE event_names SET archived = ? WHERE workspace_id = ? AND name = ?",
                               (int(archived), workspace.id, name))
        await self.db.write(job)


# -------------------------------------------------------------------- helpers run inside write jobs
async def _insert_token(conn: Conn, workspace_id: int, name: str, token: str, created: int) -> None:
    await conn.execute("INSERT INTO access_tokens (workspace_id, name, token_hash, hint, created_at) "
                       "VALUES (?, ?, ?, ?, ?)", (workspace_id, name, hash_token(token), token_hint(token), created))


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


async def _lock_event_names(conn: Conn, workspace_id: int) -> None:
    """Serialise creation of event names per workspace across processes (the 120-name limit).
    SQLite's single writer already serialises; PostgreSQL takes a transaction-scoped advisory lock."""
    await conn.dialect.lock(conn, 7301, workspace_id)


async def _lock_lifecycle(conn: Conn, workspace_id: int) -> None:
    """Serialise conversions, identifications, merges and undos per workspace across processes, as
    SQLite's single writer does: each then reads what the previous one committed (two tabs identifying
    at once convert once). They are rare next to events, which never take this lock."""
    await conn.dialect.lock(conn, 7302, workspace_id)


async def _append_group(conn: Conn, requests: list[AppendRequest]) -> list[Any]:
    """Store many requests' events in the current transaction, with a handful of statements.

    Returns, per request, its list of :class:`EventResult` or an :class:`DomainError` (in which case nothing
    of that request was written). Checks run before any insert: the contact must exist, new event names
    must fit under the 120-active-names limit (a browser request's new names also under its budgets:
    name_policy.py, and only its events with a refused name are refused), archived names are dropped (and
    counted).
    """
    out: list[Any] = [None] * len(requests)
    t = now_s()

    # 1. Contacts: each request's contact must exist; events land on the contact now holding it.
    ids = sorted({r.contact_id for r in requests})
    rows = await conn.fetch_all(f"SELECT id, role, merged_into FROM contacts WHERE id IN ({placeholders(len(ids))})",
                                ids)
    found = {r["id"]: (r["role"], r["merged_into"]) for r in rows}
    roots = sorted({m for _, m in found.values() if m and m not in found})
    if roots:
        rows = await conn.fetch_all(
            f"SELECT id, role, merged_into FROM contacts WHERE id IN ({placeholders(len(roots))})", roots)
        found.update({r["id"]: (r["role"], r["merged_into"]) for r in rows})

    # 2. Event names, per workspace.
    names_by_ws: dict[int, set[str]] = defaultdict(set)
    for r in requests:
        names_by_ws[r.workspace_id].update(e.event_name for e in r.events)
    known: dict[tuple[int, str], tuple[int, bool]] = {}
    active: dict[int, int] = {}
    for ws_id, names in names_by_ws.items():
        names_list = sorted(names)
        rows = await conn.fetch_all(
            f"SELECT id, name, archived FROM event_names "
            f"WHERE workspace_id = ? AND name IN ({placeholders(len(names_list))})",
            (ws_id, *names_list))
        known.update({(ws_id, r["name"]): (r["id"], bool(r["archived"])) for r in rows})
        if any((ws_id, n) not in known for n in names):
            await _lock_event_names(conn, ws_id)
            row = await conn.fetch_one("SELECT COUNT(*) AS n FROM event_names WHERE workspace_id = ? AND archived = 0",
                                       (ws_id,))
            active[ws_id] = int(row["n"]) if row else 0

    inserts: list[tuple[int, int, Any]] = []  # (request index, event index, row)
    dropped_archived: dict[int, int] = defaultdict(int)
    refusals: dict[tuple[int, str, str], int] = defaultdict(int)  # (workspace, name, reason) → events
    for i, req in enumerate(requests):
        holder = found.get(req.contact_id)
        if holder is None:
            out[i] = UnknownIdentity("The identity token names no contact; ping again")
            continue
        contact_id, role = req.contact_id, holder[0]
        if holder[1]:  # merged away: the survivor holds the history now
            contact_id = holder[1]
            role = found.get(contact_id, (role, None))[0]
        new_names = sorted({e.event_name for e in req.events if (req.workspace_id, e.event_name) not in known})
        refused: dict[str, str] = {}
        if req.browser is not None and new_names:
            new_names, refused = await screen_new_names(conn, req, contact_id, role, new_names,
                                                        active.get(req.workspace_id, 0), t)
        elif new_names and active.get(req.workspace_id, 0) + len(new_names) > MAX_ACTIVE_EVENT_NAMES:
            for name in new_names:
                refusals[(req.workspace_id, name, NAME_LIMIT)] += 1
            out[i] = NameLimitReached("Cannot have more than 120 active event names", "event_name")
            continue
        for name in new_names:
            row = await conn.fetch_one(
                "INSERT INTO event_names (workspace_id, name, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT (workspace_id, name) DO UPDATE SET name = excluded.name RETURNING id, archived",
                (req.workspace_id, name, t))
            assert row is not None
            known[(req.workspace_id, name)] = (row["id"], bool(row["archived"]))
            active[req.workspace_id] = active.get(req.workspace_id, 0) + 1
        results: list[EventResult | None] = []
        for j, ev in enumerate(req.events):
            if ev.event_name in refused:
                code = refused[ev.event_name]
                refusals[(req.workspace_id, ev.event_name, code)] += 1
                results.append(EventResult("refused", reason_text(code, ev.event_name, req)))
                continue
            name_id, archived = known[(req.workspace_id, ev.event_name)]
            if archived:
                dropped_archived[name_id] += 1
                results.append(EventResult("dropped", f"event '{ev.event_name}' is archived"))
                continue
            results.append(None)
            inserts.append((i, j, (req.workspace_id, contact_id, name_id, ev.created_at, t, role, req.source,
                                   ev.dedupe_key, json.dumps(ev.metadata) if ev.metadata else None,
                                   json.dumps(ev.metadata_types) if ev.metadata_types else None)))
        out[i] = results

    # 3. Insert; the unique index on (workspace, dedupe_key) turns a retried event into a duplicate.
    # Inserted in the order they were tracked, so ids (the timeline's tie-break within one second) keep
    # that order. Two processes storing the *same* events at once in different orders may deadlock on
    # PostgreSQL; that rare case is retried by PostgresDatabase (deadlocks are retryable).
    inserted: set[tuple[int, str]] = set()
    for start in range(0, len(inserts), _INSERT_CHUNK):
        chunk = inserts[start:start + _INSERT_CHUNK]
        values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk))
        rows = await conn.fetch_all(
            "INSERT INTO events (workspace_id, contact_id, event_name_id, created_at, received_at, role, source, "
            f"dedupe_key, metadata, metadata_types) VALUES {values} "
            "ON CONFLICT (workspace_id, dedupe_key) DO NOTHING RETURNING workspace_id, dedupe_key",
            [v for _, _, row in chunk for v in row])
        inserted.update((r["workspace_id"], r["dedupe_key"]) for r in rows)

    # 4. Per-event results and the aggregates (counts, first/last, daily counts, metadata drops).
    per_name: dict[int, list[int]] = defaultdict(list)
    per_day: dict[tuple[int, int], int] = defaultdict(int)
    drops: dict[tuple[int, str, str], int] = defaultdict(int)
    drop_events: dict[int, int] = defaultdict(int)
    claimed: set[tuple[int, str]] = set()
    for i, j, row in inserts:
        ev = requests[i].events[j]
        key = (row[0], row[7])
        accepted = key in inserted and key not in claimed
        claimed.add(key)
        results = out[i]
        results[j] = EventResult("accepted" if accepted else "duplicate")
        if accepted:
            per_name[row[2]].append(ev.created_at)
            per_day[(row[2], ev.created_at // DAY)] += 1
            if ev.dropped:
                drop_events[row[2]] += 1
                for d in ev.dropped:
                    drops[(row[2], d["key"][:255], d["reason"])] += 1
    if refusals:
        await record_refusals(conn, refusals, t)
    # The aggregates are hot rows that every ingest transaction updates. They are written last, in few
    # statements, so (on PostgreSQL) a transaction holds their locks for as few round trips as possible
    # before its COMMIT; rows go in key order, so concurrent transactions (other processes) can't deadlock.
    if drops:
        await conn.executemany(
            "INSERT INTO metadata_drops (event_name_id, key, reason, count, last_seen) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (event_name_id, key, reason) DO UPDATE SET count = metadata_drops.count + excluded.count, "
            "last_seen = excluded.last_seen", [(n, k, r, c, t) for (n, k, r), c in sorted(drops.items())])
    counters: list[tuple[int, int, int | None, int | None, int, int]] = [
        (name_id, len(times), min(times), max(times), drop_events.get(name_id, 0), 0)
        for name_id, times in per_name.items()]
    counters += [(name_id, 0, None, None, 0, n) for name_id, n in dropped_archived.items()]
    if counters:
        await _add_to_name_counters(conn, sorted(counters))
    if per_day:
        await conn.executemany(
            "INSERT INTO event_daily_counts (event_name_id, day, count) VALUES (?, ?, ?) ON CONFLICT "
            "(event_name_id, day) DO UPDATE SET count = event_daily_counts.count + excluded.count",
            [(n, d, c) for (n, d), c in sorted(per_day.items())])
    if per_name:
        # One notification per committed batch, delivered at COMMIT to every process's live view.
        workspaces = sorted({r.workspace_id for r in requests})
        await conn.dialect.notify(conn, LIVE_CHANNEL, ",".join(map(str, workspaces)))
    return out



async def _add_to_name_counters(conn: Conn, counters: list[tuple[int, int, int | None, int | None, int, int]]) -> None:
    """Every event name's counters: (id, events, first, last, with dropped metadata, dropped), id order.

    One statement per name, sent as one ``executemany`` (asyncpg pipelines it: one round trip). Not one
    ``UPDATE … FROM (VALUES …)``: its join may visit the rows in heap order, which differs between
    transactions, and two processes locking the same rows in different orders deadlock."""
    await conn.executemany(
        "UPDATE event_names SET event_count = event_count + CAST(? AS BIGINT), "
        "first_seen = CASE WHEN CAST(? AS BIGINT) IS NOT NULL "
        "  AND (first_seen IS NULL OR first_seen > CAST(? AS BIGINT)) "
        "  THEN CAST(? AS BIGINT) ELSE first_seen END, "
        "last_seen = CASE WHEN CAST(? AS BIGINT) IS NOT NULL AND (last_seen IS NULL OR last_seen < CAST(? AS BIGINT)) "
        "  THEN CAST(? AS BIGINT) ELSE last_seen END, "
        "dropped_metadata_count = dropped_metadata_count + CAST(? AS BIGINT), "
        "dropped_count = dropped_count + CAST(? AS BIGINT) WHERE id = ?",
        [(n, lo, lo, lo, hi, hi, hi, with_drops, dropped, name_id)
         for name_id, n, lo, hi, with_drops, dropped in counters])


__all__ = ["Contacts", "EventNames", "Events", "Lifecycle", "Retention", "SQLStore", "Source", "Workspaces",
           "new_contact_id"]
