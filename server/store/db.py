"""The thin database layer under the store: connections, transactions, and SQLite's single writer.

The store's SQL is written once, with ``?`` placeholders, and runs on both backends:
:class:`SQLiteDatabase` (aiosqlite) and ``PostgresDatabase`` (asyncpg, in ``postgres_db.py``, imported
only for ``postgresql://`` URLs). Both hand out :class:`Conn` objects with the same four methods.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiosqlite

from .schema import MIGRATIONS

log = logging.getLogger("trailmark.store")

Row = Any  # sqlite3.Row or asyncpg.Record: both index by column name
Job = Callable[["Conn"], Awaitable[Any]]
GroupJob = Callable[["Conn", list[Any]], Awaitable[list[Any]]]


class Conn(Protocol):
    dialect: str

    async def fetch_all(self, sql: str, args: Sequence[Any] = ()) -> list[Row]: ...
    async def fetch_one(self, sql: str, args: Sequence[Any] = ()) -> Row | None: ...
    async def execute(self, sql: str, args: Sequence[Any] = ()) -> int: ...
    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...


class Database(Protocol):
    dialect: str

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    def read(self) -> contextlib.AbstractAsyncContextManager[Conn]: ...
    async def write(self, job: Job) -> Any: ...
    async def write_grouped(self, group: GroupJob, item: Any) -> Any: ...


class SQLiteConn:
    dialect = "sqlite"  # read by sql_store (PostgreSQL takes advisory locks where SQLite's one writer suffices)

    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db

    async def fetch_all(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        async with self.db.execute(sql, tuple(args)) as cur:
            return list(await cur.fetchall())

    async def fetch_one(self, sql: str, args: Sequence[Any] = ()) -> Row | None:
        async with self.db.execute(sql, tuple(args)) as cur:
            return await cur.fetchone()

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        async with self.db.execute(sql, tuple(args)) as cur:
            return cur.rowcount

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self.db.executemany(sql, [tuple(r) for r in rows])


@dataclass
class _Pending:
    future: asyncio.Future[Any]
    job: Job | None = None
    group: GroupJob | None = None
    item: Any = None


@dataclass
class SQLiteDatabase:
    """aiosqlite in WAL mode: reads on a small pool, every write through one writer task.

    Durability: ``synchronous=FULL``. In WAL mode FULL fsyncs the WAL on every commit, so a transaction
    that committed survives an application crash *and* a power loss or OS crash. (NORMAL would only
    promise the former.) Group commit pays that fsync once per batch, not once per request, and the
    server answers 2xx only after the commit returned.
    """

    path: str
    readers: int = 2
    max_batch: int = 512
    dialect: str = "sqlite"
    _queue: asyncio.Queue[_Pending] = field(default_factory=asyncio.Queue)
    _pool: asyncio.Queue[SQLiteConn] = field(default_factory=asyncio.Queue)
    _writer: SQLiteConn | None = None
    _task: asyncio.Task[None] | None = None
    _all: list[aiosqlite.Connection] = field(default_factory=list)

    async def _connect(self) -> aiosqlite.Connection:
        db = await aiosqlite.connect(self.path, isolation_level=None)
        db.row_factory = sqlite3.Row
        await db.execute("PRAGMA busy_timeout = 5000")
        await db.execute("PRAGMA foreign_keys = ON")
        self._all.append(db)
        return db

    async def open(self) -> None:
        writer = await self._connect()
        await writer.execute("PRAGMA journal_mode = WAL")
        await writer.execute("PRAGMA synchronous = FULL")
        self._writer = SQLiteConn(writer)
        await self._migrate(self._writer)
        for _ in range(self.readers):
            self._pool.put_nowait(SQLiteConn(await self._connect()))
        self._task = asyncio.create_task(self._write_loop(), name="trailmark-sqlite-writer")

    async def _migrate(self, conn: SQLiteConn) -> None:
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
                    await conn.execute("INSERT INTO schema_migrations VALUES (?, strftime('%s','now'))",
                                       (version,))
                    log.info("applied schema migration %s", version)
            await conn.execute("COMMIT")
        except BaseException:
            await conn.execute("ROLLBACK")
            raise

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
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

    async def write(self, job: Job) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(future, job=job))
        return await future

    async def write_grouped(self, group: GroupJob, item: Any) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(future, group=group, item=item))
        return await future

    async def _write_loop(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._run_batch(batch)

    async def _run_batch(self, batch: list[_Pending]) -> None:
        """One transaction for the whole batch (group commit); futures resolve only after COMMIT."""
        conn = self._writer
        assert conn is not None
        outcomes: list[tuple[_Pending, bool, Any]] = []
        try:
            await conn.execute("BEGIN IMMEDIATE")
            groups: dict[GroupJob, list[_Pending]] = {}
            for pending in batch:
                if pending.group is not None:
                    groups.setdefault(pending.group, []).append(pending)
                    continue
                outcomes.append((pending, *await _in_savepoint(conn, pending.job)))
            for group, members in groups.items():
                # A grouped job returns one outcome per item (a value or an exception) and must not
                # leave partial writes behind for an item it refuses.
                results = await group(conn, [m.item for m in members])
                for member, result in zip(members, results):
                    outcomes.append((member, not isinstance(result, BaseException), result))
            await conn.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(Exception):
                await conn.execute("ROLLBACK")
            if isinstance(exc, Exception) and len(batch) > 1:
                # One request must not fail its neighbours: run each alone to find the one that broke it.
                for pending in batch:
                    await self._run_batch([pending])
                return
            for pending in batch:  # the transaction is gone: its caller hears of it
                if not pending.future.done():
                    pending.future.set_exception(exc if isinstance(exc, Exception) else RuntimeError("writer stopped"))
            if not isinstance(exc, Exception):
                raise
            log.exception("write batch failed")
            return
        for pending, ok, value in outcomes:
            if pending.future.done():
                continue
            if ok:
                pending.future.set_result(value)
            else:
                pending.future.set_exception(value)


async def _in_savepoint(conn: SQLiteConn, job: Job | None) -> tuple[bool, Any]:
    assert job is not None
    await conn.execute("SAVEPOINT job")
    try:
        result = await job(conn)
    except Exception as exc:
        await conn.execute("ROLLBACK TO job")
        await conn.execute("RELEASE job")
        return False, exc
    await conn.execute("RELEASE job")
    return True, result


def _split_sql(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def sqlite_path(url: str) -> str:
    """``sqlite:///abs/path``, ``sqlite:relative``, or a bare path → a file path."""
    if url.startswith("sqlite:///"):  # sqlite:///rel.db or sqlite:////abs/path.db (SQLAlchemy's form)
        return url[len("sqlite:///"):]
    if url.startswith("sqlite://"):
        return url[len("sqlite://"):]
    if url.startswith("sqlite:"):
        return url[len("sqlite:"):]
    return url
