"""Historical import (``trailmark import``) and the GDPR pair (``trailmark export`` / ``delete-contact``).

Import steps: ``read_jsonl`` / ``read_csv`` (file → raw rows) → ``read_row`` (contact identifier,
``created_at``, then the same name and metadata rules as every other path, through
``import_validation.RowValidator``: ``ingest.validate_event``'s rules with each metadata key set planned once),
cut into chunks of ``chunk_rows`` valid rows (``validated_batches``) → per chunk, ``resolve_contacts``
(bulk look-ups, users created for unknown ``user_id``s unless told not to) → ``store_import_chunk``
(``store/import_writer.py``): the chunk's events grouped by contact, in one transaction of a few set-based
statements (``COPY`` and one ``INSERT … SELECT`` on PostgreSQL).

Where the time goes (measured, ``bench/import_speed.py``; docs/performance.md): storing is SQLite's insert
into ``events`` and its indexes and the commit, in the writer thread; reading and validating is Python
(JSON parsing a third, the metadata rules most of the rest). Both in one process barely overlap: the writer
takes the GIL back after every SQLite step, and while the main thread validates, each take waits for the
interpreter's switch interval (for the same reason, this process does no other work while the writer
stores: preparing the next chunk meanwhile measured slower). So a file of more than ``WORKER_MIN_BYTES`` is
read and validated in a separate process (``_worker_main``), which sends chunk N+1 while this process
stores chunk N; standard input and small files are validated in-process.

Idempotence: the dedupe key is Intercom's event identity, ``(contact, event name, created_at)``, the very
key ``POST /events`` uses (``r:<contact id>:<name>:<created_at>``). So re-running an import stores nothing
new, and an import overlapping events already sent through the REST API does not double them. As with
Intercom, two events of one contact with the same name in the same second are one event.
"""

from __future__ import annotations

import asyncio
import csv
import gc
import io
import json
import logging
import math
import os
import pickle
import re
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any, BinaryIO, cast

from .domain_errors import DomainError
from .errors import ApiError
from .import_validation import RowValidator, ValidEvent
from .metadata import CONTROL_CHARS, MAX_NUMBER
from .store import SQLStore
from .store.import_writer import ImportEvent, store_import_chunk
from .store.models import Workspace
from .strict_json import loads as loads_strict

# Valid rows stored per transaction: larger chunks mean fuller requests per contact and fewer commits, up to
# a point where the pipeline fills slower and memory grows (measured: docs/performance.md, "Design
# measurements"). One such transaction holds SQLite's write lock for about a second.
CHUNK_ROWS = 20_000
# The reader process's first batch: the writer waits for it (measured: a full first chunk kept the writer
# idle for the first tenth of a 100,000-row import).
FIRST_CHUNK_ROWS = 2_000
WORKER_MIN_BYTES = 4 << 20  # a file this large (~20,000 rows) is validated in a separate process
log = logging.getLogger("trailmark.import")
SOURCE = "import"
IDENTIFIERS = ("id", "intercom_user_id", "user_id", "email")  # REST's precedence: contact id, user_id, email
RESERVED_COLUMNS = frozenset({"event_name", "created_at", "metadata", *IDENTIFIERS})
_INT = re.compile(r"^-?(0|[1-9][0-9]*)$")
_FLOAT = re.compile(r"^-?(0|[1-9][0-9]*)\.[0-9]+$")


class RowError(Exception):
    """A row that cannot be imported; the message is the (groupable) reason."""


# A valid row, as validated_batches hands it on (a plain tuple: it crosses from the worker process):
# (line, identifier kind, identifier value, event name, created_at, metadata and metadata types as JSON text
# (None when empty), dropped).
ValidRow = tuple[int, str, str, str, int, str | None, str | None, list[dict[str, str]]]


@dataclass
class Batch:
    """A chunk of read rows: how many, the valid ones, the refused ones (line, reason), and how far into
    the file reading got (bytes; -1 when unknown, as on standard input)."""

    rows: int
    valid: list[ValidRow]
    refused: list[tuple[int, str]]
    position: int = -1

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
        real = float(text)
        return real if math.isfinite(real) else text  # 1e999 overflows: kept as the text it was
    if text.startswith("{") and text.endswith("}"):
        try:
            value = loads_strict(text)
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
            yield number, loads_strict(line)
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
                metadata = loads_strict(row["metadata"])
            except ValueError:
                yield number, RowError("metadata column is not a JSON object")
                continue
        for i, h in extra:
            if cells[i]:  # (an empty cell is absent: skipped here, without the call)
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
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    raise RowError("created_at must be unix seconds or an ISO-8601 date")


