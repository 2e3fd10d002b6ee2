"""Versioned schema migrations for both stores.

Each migration is ``(version, sqlite_sql, postgres_sql)``. The store applies, in one transaction per
version, every migration newer than the highest version recorded in ``schema_migrations``. PostgreSQL
takes an advisory lock first, so several processes starting at once apply each migration exactly once;
SQLite's ``BEGIN IMMEDIATE`` gives the same guarantee for processes sharing one file.

Times are integers (unix seconds) in both stores; JSON is stored as text so both stores read the same.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ..tokens import hash_token, token_hint
from .contact_stats import RECOUNT_ALL

_COMMON = """
CREATE TABLE workspaces (
    id {pk},
    app_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    access_token TEXT NOT NULL UNIQUE,
    signing_key TEXT NOT NULL,
    identity_secret TEXT NOT NULL,
    previous_identity_secret TEXT,
    previous_secret_expires_at BIGINT,
    enforce_identity_verification INTEGER NOT NULL DEFAULT 0,
    strict_metadata INTEGER NOT NULL DEFAULT 0,
    allowed_origins TEXT NOT NULL DEFAULT '[]',
    retention_days INTEGER NOT NULL DEFAULT 90,
    created_at BIGINT NOT NULL
);
CREATE TABLE contacts (
    id TEXT PRIMARY KEY,
    workspace_id BIGINT NOT NULL REFERENCES workspaces(id),
    role TEXT NOT NULL,
    visitor_id TEXT,
    external_id TEXT,
    email TEXT,
    name TEXT,
    phone TEXT,
    custom_attributes TEXT NOT NULL DEFAULT '{{}}',
    message TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    last_seen_at BIGINT,
    contacted_at BIGINT,
    visitor_floor BIGINT,
    signed_up_at BIGINT,
    merged_into TEXT REFERENCES contacts(id) ON DELETE SET NULL
);
CREATE UNIQUE INDEX contacts_visitor_id ON contacts(workspace_id, visitor_id) WHERE visitor_id IS NOT NULL;
CREATE UNIQUE INDEX contacts_external_id ON contacts(workspace_id, external_id)
    WHERE external_id IS NOT NULL AND merged_into IS NULL;
