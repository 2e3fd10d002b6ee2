"""Storage for the event sources (Segment, Stripe, historical import) and the GDPR pair (export, delete).

A part of :class:`~trailmark.store.sql_store.SQLStore` (which offers its methods as its own), with SQL that
runs unchanged on SQLite and PostgreSQL (``?`` placeholders, ``ON CONFLICT``). Tables: migration 2+ in
``schema.py`` (``segment_write_keys``, ``stripe_webhook_secrets``, ``stripe_customers``,
``stripe_unmatched``).

Get-or-create of visitors and users is one ``INSERT … ON CONFLICT DO NOTHING`` followed by a read, so two
requests naming the same new ``anonymousId`` / ``userId`` at once end with one contact (the unique
indexes on ``(workspace_id, visitor_id)`` and ``(workspace_id, external_id)`` decide).
"""

from __future__ import annotations

import json
import secrets
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from . import page_views
from .db import Conn, Database
from .lifecycle import lock_lifecycle
from .models import USER, VISITOR, Contact, Merge, StoredEvent, Workspace
from .sql_helpers import DAY
from .sql_helpers import new_contact_id as _new_contact_id
from .sql_helpers import now_s as _now
from .sql_helpers import placeholders as _marks

EXPORT_CHUNK = 5000  # events read per query by an export, between two progress reports
ANALYZE_AFTER_USERS = 1000  # users created at once (by an import) after which the planner's statistics are refreshed
_IN_CHUNK = 500  # identifiers per ``IN (…)`` list (SQLite allows 32,766 parameters; PostgreSQL 32,767)


