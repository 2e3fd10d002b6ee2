"""The store: every read and write Trailmark makes, named for the product, answered by parts with one concern each.

:class:`SQLStore` is a facade: each part holds the :class:`~trailmark.store.db.Database` (aiosqlite or asyncpg)
and the sibling operations it calls, and the facade offers every part's methods as its own
(``store.create_contact(...)``). The parts: :class:`Workspaces` (and their REST access tokens),
:class:`Contacts`, :class:`Lifecycle` (convert, identify, merge, undo: the one home of the identity rules),
:class:`Events` (append, timeline, summaries), :class:`EventNames` and :class:`Retention`, each in the module of
its name (``workspaces``, ``contacts``, ``lifecycle``, ``events``, ``event_names``, ``retention``);
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

from collections.abc import Callable

from .admin_reads import AdminReads
from .contact_search import ContactSearch
from .contacts import Contacts
from .contacts_store import RestContacts
from .conversations import ConversationStore
from .db import Database
from .event_names import EventNames
from .events import Events, Source
from .lifecycle import Lifecycle
from .live_reads import LiveReads
from .messages import MessageStore
from .page_views import PageViews
from .retention import Retention
from .sources_store import SourcesStore
from .sql_helpers import new_contact_id
from .workspaces import Workspaces


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


__all__ = ["Contacts", "EventNames", "Events", "Lifecycle", "Retention", "SQLStore", "Source", "Workspaces",
           "new_contact_id"]