def read_row(raw: Any, validate: RowValidator) -> tuple[tuple[str, str], ValidEvent]:
    """One row → ``(identifier, event)``; RowError with the reason otherwise."""
    if isinstance(raw, RowError):
        raise raw
    if not isinstance(raw, dict):
        raise RowError("row must be a JSON object")
    ident = None
    for kind in IDENTIFIERS:
        value = raw.get(kind)
        if value is None or isinstance(value, bool):
            continue
        text = str(value)
        stripped = text.strip()
        if stripped:
            if not isinstance(value, (str, int)):
                raise RowError(f"{kind} must be a string")
            if CONTROL_CHARS.search(text):
                raise RowError(f"{kind} must not contain control characters")
            ident = ("id" if kind == "intercom_user_id" else kind, stripped)
            break
    if ident is None:
        raise RowError("row needs a contact identifier: id, user_id or email")
    created_at = read_created_at(raw.get("created_at"))
    if created_at > 10**11:
        raise RowError("created_at must be in seconds, not milliseconds")
    try:
        event = validate(raw.get("event_name"), int(created_at), raw.get("metadata"))
    except ApiError as err:
        raise RowError(err.errors[0]["message"]) from None
    return ident, event


def validated_batches(rows: Iterator[tuple[int, Any]], *, strict: bool, now: int, chunk_rows: int,
                      position: Callable[[], int] | None = None, first_rows: int = 0) -> Iterator[Batch]:
    """Validate ``(line, raw row)`` pairs; a batch every ``chunk_rows`` valid rows (the first one after
    ``first_rows``, if given), and one at the end."""
    # The live rules, with each key set planned once; the metadata comes out as the JSON text the events
    # table stores, made here: in the reader process, beside the writer rather than in its way.
    validate = RowValidator(strict=strict, now=now)
    valid: list[ValidRow] = []
    refused: list[tuple[int, str]] = []
    count = 0
    limit = first_rows or chunk_rows
    for line, raw in rows:
        count += 1
        try:
            (kind, value), (name, created_at, metadata, types, dropped) = read_row(raw, validate)
        except RowError as err:
            refused.append((line, str(err)))
            continue
        valid.append((line, kind, value, name, created_at, metadata, types, dropped))
        if len(valid) >= limit:
            yield Batch(count, valid, refused, position() if position else -1)
            valid, refused, count, limit = [], [], 0, chunk_rows
    if count:
        yield Batch(count, valid, refused, position() if position else -1)


def _worker_main(argv: list[str]) -> None:
    """The reader process (``python -c``, see ``_start_worker``): read and validate a file, write each
    Batch (pickled) to the pipe ``argv[0]``, then None, or the exception that stopped the reading (the
    importer raises it, as the in-process path would). ``argv[1]``: the arguments, as JSON."""
    gc.disable()  # as in import_batches: this process only makes short-lived, acyclic objects
    fd, args = int(argv[0]), json.loads(argv[1])
    out = os.fdopen(fd, "wb")

    def send(item: Any) -> None:
        data = pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)  # whole, or nothing written
        out.write(data)
        out.flush()

    try:
        try:
            with open(args["path"], encoding="utf-8-sig", newline="") as stream:
                binary = cast(BinaryIO, stream.buffer)  # text-mode open() reads through a BufferedReader
                reader = read_csv(stream) if args["format"] == "csv" else read_jsonl(stream)
                # A small first batch: the importer starts storing while the rest is read.
                for batch in validated_batches(reader, strict=args["strict"], now=args["now"],
                                               chunk_rows=args["chunk_rows"], position=binary.tell,
                                               first_rows=min(FIRST_CHUNK_ROWS, args["chunk_rows"])):
                    send(batch)
            send(None)
        except BrokenPipeError:
            raise
        except Exception as exc:
            try:
                send(exc)
            except BrokenPipeError:
                raise
            except Exception:  # an exception that does not pickle
                send(RuntimeError(f"{type(exc).__name__}: {exc}"))
        out.close()
    except BrokenPipeError:  # the importer stopped (it failed, or was interrupted): nobody to tell
        os._exit(0)


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


