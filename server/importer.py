"""Historical import (``trailmark import``) and the GDPR pair (``trailmark export`` / ``delete-contact``).

Import steps, per chunk of rows: ``read_rows`` (JSONL or CSV → raw rows) → ``read_row`` (contact
identifier, ``created_at``, then ``ingest.validate_event``: the same name and metadata rules as every
other path) → ``resolve_contacts`` (bulk look-ups, users created for unknown ``user_id``s unless told not
to) → ``store.append_events``, one ``AppendRequest`` per contact, all submitted at once so the SQLite
writer commits thousands of events per transaction.

Idempotence: the dedupe key is Intercom's event identity, ``(contact, event name, created_at)``, the very
key ``POST /events`` uses (``r:<contact id>:<name>:<created_at>``). So re-running an import stores nothing
new, and an import overlapping events already sent through the REST API does not double them. As with
Intercom, two events of one contact with the same name in the same second are one event.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import IO, Any

from .errors import ApiError
from .ingest import validate_event
from .metadata import CONTROL_CHARS, MAX_NUMBER
from .store import SQLStore
from .store.models import AppendRequest, Contact, NewEvent, Workspace

CHUNK_ROWS = 10_000  # rows validated and stored together (the writer commits ≤ 512 contacts per transaction)
SOURCE = "import"
IDENTIFIERS = ("id", "intercom_user_id", "user_id", "email")  # REST's precedence: contact id, user_id, email
RESERVED_COLUMNS = frozenset({"event_name", "created_at", "metadata", *IDENTIFIERS})
_INT = re.compile(r"^-?(0|[1-9][0-9]*)$")
_FLOAT = re.compile(r"^-?(0|[1-9][0-9]*)\.[0-9]+$")


class RowError(Exception):
    """A row that cannot be imported; the message is the (groupable) reason."""


@dataclass
class Row:
    line: int
    ident: tuple[str, str]  # (kind, value): ("id" | "user_id" | "email", …)
    event: NewEvent


@dataclass
class ImportSummary:
    """What an import did. ``reasons`` counts rejected rows by reason; ``examples`` keeps their first lines."""

    rows: int = 0
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    created_users: int = 0
    seconds: float = 0.0
    reasons: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[int]] = field(default_factory=dict)
    dropped_metadata: Counter[tuple[str, str]] = field(default_factory=Counter)

    def reject(self, line: int, reason: str) -> None:
        self.rejected += 1
        self.reasons[reason] += 1
        lines = self.examples.setdefault(reason, [])
        if len(lines) < 5:
            lines.append(line)

    @property
    def events_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self, max_reasons: int = 10) -> dict[str, Any]:
        return {"rows": self.rows, "accepted": self.accepted, "duplicate": self.duplicate,
                "rejected": self.rejected, "created_users": self.created_users,
                "seconds": round(self.seconds, 3), "events_per_second": round(self.events_per_second),
                "rejected_reasons": [{"reason": r, "count": n, "lines": self.examples[r]}
                                     for r, n in self.reasons.most_common(max_reasons)],
                "dropped_metadata": [{"key": k, "reason": r, "count": n}
                                     for (k, r), n in self.dropped_metadata.most_common(max_reasons)]}

    def render(self, max_reasons: int = 10) -> str:
        out = [f"{self.rows} rows: {self.accepted} accepted, {self.duplicate} duplicate, {self.rejected} rejected"
               + (f" ({self.created_users} new users created)" if self.created_users else "")]
        if self.reasons:
            out.append("rejected rows by reason:")
            for reason, n in self.reasons.most_common(max_reasons):
                lines = ", ".join(map(str, self.examples[reason]))
                out.append(f"  {n:>8}  {reason}  (lines {lines}{', …' if n > len(self.examples[reason]) else ''})")
            if len(self.reasons) > max_reasons:
                out.append(f"  … and {len(self.reasons) - max_reasons} more reasons")
        if self.dropped_metadata:
            out.append("metadata entries dropped (the rows were kept):")
            for (key, reason), n in self.dropped_metadata.most_common(max_reasons):
                out.append(f"  {n:>8}  {key}: {reason}")
        out.append(f"{self.seconds:.2f} s, {self.events_per_second:,.0f} events/s")
        return "\n".join(out)


# ---------------------------------------------------------------- reading files
def cell_value(text: str) -> Any:
    """A CSV cell as metadata: numeric strings become numbers (not ones with leading zeros, like zip codes,
    nor integers past 2^53, like long ids), ``{…}`` cells are JSON objects (a rich link or a monetary
    amount), empty cells are absent (``None``); anything else is the string, typed by the metadata rules."""
    if text == "":
        return None
    if _INT.match(text):
        number = int(text)
        return number if abs(number) <= MAX_NUMBER else text
    if _FLOAT.match(text):
        return float(text)
    if text.startswith("{") and text.endswith("}"):
        try:
            value = json.loads(text)
        except ValueError:
            return text
        return value if isinstance(value, dict) else text
    return text


def read_jsonl(stream: IO[str]) -> Iterator[tuple[int, Any]]:
    """``(line number, object or RowError)`` for every non-blank line."""
    for number, line in enumerate(stream, 1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except ValueError:
            yield number, RowError("line is not valid JSON")


def read_csv(stream: IO[str]) -> Iterator[tuple[int, Any]]:
    """CSV with a header: the reserved columns (event_name, created_at, id / user_id / email, an optional
    ``metadata`` JSON column) and any other column as a metadata key."""
    reader = csv.reader(stream)
    header = next(reader, None)
    if header is None:
        return
    header = [h.strip() for h in header]
    extra = [(i, h) for i, h in enumerate(header) if h not in RESERVED_COLUMNS and h]
    known = [(i, h) for i, h in enumerate(header) if h in RESERVED_COLUMNS]
    for cells in reader:
        number = reader.line_num
        if not any(cells):
            continue
        if len(cells) > len(header):
            yield number, RowError("row has more cells than the header")
            continue
        cells += [""] * (len(header) - len(cells))
        row: dict[str, Any] = {h: cells[i] for i, h in known if cells[i] != ""}
        metadata: dict[str, Any] = {}
        if "metadata" in row:
            try:
                metadata = json.loads(row["metadata"])
            except ValueError:
                yield number, RowError("metadata column is not a JSON object")
                continue
        for i, h in extra:
            value = cell_value(cells[i])
            if value is not None:
                metadata[h] = value
        row["metadata"] = metadata
        yield number, row


def read_created_at(value: Any) -> int | float:
    """Unix seconds (a number or numeric string) or ISO-8601; validate_event then applies the usual
    bounds (not in the future, not in milliseconds)."""
    if value is None or value == "":
        raise RowError("created_at is required (unix seconds or ISO-8601)")
    if isinstance(value, bool):
        raise RowError("created_at must be unix seconds or an ISO-8601 date")
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        text = value.strip()
        if _INT.match(text) or _FLOAT.match(text):
            return float(text) if "." in text else int(text)
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise RowError("created_at must be unix seconds or an ISO-8601 date") from None
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).timestamp()
    raise RowError("created_at must be unix seconds or an ISO-8601 date")


def read_row(raw: Any, *, strict: bool, now: int) -> tuple[tuple[str, str], NewEvent]:
    """One row → ``(identifier, event)``; RowError with the reason otherwise."""
    if isinstance(raw, RowError):
        raise raw
    if not isinstance(raw, dict):
        raise RowError("row must be a JSON object")
    ident = None
    for kind in IDENTIFIERS:
        value = raw.get(kind)
        if value is not None and not isinstance(value, bool) and str(value).strip():
            if not isinstance(value, (str, int)):
                raise RowError(f"{kind} must be a string")
            if CONTROL_CHARS.search(str(value)):
                raise RowError(f"{kind} must not contain control characters")
            ident = ("id" if kind == "intercom_user_id" else kind, str(value).strip())
            break
    if ident is None:
        raise RowError("row needs a contact identifier: id, user_id or email")
    created_at = read_created_at(raw.get("created_at"))
    if created_at > 10**11:
        raise RowError("created_at must be in seconds, not milliseconds")
    try:
        event = validate_event({"event_name": raw.get("event_name"), "created_at": int(created_at),
                                "metadata": raw.get("metadata")}, strict=strict, now=now, dedupe_key="")
    except ApiError as err:
        raise RowError(err.errors[0]["message"]) from None
    return ident, event


# ---------------------------------------------------------------- importing
async def resolve_contacts(store: SQLStore, ws: Workspace, idents: set[tuple[str, str]],
                           cache: dict[tuple[str, str], str | None], *, create_users: bool) -> int:
    """Fill ``cache`` with ``identifier → contact id`` (None: no such contact); returns users created."""
    todo = [i for i in idents if i not in cache]
    by_kind: dict[str, list[str]] = defaultdict(list)
    for kind, value in todo:
        by_kind[kind].append(value)
    created = 0
    if by_kind["user_id"]:
        found = await store.users_by_external_ids(ws, by_kind["user_id"], create=False)
        missing = [v for v in by_kind["user_id"] if v not in found]
        if missing and create_users:  # unknown user_id: the user is created (as Segment's track does)
            made = await store.users_by_external_ids(ws, missing, create=True)
            created = len(made)
            found.update(made)
        cache.update({("user_id", v): found.get(v) for v in by_kind["user_id"]})
    if by_kind["email"]:
        emails = await store.contacts_by_emails(ws, by_kind["email"])
        cache.update({("email", v): emails.get(v.lower()) for v in by_kind["email"]})
    if by_kind["id"]:
        ids = await store.live_contact_ids(ws, by_kind["id"])
        cache.update({("id", v): ids.get(v) for v in by_kind["id"]})
    return created


_NOT_FOUND = {"id": "no contact has this id", "email": "no user or lead has this email",
              "user_id": "no user has this user_id (the import ran with --no-create-users)"}


async def store_chunk(store: SQLStore, ws: Workspace, rows: list[Row], summary: ImportSummary,
                      cache: dict[tuple[str, str], str | None], *, create_users: bool) -> None:
    summary.created_users += await resolve_contacts(store, ws, {r.ident for r in rows}, cache,
                                                    create_users=create_users)
    per_contact: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        contact_id = cache.get(row.ident)
        if contact_id is None:
            summary.reject(row.line, _NOT_FOUND[row.ident[0]])
            continue
        ev = row.event
        # Intercom's event identity, as POST /events keys it. (The constructor, not dataclasses.replace:
        # this runs once per row.)
        row.event = NewEvent(ev.event_name, ev.created_at, f"r:{contact_id}:{ev.event_name}:{ev.created_at}",
                             ev.metadata, ev.metadata_types, ev.dropped)
        per_contact[contact_id].append(row)
    contact_ids = list(per_contact)
    outcomes = await asyncio.gather(
        *(store.append_events(AppendRequest(ws.id, cid, SOURCE, [r.event for r in per_contact[cid]]))
          for cid in contact_ids), return_exceptions=True)
    for cid, outcome in zip(contact_ids, outcomes):
        group = per_contact[cid]
        if isinstance(outcome, ApiError):
            for row in group:
                summary.reject(row.line, outcome.errors[0]["message"])
            continue
        if isinstance(outcome, BaseException):
            raise outcome
        for row, result in zip(group, outcome):
            if result.status == "accepted":
                summary.accepted += 1
                for d in row.event.dropped:
                    summary.dropped_metadata[(d["key"], d["reason"])] += 1
            elif result.status == "duplicate":
                summary.duplicate += 1
            else:
                summary.reject(row.line, result.reason or result.status)


async def import_rows(store: SQLStore, ws: Workspace, rows: Iterator[tuple[int, Any]], *,
                      create_users: bool = True, chunk_rows: int = CHUNK_ROWS,
                      progress: Callable[[ImportSummary], None] | None = None) -> ImportSummary:
    """Import ``(line, raw row)`` pairs; see the module docstring."""
    summary = ImportSummary()
    started = time.perf_counter()
    now = int(time.time())
    cache: dict[tuple[str, str], str | None] = {}
    chunk: list[Row] = []
    storing: asyncio.Task[None] | None = None
    # Pipelined: chunk N is written while chunk N+1 is read and validated. SQLite runs in aiosqlite's
    # thread without the GIL, so yielding to the event loop every few hundred rows lets the writer send
    # its next statement while this loop keeps validating (two cores both busy).
    for line, raw in rows:
        summary.rows += 1
        if summary.rows % 256 == 0:
            await asyncio.sleep(0)
        try:
            ident, event = read_row(raw, strict=ws.strict_metadata, now=now)
        except RowError as err:
            summary.reject(line, str(err))
            continue
        chunk.append(Row(line, ident, event))
        if len(chunk) >= chunk_rows:
            if storing is not None:
                await storing
                if progress:
                    progress(summary)
            storing = asyncio.create_task(store_chunk(store, ws, chunk, summary, cache, create_users=create_users))
            chunk = []
    if storing is not None:
        await storing
    if chunk:
        await store_chunk(store, ws, chunk, summary, cache, create_users=create_users)
    summary.seconds = time.perf_counter() - started
    if progress:
        progress(summary)
    return summary


def detect_format(path: str, fmt: str | None) -> str:
    if fmt:
        return fmt
    return "csv" if path.lower().endswith((".csv", ".csv.gz")) else "jsonl"


async def import_file(store: SQLStore, ws: Workspace, path: str, *, fmt: str | None = None,
                      create_users: bool = True, chunk_rows: int = CHUNK_ROWS,
                      progress: Callable[[int, int], None] | None = None) -> ImportSummary:
    """Import a JSONL or CSV file (``-``: standard input). ``progress(bytes read, total bytes)``."""
    import os
    import sys

    fmt = detect_format(path, fmt)
    if fmt not in ("jsonl", "csv"):
        raise ValueError("format must be jsonl or csv")
    if path == "-":
        stream: IO[str] = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig", newline="")
        total = 0
    else:
        stream = open(path, encoding="utf-8-sig", newline="")
        total = os.path.getsize(path)
    binary = getattr(stream, "buffer", None)

    def report(summary: ImportSummary) -> None:
        if progress:
            progress(binary.tell() if binary is not None and total else summary.rows, total or summary.rows)

    with stream:
        reader = read_csv(stream) if fmt == "csv" else read_jsonl(stream)
        return await import_rows(store, ws, reader, create_users=create_users, chunk_rows=chunk_rows,
                                 progress=report)


# ---------------------------------------------------------------- export and delete (GDPR)
async def find_person(store: SQLStore, ws: Workspace, ident: str) -> Contact | None:
    """A contact by its id, else a user's external id (user_id), else an email, else a visitor id."""
    return (await store.find_contact(ws, contact_id=ident)
            or await store.find_contact(ws, user_id=ident)
            or (await store.contact_by_email(ws, ident) if "@" in ident else None)
            or await store.find_contact(ws, visitor_id=ident))


async def export_contact(store: SQLStore, ws: Workspace, ident: str) -> dict[str, Any] | None:
    contact = await find_person(store, ws, ident)
    return await store.contact_export(ws, contact.id) if contact else None


async def delete_contact(store: SQLStore, ws: Workspace, ident: str) -> dict[str, Any] | None:
    contact = await find_person(store, ws, ident)
    return await store.delete_contact(ws, contact.id) if contact else None