CREATE INDEX contacts_email ON contacts(workspace_id, email);
CREATE INDEX contacts_role ON contacts(workspace_id, role, created_at);
CREATE INDEX contacts_merged_into ON contacts(merged_into) WHERE merged_into IS NOT NULL;
CREATE TABLE event_names (
    id {pk},
    workspace_id BIGINT NOT NULL REFERENCES workspaces(id),
    name TEXT NOT NULL,
    description TEXT,
    archived INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    event_count BIGINT NOT NULL DEFAULT 0,
    first_seen BIGINT,
    last_seen BIGINT,
    dropped_count BIGINT NOT NULL DEFAULT 0,
    dropped_metadata_count BIGINT NOT NULL DEFAULT 0,
    UNIQUE (workspace_id, name)
);
CREATE TABLE event_daily_counts (
    event_name_id BIGINT NOT NULL REFERENCES event_names(id) ON DELETE CASCADE,
    day BIGINT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (event_name_id, day)
);
CREATE TABLE metadata_drops (
    event_name_id BIGINT NOT NULL REFERENCES event_names(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    reason TEXT NOT NULL,
    count BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    PRIMARY KEY (event_name_id, key, reason)
);
CREATE TABLE events (
    id {pk},
    workspace_id BIGINT NOT NULL REFERENCES workspaces(id),
    contact_id TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    event_name_id BIGINT NOT NULL REFERENCES event_names(id),
    created_at BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    role TEXT NOT NULL,
    source TEXT NOT NULL,
    dedupe_key TEXT NOT NULL,
    metadata TEXT,
    metadata_types TEXT
);
CREATE UNIQUE INDEX events_dedupe ON events(workspace_id, dedupe_key);
CREATE INDEX events_contact_time ON events(contact_id, created_at, id);
CREATE INDEX events_name_contact ON events(event_name_id, contact_id, created_at);
CREATE INDEX events_role_time ON events(workspace_id, role, created_at);
CREATE TABLE merges (
    id {pk},
    workspace_id BIGINT NOT NULL REFERENCES workspaces(id),
    kind TEXT NOT NULL,
    from_contact TEXT NOT NULL,
    into_contact TEXT NOT NULL,
    from_role TEXT NOT NULL,
    into_role_before TEXT,
    reason TEXT NOT NULL,
    proof TEXT NOT NULL,
    events_since BIGINT,
    created_at BIGINT NOT NULL,
    undone_at BIGINT,
    undone_by TEXT
);
CREATE INDEX merges_into ON merges(into_contact);
CREATE INDEX merges_from ON merges(from_contact);
CREATE TABLE teammates (
    id {pk},
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
"""

# Event sources (server/sources/, server/store/sources_store.py): a write-only Segment key per workspace,
# Stripe webhook signing secrets (several at once during a rotation), Stripe customer → contact mappings,
# and verified Stripe webhooks that matched no contact (kept, never dropped silently).
_SOURCES = """
CREATE TABLE segment_write_keys (
    workspace_id BIGINT PRIMARY KEY REFERENCES workspaces(id) ON DELETE CASCADE,
    write_key TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);
CREATE TABLE stripe_webhook_secrets (
    id {pk},
    workspace_id BIGINT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    secret TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (workspace_id, secret)
);
CREATE TABLE stripe_customers (
    workspace_id BIGINT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    customer_id TEXT NOT NULL,
    contact_id TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, customer_id)
);
CREATE INDEX stripe_customers_contact ON stripe_customers(contact_id);
CREATE TABLE stripe_unmatched (
    id {pk},
    workspace_id BIGINT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    stripe_event_id TEXT NOT NULL,
    type TEXT NOT NULL,
    customer_id TEXT,
    email TEXT,
    reason TEXT NOT NULL,
    payload TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    resolved_at BIGINT,
    resolved_contact TEXT,
    UNIQUE (workspace_id, stripe_event_id)
);
CREATE INDEX stripe_unmatched_customer ON stripe_unmatched(workspace_id, customer_id);
"""

# The REST contacts API (server/rest_contacts.py, server/store/contacts_store.py): the profile fields
# Intercom's contact object carries that nothing else sets, and the per-name aggregates that
# ``POST /events/summaries`` imports (added to the counted events in ``GET /events?summary=true``).
_REST_CONTACTS = """
ALTER TABLE contacts ADD COLUMN avatar TEXT;
ALTER TABLE contacts ADD COLUMN owner_id BIGINT;
ALTER TABLE contacts ADD COLUMN unsubscribed_from_emails INTEGER NOT NULL DEFAULT 0;
CREATE TABLE event_summaries (
    workspace_id BIGINT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    contact_id TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    count BIGINT NOT NULL,
    first_at BIGINT NOT NULL,
    last_at BIGINT NOT NULL,
    PRIMARY KEY (contact_id, name)
);
"""

# The admin pages (server/admin/, server/store/admin_reads.py): the contact list walks live contacts newest
# seen first, keyset-paginated on (seen, id) with seen = COALESCE(last_seen_at, created_at), with or without
# a role; both are partial indexes over live contacts (merged-away ones are never listed). The session key
# made when TRAILMARK_SECRET_KEY is unset lives in admin_settings, so restarts and every process share it.
_ADMIN = """
CREATE TABLE admin_settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE INDEX contacts_admin_seen ON contacts(workspace_id, (COALESCE(last_seen_at, created_at)), id)
    WHERE merged_into IS NULL;
CREATE INDEX contacts_admin_role_seen ON contacts(workspace_id, role, (COALESCE(last_seen_at, created_at)), id)
    WHERE merged_into IS NULL;
"""

# The contact profile's per-name summary and the merge history's visible counts
# (server/store/history_stats.py): each (contact, name, role) is one contiguous run of this index, ordered by
# time, so a source's visible events (all of a pair, or a visitor pair from its floor on) are index ranges
# counted without reading the table or the hidden entries. Plain CREATE INDEX (migrations run in a
# transaction): on PostgreSQL it blocks writes to events while it builds. (history_stats.py went with migration
# 13: this index now serves contact_stats.py's recounts and the purge's probes.)
_HISTORY_INDEX = """
CREATE INDEX events_contact_name_role_time ON events(contact_id, event_name_id, role, created_at);
"""

# REST access tokens stored hashed (server/tokens.py): several per workspace, named, revocable. The plaintext
# tokens of earlier versions are hashed into this table by ``hash_existing_tokens`` (same transaction) and the
# old column keeps a non-secret placeholder (it is NOT NULL UNIQUE; SQLite cannot drop that in place). The
# admin session key no longer lives in the database (a copy of it must not forge sessions).
_ACCESS_TOKENS = """
CREATE TABLE access_tokens (
    id {pk},
    workspace_id BIGINT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    hint TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX access_tokens_workspace ON access_tokens(workspace_id);
DELETE FROM admin_settings WHERE key = 'secret_key';
"""


# Admin sessions carry the teammate's session version (server/admin/auth.py); signing out raises it, so a
# copied cookie stops working at once instead of living out its 14 days.
_SESSION_VERSION = """
ALTER TABLE teammates ADD COLUMN session_version BIGINT NOT NULL DEFAULT 0;
"""


# New event names from unverified browsers (server/store/name_policy.py): per-workspace limits per contact and
# per client address per day, an optional list of the names browsers may create, the per-day counts of names
# created, and the refused names with their counts (shown in the admin, so nobody loses events unseen).
_BROWSER_NAMES = """
ALTER TABLE workspaces ADD COLUMN browser_new_names_per_contact INTEGER NOT NULL DEFAULT 10;
ALTER TABLE workspaces ADD COLUMN browser_new_names_per_address INTEGER NOT NULL DEFAULT 30;
ALTER TABLE workspaces ADD COLUMN browser_event_names TEXT NOT NULL DEFAULT '[]';
CREATE TABLE new_name_quota (
    workspace_id BIGINT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    day BIGINT NOT NULL,
    holder TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, day, holder)
);
CREATE TABLE refused_event_names (
    workspace_id BIGINT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    reason TEXT NOT NULL,
    count BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, name, reason)
);
CREATE INDEX refused_event_names_seen ON refused_event_names(workspace_id, last_seen);
"""


# Consent mode (docs/privacy.md): a workspace whose shim waits for the page's consent before it sets a cookie,
# stores or sends anything; and whether Global Privacy Control / Do Not Track count as a refusal.
_CONSENT = """
ALTER TABLE workspaces ADD COLUMN consent_required INTEGER NOT NULL DEFAULT 0;
ALTER TABLE workspaces ADD COLUMN honour_gpc INTEGER NOT NULL DEFAULT 0;
"""


def token_placeholder(app_id: str) -> str:
    """What ``workspaces.access_token`` holds now: unique, and no secret."""
    return f"hashed:{app_id}"


async def hash_existing_tokens(conn: Any) -> None:
    rows = await conn.fetch_all("SELECT id, app_id, access_token, created_at FROM workspaces")
    for r in rows:
        if r["access_token"].startswith("hashed:"):
            continue
        await conn.execute("INSERT INTO access_tokens (workspace_id, name, token_hash, hint, created_at) "
                           "VALUES (?, ?, ?, ?, ?)", (r["id"], "first token", hash_token(r["access_token"]),
                                                      token_hint(r["access_token"]), r["created_at"]))
        await conn.execute("UPDATE workspaces SET access_token = ? WHERE id = ?",
                           (token_placeholder(r["app_id"]), r["id"]))


# Conversations (server/store/conversations.py): every message kept, closes/reopens/assignments recorded as
# parts; read marks are part ids. The single ``contacts.message`` of earlier versions becomes the first part of
# a conversation (the column stays, no longer written).
_CONVERSATIONS = """
CREATE TABLE conversations (
    id {pk},
    workspace_id BIGINT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    contact_id TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    state TEXT NOT NULL DEFAULT 'open',
    assignee_id BIGINT REFERENCES teammates(id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    last_contact_at BIGINT,
    last_contact_part BIGINT NOT NULL DEFAULT 0,
    team_read_part BIGINT NOT NULL DEFAULT 0,
    contact_read_part BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX conversations_inbox ON conversations(workspace_id, state, updated_at);
CREATE INDEX conversations_contact ON conversations(contact_id);
CREATE TABLE conversation_parts (
    id {pk},
    conversation_id BIGINT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    workspace_id BIGINT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    author_type TEXT NOT NULL,
    author_id TEXT,
    body TEXT,
    client_id TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX conversation_parts_conversation ON conversation_parts(conversation_id, id);
CREATE UNIQUE INDEX conversation_parts_client ON conversation_parts(workspace_id, client_id)
    WHERE client_id IS NOT NULL;
INSERT INTO conversations (workspace_id, contact_id, state, created_at, updated_at, last_contact_at)
    SELECT workspace_id, id, 'open', COALESCE(contacted_at, created_at), COALESCE(contacted_at, created_at),
           COALESCE(contacted_at, created_at)
    FROM contacts WHERE message IS NOT NULL;
INSERT INTO conversation_parts (conversation_id, workspace_id, kind, author_type, author_id, body, created_at)
    SELECT cv.id, cv.workspace_id, 'comment', 'contact', c.id, c.message, cv.created_at
    FROM conversations cv JOIN contacts c ON c.id = cv.contact_id;
UPDATE conversations SET last_contact_part = (SELECT MAX(p.id) FROM conversation_parts p
    WHERE p.conversation_id = conversations.id);
"""

# Event-triggered messages (server/messages/, server/store/messages.py): the documents (by workspace + key),
# one delivery per (message, triggering event's dedupe key) so a retried event never triggers twice, daily
# counts per message, and the workspace's optional minimum gap between two messages to one contact.
_MESSAGES = """
CREATE TABLE messages (
    id {pk},
    workspace_id BIGINT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    event_name TEXT NOT NULL,
    document TEXT NOT NULL,
    went_live_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (workspace_id, key)
);
CREATE INDEX messages_live ON messages(workspace_id, state);
CREATE TABLE message_deliveries (
    id {pk},
    workspace_id BIGINT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    message_id BIGINT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    contact_id TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    dedupe_key TEXT NOT NULL,
    source TEXT NOT NULL,
    status TEXT NOT NULL,
    content TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    sent_at BIGINT,
    shown_at BIGINT,
    clicked_at BIGINT,
    dismissed_at BIGINT,
    UNIQUE (message_id, dedupe_key)
);
CREATE INDEX message_deliveries_contact ON message_deliveries(contact_id, created_at);
CREATE INDEX message_deliveries_message_contact ON message_deliveries(message_id, contact_id, created_at);
CREATE INDEX message_deliveries_pending ON message_deliveries(contact_id, expires_at) WHERE status = 'pending';
CREATE TABLE message_daily_stats (
    message_id BIGINT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    day BIGINT NOT NULL,
    sent BIGINT NOT NULL DEFAULT 0,
    shown BIGINT NOT NULL DEFAULT 0,
    clicked BIGINT NOT NULL DEFAULT 0,
    dismissed BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (message_id, day)
);
CREATE TABLE message_settings (
    workspace_id BIGINT PRIMARY KEY REFERENCES workspaces(id) ON DELETE CASCADE,
    gap_minutes INTEGER
);
"""

# Page views (server/page_views.py, server/store/page_views.py): the shim records each page a contact views.
# They are not events: no event name (so no use of the 120-name budget), not in REST ``GET /events``; they show
# on the admin timeline, feed the "visited a URL containing …" filter, go into exports and expire with the
# visitor's events. The client id makes a resent page view count once, as for events. Per workspace, off
# switches them off (the server drops them and tells the shim in the ping answer).
_PAGE_VIEWS = """
ALTER TABLE workspaces ADD COLUMN page_views INTEGER NOT NULL DEFAULT 1;
CREATE TABLE page_views (
    id {pk},
    workspace_id BIGINT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    contact_id TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    dedupe_key TEXT NOT NULL,
    url TEXT NOT NULL,
    title TEXT,
    referrer TEXT
);
CREATE UNIQUE INDEX page_views_dedupe ON page_views(workspace_id, dedupe_key);
CREATE INDEX page_views_contact_time ON page_views(contact_id, created_at, id);
CREATE INDEX page_views_role_time ON page_views(workspace_id, role, created_at);
"""

# Per-(contact, event name, phase) count / first / last (server/store/contact_stats.py): the contact filters
# (admin list, message audiences) and the profile's per-name summary probe these rows instead of the events.
# visitor_phase splits events tracked as an anonymous visitor (role 'visitor') from the rest, so a row is
# wholly visible or wholly hidden under its contact's visitor_floor except in the short time between a
# conversion and the next purge. The primary key leads with the name (a list's probes for one name stay in
# that name's pages); (contact_id, visitor_phase) serves the cascade and a contact's summary. Backfilled from
# the stored events in this transaction.
# events_name_contact goes: nothing reads events by (name, contact) any more, and each events index costs
# every ingested event. The events indexes left: events_dedupe (the dedupe check of every insert),
# events_contact_time (a contact's timeline, export, erasure, a message's "first time since"),
# events_contact_name_role_time (the recount of a stats row straddling its floor, the purge's probes of the
# keys it touched), events_role_time (the purge's expired visitor events, the live view's latest events).
_CONTACT_EVENT_STATS = """
CREATE TABLE contact_event_stats (
    event_name_id BIGINT NOT NULL REFERENCES event_names(id),
    contact_id TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    visitor_phase INTEGER NOT NULL,
    count BIGINT NOT NULL,
    first_at BIGINT NOT NULL,
    last_at BIGINT NOT NULL,
    PRIMARY KEY (event_name_id, contact_id, visitor_phase)
){without_rowid};
CREATE INDEX contact_event_stats_contact ON contact_event_stats(contact_id, visitor_phase);
{backfill};
DROP INDEX events_name_contact;
"""

# Python steps run after a version's SQL, in the same transaction (with a ``Conn``: ``?`` placeholders).
PYTHON_STEPS: dict[int, Callable[[Any], Awaitable[None]]] = {6: hash_existing_tokens}

MIGRATIONS: list[tuple[int, str, str]] = [
    (1,
     _COMMON.format(pk="INTEGER PRIMARY KEY"),
     _COMMON.format(pk="BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")),
    (2,
     _SOURCES.format(pk="INTEGER PRIMARY KEY"),
     _SOURCES.format(pk="BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")),
    (3, _REST_CONTACTS, _REST_CONTACTS),
    (4, _ADMIN, _ADMIN),
    (5, _HISTORY_INDEX, _HISTORY_INDEX),
    (6,
     _ACCESS_TOKENS.format(pk="INTEGER PRIMARY KEY"),
     _ACCESS_TOKENS.format(pk="BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")),
    (7,
     _CONVERSATIONS.format(pk="INTEGER PRIMARY KEY"),
     _CONVERSATIONS.format(pk="BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")),
    (8, _SESSION_VERSION, _SESSION_VERSION),
    (9, _BROWSER_NAMES, _BROWSER_NAMES),
    (10,
     _MESSAGES.format(pk="INTEGER PRIMARY KEY"),
     _MESSAGES.format(pk="BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")),
    (11, _CONSENT, _CONSENT),
    (12,
     _PAGE_VIEWS.format(pk="INTEGER PRIMARY KEY"),
     _PAGE_VIEWS.format(pk="BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")),
    (13,
     _CONTACT_EVENT_STATS.format(without_rowid=" WITHOUT ROWID", backfill=RECOUNT_ALL),
     _CONTACT_EVENT_STATS.format(without_rowid="", backfill=RECOUNT_ALL)),
]