async def store_chunk(store: SQLStore, ws: Workspace, rows: list[ValidRow], summary: ImportSummary,
                      cache: dict[tuple[str, str], str | None], *, create_users: bool) -> None:
    """Store one chunk of valid rows, grouped by contact, in one transaction."""
    summary.created_users += await resolve_contacts(store, ws, {(r[1], r[2]) for r in rows}, cache,
                                                    create_users=create_users)
    refused: list[tuple[int, str]] = []
    per_contact: dict[str, list[ValidRow]] = {}
    for row in rows:
        contact_id = cache.get((row[1], row[2]))
        if contact_id is None:
            refused.append((row[0], _NOT_FOUND[row[1]]))
            continue
        group = per_contact.get(contact_id)
        if group is None:
            per_contact[contact_id] = [row]
        else:
            group.append(row)
    # In contact id order: the events' indexes lead with the contact (the dedupe key too), so SQLite
    # inserts into neighbouring pages (measured: a quarter less writer time than file order). Each
    # contact's events keep the file's order, so their ids do too.
    contact_ids = sorted(per_contact)
    # Intercom's event identity, as POST /events keys it.
    outcomes = await store_import_chunk(store, ws.id, SOURCE, [
        (cid, [ImportEvent(name, created_at, f"r:{cid}:{name}:{created_at}", metadata, types, dropped)
               for _, _, _, name, created_at, metadata, types, dropped in per_contact[cid]])
        for cid in contact_ids])
    accepted = duplicate = 0
    dropped_metadata = summary.dropped_metadata
    for cid, outcome in zip(contact_ids, outcomes, strict=True):
        group = per_contact[cid]
        if isinstance(outcome, DomainError):
            refused += [(row[0], outcome.message) for row in group]
            continue
        if isinstance(outcome, BaseException):
            raise outcome
        for row, result in zip(group, outcome, strict=True):
            status = result.status
            if status == "accepted":
                accepted += 1
                for d in row[7]:
                    dropped_metadata[(d["key"], d["reason"])] += 1
            elif status == "duplicate":
                duplicate += 1
            else:
                refused.append((row[0], result.reason or status))
    summary.accepted += accepted
    summary.duplicate += duplicate
    for line, reason in sorted(refused):
        summary.reject(line, reason)


async def import_batches(store: SQLStore, ws: Workspace, next_batch: Callable[[], Awaitable[Batch | None]], *,
                         create_users: bool = True, prefetch: bool = False,
                         progress: Callable[[ImportSummary, int], None] | None = None) -> ImportSummary:
    """Store the batches ``next_batch`` returns until it returns None. With ``prefetch`` (batches made
    elsewhere: the worker process), the next batch is awaited while this one is stored.
    ``progress(summary, position)`` after each batch."""
    summary = ImportSummary()
    started = time.perf_counter()
    cache: dict[tuple[str, str], str | None] = {}
    # The cyclic garbage collector is off while importing: the import makes millions of objects (rows,
    # metadata, requests) and keeps up to three chunks alive, which the collector would walk again and
    # again, in this thread and in the writer's (docs/performance.md, "Design measurements"). The
    # import's objects form no reference cycles (checked: a collection after 100,000 rows finds none),
    # so nothing piles up meanwhile; reference counting frees them as before.
    collecting = gc.isenabled()
    gc.disable()
    coming: asyncio.Future[Batch | None] | None = None
    try:
        coming = asyncio.ensure_future(next_batch())
        while (batch := await coming) is not None:
            if prefetch:
                coming = asyncio.ensure_future(next_batch())
            summary.rows += batch.rows
            for line, reason in batch.refused:
                summary.reject(line, reason)
            if batch.valid:
                await store_chunk(store, ws, batch.valid, summary, cache, create_users=create_users)
            if not prefetch:
                coming = asyncio.ensure_future(next_batch())
            if progress:
                progress(summary, batch.position)
    finally:
        if collecting:
            gc.enable()
        if coming is not None and not coming.done():
            coming.cancel()
    summary.seconds = time.perf_counter() - started
    if progress and not summary.rows:  # nothing read: still one report
        progress(summary, -1)
    return summary


def _one_at_a_time(batches: Iterator[Batch]) -> Callable[[], Awaitable[Batch | None]]:
    async def next_batch() -> Batch | None:
        return next(batches, None)

    return next_batch


async def import_rows(store: SQLStore, ws: Workspace, rows: Iterator[tuple[int, Any]], *,
                      create_users: bool = True, chunk_rows: int = CHUNK_ROWS,
                      progress: Callable[[ImportSummary], None] | None = None) -> ImportSummary:
    """Import ``(line, raw row)`` pairs, validated in this process; see the module docstring."""
    batches = validated_batches(rows, strict=ws.strict_metadata, now=int(time.time()), chunk_rows=chunk_rows)
    return await import_batches(store, ws, _one_at_a_time(batches), create_users=create_users,
                                progress=(lambda summary, _: progress(summary)) if progress else None)


def detect_format(path: str, fmt: str | None) -> str:
    if fmt:
        return fmt
    return "csv" if path.lower().endswith((".csv", ".csv.gz")) else "jsonl"


