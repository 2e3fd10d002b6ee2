"""The thin database layer under the store: connections, transactions, and SQLite's single writer.

The store's SQL is written once, with ``?`` placeholders, and runs on both backends:
:class:`SQLiteDatabase` (aiosqlite) and ``PostgresDatabase`` (asyncpg, in ``postgres_db.py``, imported
only for ``postgresql://`` URLs). Both hand out :class:`Conn` objects with the same four methods.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiosqlite

from .dialect import SQLITE, Dialect
from .schema import MIGRATIONS, PYTHON_STEPS

log = logging.getLogger("trailmark.store")

Row = Any  # sqlite3.Row or asyncpg.Record: both index by column name
# Coroutines (async defs), not any awaitable: the SQLite writer thread runs them with run_to_completion.
Job = Callable[["Conn"], Coroutine[Any, Any, Any]]
GroupJob = Callable[["Conn", list[Any]], Coroutine[Any, Any, list[Any]]]


def in_run_order(groups: dict[GroupJob, list[Any]], ranks: dict[GroupJob, int]) -> list[tuple[GroupJob, list[Any]]]:
    """A batch's grouped jobs in a fixed order (lowest rank first), whatever order their requests came in:
    two batches in flight at once (PostgreSQL) then take their row locks in the same order, so they cannot
    deadlock; ingest ranks last, so it holds the hot counter rows for as short a time as possible."""
    return sorted(groups.items(), key=lambda pair: ranks.get(pair[0], 0))


class Conn(Protocol):
    dialect: Dialect  # what differs between the backends (dialect.py)

    async def fetch_all(self, sql: str, args: Sequence[Any] = ()) -> list[Row]: ...
    async def fetch_one(self, sql: str, args: Sequence[Any] = ()) -> Row | None: ...
    async def execute(self, sql: str, args: Sequence[Any] = ()) -> int: ...
    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...


class Database(Protocol):
    dialect: Dialect

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    def read(self) -> contextlib.AbstractAsyncContextManager[Conn]: ...
    async def write(self, job: Job) -> Any: ...
    async def write_grouped(self, group: GroupJob, item: Any, rank: int = 0) -> Any: ...


class SQLiteConn:
    """A reader connection: aiosqlite, one thread hop per statement (``execute_fetchall``)."""

    dialect: Dialect = SQLITE

    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db

    async def fetch_all(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        return list(await self.db.execute_fetchall(sql, tuple(args)))

    async def fetch_one(self, sql: str, args: Sequence[Any] = ()) -> Row | None:
        rows = await self.db.execute_fetchall(sql, tuple(args))
        return next(iter(rows), None)

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        async with self.db.execute(sql, tuple(args)) as cur:
            return cur.rowcount

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self.db.executemany(sql, [tuple(r) for r in rows])


class SQLiteWriterConn:
    """The writer's connection: plain ``sqlite3``, used only on the writer thread.

    Its methods are coroutines so that write jobs are written once for both backends, but they never
    suspend: the writer thread drives a whole batch of jobs to completion in one call (see
    :func:`run_to_completion`), instead of one event-loop round trip per statement.
    """

    dialect: Dialect = SQLITE

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    async def fetch_all(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        cur = self.db.execute(sql, tuple(args))
        try:
            return cur.fetchall()
        finally:
            cur.close()

    async def fetch_one(self, sql: str, args: Sequence[Any] = ()) -> Row | None:
        cur = self.db.execute(sql, tuple(args))
        try:
            return cur.fetchone()
        finally:
            cur.close()

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        cur = self.db.execute(sql, tuple(args))
        try:
            return cur.rowcount
        finally:
            cur.close()

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.db.executemany(sql, [tuple(r) for r in rows]).close()


def run_to_completion(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never suspends (a write job over :class:`SQLiteWriterConn`) on this thread."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise RuntimeError("a SQLite write job awaited something other than its connection")


@dataclass
class _Pending:
    future: asyncio.Future[Any]
    job: Job | None = None
    group: GroupJob | None = None
    item: Any = None
    rank: int = 0


@dataclass
class SQLiteDatabase:
    """SQLite in WAL mode: reads on a small aiosqlite pool, every write through one writer thread.

    Durability: ``synchronous=FULL``. In WAL mode FULL fsyncs the WAL on every commit, so a transaction
    that committed survives an application crash *and* a power loss or OS crash. (NORMAL would only
    promise the former.) Group commit pays that fsync once per batch, not once per request, and the
    server answers 2xx only after the commit returned.

    The writer: a task collects whatever writes are queued (up to ``max_batch``) and hands the whole
    batch to one dedicated thread, which runs it as one transaction on its own ``sqlite3`` connection
    and returns every job's outcome. One thread hop per batch, where aiosqlite would make one (or three)
    per statement, each waiting for a turn of a busy event loop.
    """

    path: str
    readers: int = 2
    max_batch: int = 512
    dialect: Dialect = SQLITE
    _queue: asyncio.Queue[_Pending | None] = field(default_factory=asyncio.Queue)
    _pool: asyncio.Queue[SQLiteConn] = field(default_factory=asyncio.Queue)
    _closed: bool = False
    _writer: SQLiteWriterConn | None = None
    _thread: ThreadPoolExecutor | None = None
    _task: asyncio.Task[None] | None = None
    _all: list[aiosqlite.Connection] = field(default_factory=list)

    async def _connect(self) -> aiosqlite.Connection:
        db = await aiosqlite.connect(self.path, isolation_level=None)
        db.row_factory = sqlite3.Row
        await db.execute("PRAGMA busy_timeout = 5000")
        await db.execute("PRAGMA foreign_keys = ON")
        self._all.append(db)
        return db

    def _open_writer(self) -> SQLiteWriterConn:
        create_private_file(self.path)  # before SQLite makes it: its -wal and -shm files take the same mode
        db = sqlite3.connect(self.path, isolation_level=None)  # created on, and used only by, the writer thread
        db.row_factory = sqlite3.Row
        for pragma in ("busy_timeout = 5000", "foreign_keys = ON", "journal_mode = WAL", "synchronous = FULL"):
            db.execute(f"PRAGMA {pragma}").close()
        conn = SQLiteWriterConn(db)
        run_to_completion(self._migrate(conn))
        return conn

    async def _on_writer(self, fn: Callable[..., Any], *args: Any) -> Any:
        assert self._thread is not None
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    async def open(self) -> None:
        self._closed = False
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="trailmark-sqlite-writer")
        self._writer = await self._on_writer(self._open_writer)
        for _ in range(self.readers):
            self._pool.put_nowait(SQLiteConn(await self._connect()))
        self._task = asyncio.create_task(self._write_loop(), name="trailmark-sqlite-writer")

    async def _migrate(self, conn: Conn) -> None:
        await conn.execute("BEGIN IMMEDIATE")
        try:
            await conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations "
                               "(version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)")
            row = await conn.fetch_one("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations")
            current = row["v"] if row else 0
            for version, sqlite_sql, _ in MIGRATIONS:
                if version > current:
                    for statement in _split_sql(sqlite_sql):
                        await conn.execute(statement)
                    if version in PYTHON_STEPS:
                        await PYTHON_STEPS[version](conn)
                    await conn.execute("INSERT INTO schema_migrations VALUES (?, strftime('%s','now'))",
                                       (version,))
                    log.info("applied schema migration %s", version)
            await conn.execute("COMMIT")
        except BaseException:
            await conn.execute("ROLLBACK")
            raise

    async def close(self) -> None:
        """Stop taking writes, finish what is queued (its callers get their answers), then close."""
        self._closed = True
        if self._task and not self._task.done():
            self._queue.put_nowait(None)  # after everything already queued
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None
        if self._thread:
            if self._writer:
                await self._on_writer(self._writer.db.close)
                self._writer = None
            self._thread.shutdown(wait=True)
            self._thread = None
        for db in self._all:
            await db.close()
        self._all.clear()

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[Conn]:
        conn = await self._pool.get()
        try:
            yield conn
        finally:
            self._pool.put_nowait(conn)

    def _enqueue(self, pending: _Pending) -> None:
        if self._closed or self._task is None or self._task.done():
            raise RuntimeError("the SQLite store is closed")
        self._queue.put_nowait(pending)

    async def write(self, job: Job) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._enqueue(_Pending(future, job=job))
        return await future

    async def write_grouped(self, group: GroupJob, item: Any, rank: int = 0) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._enqueue(_Pending(future, group=group, item=item, rank=rank))
        return await future

    async def _write_loop(self) -> None:
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.max_batch and not self._queue.empty():
                pending = self._queue.get_nowait()
                if pending is None:  # close(): store this last batch, then stop
                    stopping = True
                    break
                batch.append(pending)
            try:
                outcomes = await self._on_writer(self._run_batch, batch)
            except Exception as exc:  # the writer thread itself failed: every caller hears of it
                log.exception("write batch failed")
                outcomes = [(False, exc)] * len(batch)
            for pending, (ok, value) in zip(batch, outcomes, strict=True):
                if pending.future.done():  # its caller went away (a cancelled request)
                    continue
                if ok:
                    pending.future.set_result(value)
                else:
                    pending.future.set_exception(value)

    def _run_batch(self, batch: list[_Pending]) -> list[tuple[bool, Any]]:
        """On the writer thread: one transaction for the whole batch (group commit).

        Returns each job's outcome (ok, value or exception); the loop resolves the callers' futures only
        after COMMIT returned. A job that raises is rolled back to its savepoint alone; a batch whose
        transaction fails as a whole is retried one job at a time, so one request never fails its neighbours.
        """
        conn = self._writer
        assert conn is not None
        outcomes: dict[int, tuple[bool, Any]] = {}
        try:
            conn.db.execute("BEGIN IMMEDIATE").close()
            groups: dict[GroupJob, list[Any]] = {}
            ranks: dict[GroupJob, int] = {}
            for i, pending in enumerate(batch):
                if pending.group is not None:
                    groups.setdefault(pending.group, []).append(i)
                    ranks[pending.group] = pending.rank
                else:
                    outcomes[i] = _in_savepoint(conn, pending.job)
            for group, members in in_run_order(groups, ranks):
                # A grouped job returns one outcome per item (a value or an exception) and must not
                # leave partial writes behind for an item it refuses.
                results = run_to_completion(group(conn, [batch[i].item for i in members]))
                for i, result in zip(members, results, strict=True):
                    outcomes[i] = (not isinstance(result, BaseException), result)
            conn.db.execute("COMMIT").close()
        except BaseException as caught:  # a job raising CancelledError & co. must not leave the transaction open
            with contextlib.suppress(Exception):
                conn.db.execute("ROLLBACK").close()
            exc = caught if isinstance(caught, Exception) else RuntimeError(f"write job raised {caught!r}")
            if len(batch) > 1:
                return [self._run_batch([pending])[0] for pending in batch]
            log.error("write failed", exc_info=exc)
            return [(False, exc)]
        return [outcomes[i] for i in range(len(batch))]


def _in_savepoint(conn: SQLiteWriterConn, job: Job | None) -> tuple[bool, Any]:
    assert job is not None
    conn.db.execute("SAVEPOINT job").close()
    try:
        result = run_to_completion(job(conn))
    except BaseException as exc:  # CancelledError & co. too: the writer thread must outlive any job
        conn.db.execute("ROLLBACK TO job").close()
        conn.db.execute("RELEASE job").close()
        return False, exc if isinstance(exc, Exception) else RuntimeError(f"write job raised {exc!r}")
    conn.db.execute("RELEASE job").close()
    return True, result


def _split_sql(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def create_private_file(path: str) -> None:
    """Create ``path`` readable by its owner only (0600), unless it exists or is in-memory. The database holds
    every visitor's events and the workspaces' signing keys."""
    if path in ("", ":memory:") or path.startswith("file:") or os.path.exists(path):
        return
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def sqlite_path(url: str) -> str:
    """``sqlite:///abs/path``, ``sqlite:relative``, or a bare path → a file path."""
    if url.startswith("sqlite:///"):  # sqlite:///rel.db or sqlite:////abs/path.db (SQLAlchemy's form)
        return url[len("sqlite:///"):]
    if url.startswith("sqlite://"):
        return url[len("sqlite://"):]
    if url.startswith("sqlite:"):
        return url[len("sqlite:"):]
    return url