def _chunks(items: Sequence[Any], size: int = _IN_CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class SourcesStore:
    """Segment write keys, Stripe secrets / customers / unmatched webhooks, bulk contact look-ups for the
    importer, and a contact's export and deletion."""

    def __init__(self, db: Database, *, workspace_by_token: Callable[[str], Awaitable[Workspace | None]]) -> None:
        self.db = db
        self.workspace_by_token = workspace_by_token  # the Workspaces part's (a write key may be a REST token)

    # ------------------------------------------------------------ contacts, by the ids sources send
    async def _live_contact(self, conn: Conn, workspace_id: int, where: str, args: Sequence[Any]) -> Contact | None:
        row = await conn.fetch_one(f"SELECT * FROM contacts WHERE workspace_id = ? AND {where} "
                                   "ORDER BY created_at LIMIT 1", (workspace_id, *args))
        if row is not None and row["merged_into"] is not None:
            row = await conn.fetch_one("SELECT * FROM contacts WHERE id = ?", (row["merged_into"],))
        return Contact.from_row(row) if row is not None else None

    async def visitor_for(self, workspace: Workspace, visitor_id: str) -> Contact:
        """The contact holding the visitor ``visitor_id`` (a Segment ``anonymousId``), created as an
        anonymous visitor when it does not exist. A visitor that became a user, or was merged into one,
        answers with that user."""
        async with self.db.read() as conn:
            found = await self._live_contact(conn, workspace.id, "visitor_id = ?", (visitor_id,))
        if found is not None:
            return found
        t = _now()

        async def job(conn: Conn) -> Contact | None:
            await conn.execute(
                "INSERT INTO contacts (id, workspace_id, role, visitor_id, created_at, updated_at, last_seen_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (_new_contact_id(), workspace.id, VISITOR, visitor_id, t, t, t))
            return await self._live_contact(conn, workspace.id, "visitor_id = ?", (visitor_id,))

        contact: Contact | None = await self.db.write(job)
        assert contact is not None
        return contact

    async def user_for(self, workspace: Workspace, external_id: str, *, create: bool = True) -> Contact | None:
        """The user with this external id (Intercom's ``user_id``); created when missing and ``create``."""
        where = "external_id = ? AND role = 'user'"
        async with self.db.read() as conn:
            found = await self._live_contact(conn, workspace.id, where, (external_id,))
        if found is not None or not create:
            return found
        t = _now()

        async def job(conn: Conn) -> Contact | None:
            await conn.execute(
                "INSERT INTO contacts (id, workspace_id, role, external_id, created_at, updated_at, contacted_at, "
                "signed_up_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (_new_contact_id(), workspace.id, USER, external_id, t, t, t, t))
            return await self._live_contact(conn, workspace.id, where, (external_id,))

        user: Contact | None = await self.db.write(job)
        return user

    async def contact_by_email(self, workspace: Workspace, email: str) -> Contact | None:
        """The user with this email, else the lead with it (oldest first, as Intercom matches)."""
        async with self.db.read() as conn:
            return (await self._live_contact(conn, workspace.id, "lower(email) = lower(?) AND role = 'user'", (email,))
                    or await self._live_contact(conn, workspace.id, "lower(email) = lower(?) AND role = 'lead'",
                                                (email,)))

    async def update_contact_traits(self, workspace: Workspace, contact_id: str, *, email: str | None = None,
                                    name: str | None = None, phone: str | None = None,
                                    attributes: dict[str, Any] | None = None) -> None:
        """Fill in email / name / phone and merge custom attributes (Segment ``identify`` traits)."""
        t = _now()

        async def job(conn: Conn) -> None:
            row = await conn.fetch_one("SELECT custom_attributes FROM contacts WHERE id = ? AND workspace_id = ?",
                                       (contact_id, workspace.id))
            if row is None:
                return
            attrs = json.loads(row["custom_attributes"] or "{}")
            attrs.update(attributes or {})
            await conn.execute(
                "UPDATE contacts SET email = COALESCE(?, email), name = COALESCE(?, name), "
                "phone = COALESCE(?, phone), custom_attributes = ?, last_seen_at = ?, updated_at = ? WHERE id = ?",
                (email, name, phone, json.dumps(attrs), t, t, contact_id))

        await self.db.write(job)

    # ------------------------------------------------------------ bulk look-ups (the importer)
    async def users_by_external_ids(self, workspace: Workspace, external_ids: Iterable[str], *,
                                    create: bool) -> dict[str, str]:
        """``external id → live contact id`` for many users at once; missing users are created (in one
        transaction) when ``create``, else left out of the answer."""
        wanted = sorted(set(external_ids))
        out: dict[str, str] = {}
        async with self.db.read() as conn:
            for chunk in _chunks(wanted):
                rows = await conn.fetch_all(
                    "SELECT external_id, id, merged_into FROM contacts WHERE workspace_id = ? AND role = 'user' "
                    f"AND external_id IN ({_marks(len(chunk))}) ORDER BY created_at DESC", (workspace.id, *chunk))
                out.update({r["external_id"]: r["merged_into"] or r["id"] for r in rows})
        missing = [x for x in wanted if x not in out]
        if missing and create:
            t = _now()

            async def job(conn: Conn) -> dict[str, str]:
                await conn.executemany(
                    "INSERT INTO contacts (id, workspace_id, role, external_id, created_at, updated_at, "
                    "contacted_at, signed_up_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    [(_new_contact_id(), workspace.id, USER, x, t, t, t, t) for x in missing])
                if len(missing) >= ANALYZE_AFTER_USERS:  # the look-ups below, and the import's next ones
                    await conn.dialect.refresh_statistics(conn, "contacts")
                made: dict[str, str] = {}
                for chunk in _chunks(missing):
                    rows = await conn.fetch_all(
                        "SELECT external_id, id, merged_into FROM contacts WHERE workspace_id = ? AND role = 'user' "
                        f"AND external_id IN ({_marks(len(chunk))})", (workspace.id, *chunk))
                    made.update({r["external_id"]: r["merged_into"] or r["id"] for r in rows})
                return made

            out.update(await self.db.write(job))
        return out

    async def contacts_by_emails(self, workspace: Workspace, emails: Iterable[str]) -> dict[str, str]:
        """``lower-cased email → live contact id``: the oldest user with that email, else the oldest lead."""
        wanted = sorted({e.lower() for e in emails})
        best: dict[str, tuple[int, int, str]] = {}
        async with self.db.read() as conn:
            for chunk in _chunks(wanted):
                rows = await conn.fetch_all(
                    "SELECT lower(email) AS email, role, id, merged_into, created_at FROM contacts "
                    f"WHERE workspace_id = ? AND role IN ('user', 'lead') AND lower(email) IN ({_marks(len(chunk))})",
                    (workspace.id, *chunk))
                for r in rows:
                    rank = (0 if r["role"] == USER else 1, r["created_at"], r["merged_into"] or r["id"])
                    if r["email"] not in best or rank < best[r["email"]]:
                        best[r["email"]] = rank
        return {email: rank[2] for email, rank in best.items()}

    async def live_contact_ids(self, workspace: Workspace, contact_ids: Iterable[str]) -> dict[str, str]:
        """``contact id → the id now holding its history`` (itself, or the contact it was merged into)."""
        wanted = sorted(set(contact_ids))
        out: dict[str, str] = {}
        async with self.db.read() as conn:
            for chunk in _chunks(wanted):
                rows = await conn.fetch_all(
                    f"SELECT id, merged_into FROM contacts WHERE workspace_id = ? AND id IN ({_marks(len(chunk))})",
                    (workspace.id, *chunk))
                out.update({r["id"]: r["merged_into"] or r["id"] for r in rows})
        return out

    # ------------------------------------------------------------ Segment
    async def workspace_by_write_key(self, key: str) -> tuple[Workspace, bool] | None:
        """``(workspace, server_side)`` for a Segment write key or a REST access token. ``server_side`` is
        True for the access token: a credential that never ships in a browser, so it may identify users."""
        async with self.db.read() as conn:
            row = await conn.fetch_one(
                "SELECT w.* FROM workspaces w JOIN segment_write_keys k ON k.workspace_id = w.id "
                "WHERE k.write_key = ?", (key,))
            if row is not None:
                return Workspace.from_row(row), False
        ws = await self.workspace_by_token(key)
        return (ws, True) if ws is not None else None

    async def segment_write_key(self, workspace: Workspace, *, rotate: bool = False) -> str:
        """The workspace's write-only Segment key, made on first use (``rotate`` replaces it)."""
        async def job(conn: Conn) -> str:
            if rotate:
                await conn.execute("DELETE FROM segment_write_keys WHERE workspace_id = ?", (workspace.id,))
            await conn.execute(
                "INSERT INTO segment_write_keys (workspace_id, write_key, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING", (workspace.id, "wk_" + secrets.token_urlsafe(24), _now()))
            row = await conn.fetch_one("SELECT write_key FROM segment_write_keys WHERE workspace_id = ?",
                                       (workspace.id,))
            assert row is not None
            return str(row["write_key"])

        key: str = await self.db.write(job)
        return key

    # ------------------------------------------------------------ Stripe: webhook secrets
    async def add_stripe_secret(self, workspace: Workspace, secret: str) -> bool:
        """Add a webhook signing secret (``whsec_…``); False when the workspace already has it."""
        async def job(conn: Conn) -> int:
            return await conn.execute(
                "INSERT INTO stripe_webhook_secrets (workspace_id, secret, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING", (workspace.id, secret, _now()))

        return bool(await self.db.write(job))

    async def remove_stripe_secret(self, workspace: Workspace, secret: str) -> bool:
        async def job(conn: Conn) -> int:
            return await conn.execute("DELETE FROM stripe_webhook_secrets WHERE workspace_id = ? AND secret = ?",
                                      (workspace.id, secret))

        return bool(await self.db.write(job))

    async def stripe_secrets(self, workspace: Workspace) -> list[str]:
        async with self.db.read() as conn:
            rows = await conn.fetch_all("SELECT secret FROM stripe_webhook_secrets WHERE workspace_id = ? ORDER BY id",
                                        (workspace.id,))
        return [r["secret"] for r in rows]

    async def all_stripe_secrets(self) -> list[tuple[str, str]]:
        """``(app_id, secret)`` for every workspace: the workspace-less webhook URL finds its workspace by the
        secret that verifies the signature."""
        async with self.db.read() as conn:
            rows = await conn.fetch_all("SELECT w.app_id, s.secret FROM stripe_webhook_secrets s "
                                        "JOIN workspaces w ON w.id = s.workspace_id ORDER BY s.id")
        return [(r["app_id"], r["secret"]) for r in rows]

    # ------------------------------------------------------------ Stripe: customers and unmatched webhooks
    async def contact_for_stripe_customer(self, workspace: Workspace, customer_id: str) -> Contact | None:
        """The contact a Stripe customer id was mapped to, else the contact whose custom attribute
        ``stripe_customer_id`` holds it."""
        async with self.db.read() as conn:
            row = await conn.fetch_one("SELECT contact_id FROM stripe_customers WHERE workspace_id = ? "
                                       "AND customer_id = ?", (workspace.id, customer_id))
            if row is not None:
                return await self._live_contact(conn, workspace.id, "id = ?", (row["contact_id"],))
            # Custom attributes are JSON text: a portable LIKE narrows the scan, Python checks the value.
            pattern = "%" + json.dumps(customer_id).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            rows = await conn.fetch_all(
                "SELECT id, custom_attributes FROM contacts WHERE workspace_id = ? AND merged_into IS NULL "
                "AND role IN ('user', 'lead') AND custom_attributes LIKE ? ESCAPE '\\' ORDER BY created_at",
                (workspace.id, pattern))
            for r in rows:
                if json.loads(r["custom_attributes"] or "{}").get("stripe_customer_id") == customer_id:
                    return await self._live_contact(conn, workspace.id, "id = ?", (r["id"],))
        return None

    async def map_stripe_customer(self, workspace: Workspace, customer_id: str, contact_id: str) -> None:
        """Remember which contact a Stripe customer is (learned from a webhook matched by email)."""
        async def job(conn: Conn) -> None:
            await conn.execute(
                "INSERT INTO stripe_customers (workspace_id, customer_id, contact_id, created_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (workspace_id, customer_id) DO UPDATE SET contact_id = excluded.contact_id",
                (workspace.id, customer_id, contact_id, _now()))

        await self.db.write(job)

    async def record_unmatched_stripe_event(self, workspace: Workspace, *, event_id: str, event_type: str,
                                            customer_id: str | None, email: str | None, reason: str,
                                            payload: str) -> bool:
        """Keep a verified webhook no contact matched; False when this Stripe event id is already kept."""
        async def job(conn: Conn) -> int:
            return await conn.execute(
                "INSERT INTO stripe_unmatched (workspace_id, stripe_event_id, type, customer_id, email, reason, "
                "payload, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (workspace.id, event_id, event_type, customer_id, email, reason, payload, _now()))

        return bool(await self.db.write(job))

    async def unmatched_stripe_events(self, workspace: Workspace, *, include_resolved: bool = False,
                                      customer_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Verified Stripe webhooks that matched no contact, newest first (for the admin and the CLI).
        Each: ``id, stripe_event_id, type, customer_id, email, reason, received_at, resolved_at,
        resolved_contact, payload`` (the raw JSON text)."""
        where = "workspace_id = ?"
        args: list[int | str] = [workspace.id]
        if not include_resolved:
            where += " AND resolved_at IS NULL"
        if customer_id is not None:
            where += " AND customer_id = ?"
            args.append(customer_id)
        async with self.db.read() as conn:
            rows = await conn.fetch_all(f"SELECT * FROM stripe_unmatched WHERE {where} "
                                        "ORDER BY received_at DESC, id DESC LIMIT ?", (*args, limit))
        keys = ("id", "stripe_event_id", "type", "customer_id", "email", "reason", "received_at", "resolved_at",
                "resolved_contact", "payload")
        return [{k: r[k] for k in keys} for r in rows]

    async def resolve_unmatched_stripe_event(self, workspace: Workspace, event_id: str, contact_id: str) -> None:
        async def job(conn: Conn) -> None:
            await conn.execute("UPDATE stripe_unmatched SET resolved_at = ?, resolved_contact = ? "
                               "WHERE workspace_id = ? AND stripe_event_id = ?",
                               (_now(), contact_id, workspace.id, event_id))

        await self.db.write(job)

    # ------------------------------------------------------------ GDPR: export and delete
    async def _person_ids(self, conn: Conn, workspace: Workspace, contact_id: str) -> list[str]:
        """The live contact holding ``contact_id`` and every contact merged into it (one person)."""
        root = await self._live_contact(conn, workspace.id, "id = ?", (contact_id,))
        if root is None:
            return []
        rows = await conn.fetch_all("SELECT id FROM contacts WHERE workspace_id = ? AND merged_into = ? ORDER BY id",
                                    (workspace.id, root.id))
        return [root.id, *(r["id"] for r in rows)]

    async def contact_export(self, workspace: Workspace, contact_id: str,
                             progress: Callable[[int, int], None] | None = None) -> dict[str, Any] | None:
        """Everything stored about one person: the contact (every column), the contacts merged into it, the
        merge history, Stripe customer ids, imported event summaries, and *every* stored event and page view
        of all of them, oldest first (also visitor-phase ones that the timeline hides; ``in_history`` says
        which). Events are read :data:`EXPORT_CHUNK` at a time, each contact's in its index order, and
        ``progress(rows read, rows in all)`` is called after each chunk (``trailmark export``'s bar)."""
        async with self.db.read() as conn:
            ids = await self._person_ids(conn, workspace, contact_id)
            if not ids:
                return None
            rows = await conn.fetch_all(f"SELECT * FROM contacts WHERE id IN ({_marks(len(ids))})", ids)
            raw = {r["id"]: r for r in rows}
            contacts = {r["id"]: Contact.from_row(r) for r in rows}
            summaries = await conn.fetch_all(
                f"SELECT contact_id, name, count, first_at, last_at FROM event_summaries "
                f"WHERE contact_id IN ({_marks(len(ids))}) ORDER BY name, contact_id", ids)
            merge_rows = await conn.fetch_all(
                f"SELECT * FROM merges WHERE workspace_id = ? AND (from_contact IN ({_marks(len(ids))}) "
                f"OR into_contact IN ({_marks(len(ids))})) ORDER BY created_at, id", (workspace.id, *ids, *ids))
            customers = await conn.fetch_all(
                f"SELECT customer_id FROM stripe_customers WHERE contact_id IN ({_marks(len(ids))}) "
                "ORDER BY customer_id", ids)
            counted = await conn.fetch_one(
                f"SELECT (SELECT COUNT(*) FROM events WHERE contact_id IN ({_marks(len(ids))})) + (SELECT COUNT(*) "
                f"FROM page_views WHERE contact_id IN ({_marks(len(ids))})) AS n", (*ids, *ids))
            total = int(counted["n"]) if counted else 0
            event_rows: list[Any] = []

            def report(read_of_this_contact: int) -> None:
                if progress:
                    progress(len(event_rows) + read_of_this_contact, total)

            for one in ids:
                event_rows += await _events_in_chunks(conn, one, report)
            event_rows.sort(key=lambda r: (r["created_at"], r["id"]))
            view_rows = await page_views.export_rows(conn, ids)
            if progress:
                progress(len(event_rows) + len(view_rows), total)
        events = []
        for r in event_rows:
            event = StoredEvent.from_row(r)
            floor = contacts[event.contact_id].visitor_floor
            visible = floor is None or event.role != VISITOR or event.created_at >= floor
            events.append({"id": event.id, "event_name": event.event_name, "created_at": event.created_at,
                           "received_at": r["received_at"], "contact_id": event.contact_id, "role": event.role,
                           "source": event.source, "metadata": event.metadata,
                           "metadata_types": event.metadata_types, "in_history": visible})
        return {"type": "contact.export", "exported_at": _now(), "workspace": workspace.app_id,
                "contact": _contact_json(raw[ids[0]]),
                "merged_contacts": [_contact_json(raw[i]) for i in ids[1:]],
                "merges": [_merge_json(Merge.from_row(r)) for r in merge_rows],
                "stripe_customer_ids": [r["customer_id"] for r in customers],
                "event_summaries": [{k: r[k] for k in ("contact_id", "name", "count", "first_at", "last_at")}
                                    for r in summaries],
                "events": events,
                "page_views": [_page_view_json(r, contacts[r["contact_id"]].visitor_floor) for r in view_rows]}

    async def delete_contact(self, workspace: Workspace, contact_id: str) -> dict[str, Any] | None:
        """Erase one person: the live contact holding ``contact_id``, every contact merged into it, all
        their events, imported event summaries, merge records and Stripe customer mappings, in one
        transaction.

        Aggregates: ``event_names.event_count`` and the daily counts go down by the erased events, so the
        admin's numbers match what is stored; ``first_seen`` / ``last_seen`` and the metadata-drop counters
        stay (they describe the event name, not the person, and recomputing them means scanning every
        event of the name). Event names themselves stay, even at zero events."""
        async def job(conn: Conn) -> dict[str, Any] | None:
            # Who makes up the person must not change under the erasure: an undo committing between the read
            # and the deletes would leave an unmerged contact alive with its events erased (PostgreSQL).
            await lock_lifecycle(conn, workspace.id)
            ids = await self._person_ids(conn, workspace, contact_id)
            if not ids:
                return None
            marks = _marks(len(ids))
            if conn.dialect.concurrent_writers:
                # The person's contacts before the counter rows, the order ingest takes them in (its events'
                # foreign key, then the counters): the other order deadlocked with a browser still sending.
                await conn.fetch_all(f"SELECT id FROM contacts WHERE id IN ({marks}) ORDER BY id FOR UPDATE", ids)
            per_day = await conn.fetch_all(
                "SELECT event_name_id, day, COUNT(*) AS n FROM (SELECT event_name_id, created_at / ? AS day "
                f"FROM events WHERE contact_id IN ({marks})) AS d GROUP BY event_name_id, day", (DAY, *ids))
            per_name: dict[int, int] = defaultdict(int)
            for r in per_day:
                per_name[r["event_name_id"]] += int(r["n"])
            # The same tables in the same order as ingest (event names, then daily counts; rows by key), so
            # an erase and concurrent ingest on PostgreSQL take the shared rows' locks in one order.
            await conn.executemany(
                "UPDATE event_names SET event_count = CASE WHEN event_count > ? THEN event_count - ? ELSE 0 END "
                "WHERE id = ?", [(n, n, name_id) for name_id, n in sorted(per_name.items())])
            await conn.executemany(
                "UPDATE event_daily_counts SET count = CASE WHEN count > ? THEN count - ? ELSE 0 END "
                "WHERE event_name_id = ? AND day = ?",
                [(int(r["n"]), int(r["n"]), r["event_name_id"], int(r["day"]))
                 for r in sorted(per_day, key=lambda r: (r["event_name_id"], int(r["day"])))])
            events = await conn.execute(f"DELETE FROM events WHERE contact_id IN ({marks})", ids)
            await conn.execute(f"DELETE FROM page_views WHERE contact_id IN ({marks})", ids)
            await conn.execute(f"DELETE FROM event_summaries WHERE contact_id IN ({marks})", ids)
            merges = await conn.execute(
                f"DELETE FROM merges WHERE workspace_id = ? "
                f"AND (from_contact IN ({marks}) OR into_contact IN ({marks}))",
                (workspace.id, *ids, *ids))
            await conn.execute(f"DELETE FROM stripe_customers WHERE contact_id IN ({marks})", ids)
            # Merged contacts first: they point at the root.
            await conn.execute(f"DELETE FROM contacts WHERE id IN ({marks}) AND merged_into IS NOT NULL", ids)
            await conn.execute("DELETE FROM contacts WHERE id = ?", (ids[0],))
            return {"contact_id": ids[0], "contacts": len(ids), "events": events, "merges": merges}

        result: dict[str, Any] | None = await self.db.write(job)
        return result


async def _events_in_chunks(conn: Conn, contact_id: str, read: Callable[[int], None]) -> list[Any]:
    """Every event of one contact, oldest first, :data:`EXPORT_CHUNK` rows per query down its
    ``(contact_id, created_at, id)`` index; ``read(rows so far)`` after each query."""
    rows: list[Any] = []
    while True:
        after = "" if not rows else " AND (e.created_at > ? OR (e.created_at = ? AND e.id > ?))"
        last = [] if not rows else [rows[-1]["created_at"], rows[-1]["created_at"], rows[-1]["id"]]
        chunk = await conn.fetch_all(
            "SELECT e.id, e.contact_id, e.created_at, e.received_at, e.role, e.source, e.metadata, "
            "e.metadata_types, n.name FROM events e JOIN event_names n ON n.id = e.event_name_id "
            f"WHERE e.contact_id = ?{after} ORDER BY e.created_at, e.id LIMIT ?", (contact_id, *last, EXPORT_CHUNK))
        rows += chunk
        read(len(rows))
        if len(chunk) < EXPORT_CHUNK:
            return rows


def _contact_json(row: Any) -> dict[str, Any]:
    """Every stored column of a contact (whatever later migrations add), custom attributes decoded."""
    out = {k: row[k] for k in row.keys()}  # noqa: SIM118 (sqlite3.Row and asyncpg.Record iterate over values)
    out["custom_attributes"] = json.loads(out.get("custom_attributes") or "{}")
    return out


def _page_view_json(row: Any, floor: int | None) -> dict[str, Any]:
    """A stored page view, and whether the timeline shows it (``in_history``, as for events)."""
    visible = floor is None or row["role"] != VISITOR or row["created_at"] >= floor
    return {**{k: row[k] for k in ("id", "contact_id", "role", "created_at", "received_at", "url", "title",
                                   "referrer")}, "in_history": visible}


def _merge_json(m: Merge) -> dict[str, Any]:
    return {"id": m.id, "kind": m.kind, "from_contact": m.from_contact, "into_contact": m.into_contact,
            "from_role": m.from_role, "reason": m.reason, "proof": m.proof, "events_since": m.events_since,
            "created_at": m.created_at, "undone_at": m.undone_at}