async def import_file(store: SQLStore, ws: Workspace, path: str, *, fmt: str | None = None,
                      create_users: bool = True, chunk_rows: int = CHUNK_ROWS,
                      progress: Callable[[int, int], None] | None = None) -> ImportSummary:
    """Import a JSONL or CSV file (``-``: standard input). ``progress(bytes read, total bytes)``."""
    fmt = detect_format(path, fmt)
    if fmt not in ("jsonl", "csv"):
        raise ValueError("format must be jsonl or csv")

    def report(summary: ImportSummary, position: int) -> None:
        if progress:
            progress(position if position >= 0 and total else summary.rows, total or summary.rows)

    now = int(time.time())
    if path != "-":
        total = os.path.getsize(path)
        if total >= WORKER_MIN_BYTES:
            started = _start_worker(path, fmt, strict=ws.strict_metadata, now=now, chunk_rows=chunk_rows)
            if started:
                return await _import_in_worker(store, ws, path, fmt, *started, now=now, chunk_rows=chunk_rows,
                                               create_users=create_users, progress=report)
        stream: IO[str] = open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115 (closed by `with stream` below)
    else:
        stream = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig", newline="")
        total = 0
    with stream:
        batches = _read_here(stream, fmt, strict=ws.strict_metadata, now=now, chunk_rows=chunk_rows,
                             positions=bool(total))
        return await import_batches(store, ws, _one_at_a_time(batches), create_users=create_users,
                                    progress=report)


def _read_here(stream: IO[str], fmt: str, *, strict: bool, now: int, chunk_rows: int,
               positions: bool) -> Iterator[Batch]:
    binary = getattr(stream, "buffer", None)
    reader = read_csv(stream) if fmt == "csv" else read_jsonl(stream)
    return validated_batches(reader, strict=strict, now=now, chunk_rows=chunk_rows,
                             position=binary.tell if binary is not None and positions else None)


def _start_worker(path: str, fmt: str, *, strict: bool, now: int,
                  chunk_rows: int) -> tuple[subprocess.Popen[bytes], IO[bytes]] | None:
    """Start the reader process (this interpreter, this copy of the package, ``_worker_main``); None
    where it cannot run (no POSIX pipes to hand over, no interpreter to start)."""
    if os.name != "posix" or not sys.executable or getattr(sys, "frozen", False):
        return None
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = (f"import sys; sys.path.insert(0, sys.argv[1]); from {__name__} import _worker_main; "
            "_worker_main(sys.argv[2:])")
    args = json.dumps({"path": path, "format": fmt, "strict": strict, "now": now, "chunk_rows": chunk_rows})
    read_fd, write_fd = os.pipe()
    try:
        # Its own session: Ctrl-C reaches only the importer, which then ends it.
        worker = subprocess.Popen([sys.executable, "-c", code, root, str(write_fd), args], pass_fds=(write_fd,),
                                  stdin=subprocess.DEVNULL, start_new_session=True)
    except OSError:
        os.close(read_fd)
        return None
    finally:
        os.close(write_fd)
    return worker, os.fdopen(read_fd, "rb")


class _ReaderGone(Exception):
    pass


async def _import_in_worker(store: SQLStore, ws: Workspace, path: str, fmt: str, worker: subprocess.Popen[bytes],
                            pipe: IO[bytes], *, now: int, chunk_rows: int, create_users: bool,
                            progress: Callable[[ImportSummary, int], None]) -> ImportSummary:
    """Store the batches the reader process sends; the next one is read (and unpickled, on a thread)
    while this one is stored. If the process ends before its first batch (it could not start this
    package), the file is read here instead."""
    loop = asyncio.get_running_loop()
    received = 0
    here: list[Callable[[], Awaitable[Batch | None]]] = []  # the fallback: batches read in this process
    stream: IO[str] | None = None

    def receive() -> Batch | None:
        try:
            item = pickle.load(pipe)
        except EOFError:
            raise _ReaderGone from None
        if isinstance(item, BaseException):
            raise item
        return item  # type: ignore[no-any-return]

    async def next_batch() -> Batch | None:
        nonlocal received, stream
        if here:
            return await here[0]()
        try:
            batch = await loop.run_in_executor(None, receive)
        except _ReaderGone:
            status = worker.wait()
            if received:
                raise RuntimeError(f"the import's reader process ended unexpectedly (status {status})") from None
            log.warning("the import's reader process could not run (status %s): reading %s in this process",
                        status, path)
            stream = open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115 (closed in the finally below)
            here.append(_one_at_a_time(_read_here(stream, fmt, strict=ws.strict_metadata, now=now,
                                                  chunk_rows=chunk_rows, positions=True)))
            return await here[0]()
        received += 1
        return batch

    try:
        return await import_batches(store, ws, next_batch, create_users=create_users, prefetch=True,
                                    progress=progress)
    finally:  # ending the worker also ends a receive() still waiting on the pipe
        if worker.poll() is None:
            worker.terminate()
        worker.wait()
        pipe.close()
        if stream is not None:
            stream.close()
