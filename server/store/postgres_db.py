"""The PostgreSQL backend (asyncpg): the same :class:`~trailmark.store.db.Database` protocol as SQLite's.

Imported only for ``postgresql://`` URLs, so asyncpg stays optional (``pip install trailmark[postgres]``).

Several processes (``--workers N``, several machines) may share one database, so nothing here relies on
in-process locks: uniqueness comes from the schema's unique indexes, the 120-event-name limit and the
lifecycle writes take transaction-scoped advisory locks (``sql_store``), and migrations run under an
advisory lock, one transaction per version. Transactions run at READ COMMITTED; a transaction that loses
a race the database reports (deadlock, serialization failure, a unique index another process filled
first) is run again from the start, a bounded number of times.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from ..domain_errors import InvalidInput
from .db import Conn, GroupJob, Job, Row, in_run_order
from .dialect import POSTGRES, Dialect
from .schema import MIGRATIONS, PYTHON_STEPS

log = logging.getLogger("trailmark.store")

# Advisory lock keys (one-key space; the store's parts use the two-key space with (7301 names | 7302 lifecycle |
# 7303 purge, workspace id)).
MIGRATION_LOCK = 7300

# Errors after which the whole transaction is simply run again: they mean "another transaction got
# there first", and a fresh attempt (a fresh READ COMMITTED snapshot) sees what it did. A foreign-key
# violation is one too: a contact erased (committed) after this transaction looked it up and before its events
# went in; the fresh attempt no longer finds it and refuses that request alone (an answer, not a 500).
_RETRYABLE = (asyncpg.exceptions.DeadlockDetectedError, asyncpg.exceptions.SerializationError,
              asyncpg.exceptions.UniqueViolationError, asyncpg.exceptions.ForeignKeyViolationError)
_ATTEMPTS = 4


@functools.lru_cache(maxsize=2048)
def to_dollar(sql: str) -> str:
    """``?`` placeholders → ``$1..$n``, leaving quoted strings, quoted identifiers and comments alone."""
    out: list[str] = []
    n = 0
    i, size = 0, len(sql)
    while i < size:
        ch = sql[i]
        if ch in ("'", '"'):
            end = i + 1
            while end < size:
                if sql[end] == ch:
                    if end + 1 < size and sql[end + 1] == ch:  # doubled quote inside the literal
                        end += 2
                        continue
                    break
                end += 1
            out.append(sql[i:end + 1])
            i = end + 1
        elif ch == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            end = size if end < 0 else end
            out.append(sql[i:end])
            i = end
        elif ch == "?":
            n += 1
            out.append(f"${n}")
            i += 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _rowcount(status: str) -> int:
    """asyncpg's command tag (``UPDATE 3``, ``INSERT 0 1``, ``DELETE 0``, ``SELECT 1``) → affected rows."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


def redact(url: str) -> str:
    """The URL with its password replaced by ``***`` (for repr and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


class PostgresConn:
    """One asyncpg connection behind the store's four methods; rows are ``asyncpg.Record`` (index by name)."""

    dialect: Dialect = POSTGRES

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def fetch_all(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        with _text_errors_as_400():
            return list(await self.conn.fetch(to_dollar(sql), *args))

    async def fetch_one(self, sql: str, args: Sequence[Any] = ()) -> Row | None:
        with _text_errors_as_400():
            return await self.conn.fetchrow(to_dollar(sql), *args)

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        with _text_errors_as_400():
            return _rowcount(await self.conn.execute(to_dollar(sql), *args))

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with _text_errors_as_400():
            await self.conn.executemany(to_dollar(sql), [tuple(r) for r in rows])


@contextlib.contextmanager
def _text_errors_as_400() -> Iterator[None]:
    """PostgreSQL's text type cannot hold NUL (SQLite's can): text from a client that PostgreSQL refuses is
    the client's error, answered 400 like any other invalid parameter, never a 500."""
    try:
        yield
    except (asyncpg.exceptions.CharacterNotInRepertoireError,
            asyncpg.exceptions.UntranslatableCharacterError) as exc:
        raise InvalidInput("Text must not contain NUL characters") from exc


@dataclass
class _Waiting:
    group: GroupJob
    item: Any
    future: asyncio.Future[Any]
    rank: int = 0


class PostgresDatabase:
    """An asyncpg pool. ``write`` runs a job in its own transaction; ``write_grouped`` group-commits.

    Group commit (why, measured): the ingest path (``_append_group``) costs about six statements and a
    WAL flush per transaction, and every transaction updates the same hot rows (``event_names``
    counters, ``event_daily_counts``), whose row locks are held until COMMIT. One transaction per
    request therefore serialises on those rows and pays a flush each; batching the requests that arrive
    together into one transaction pays both once per batch: several times the events per second under
    many concurrent requests, the same for one at a time (docs/performance.md, "Design measurements").
    Up to ``batches`` (2) batches run at once on separate pool connections (1 and 4 measured slower), so a
    request waits for at most one batch ahead of it. If a batch fails for a reason other than a lost race, each of its
    requests is run again on its own, so one bad request cannot fail its neighbours.
    """

    dialect: Dialect = POSTGRES

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10, group_commit: bool = True,
                 batches: int = 2, max_batch: int = 512) -> None:
        self.url = url
        self.min_size, self.max_size = min_size, max_size
        self.group_commit = group_commit
        self.max_batch = max_batch
        self._pool: asyncpg.Pool | None = None
        self._queue: asyncio.Queue[_Waiting] = asyncio.Queue()
        self._slots = asyncio.Semaphore(batches)
        self._loop_task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"PostgresDatabase(url={redact(self.url)!r})"

    # ------------------------------------------------------------ life cycle
    async def open(self) -> None:
        self._pool = await asyncpg.create_pool(self.url, min_size=self.min_size, max_size=self.max_size)
        try:
            await self._migrate()
        except BaseException:
            await self._pool.close()
            raise
        if self.group_commit:
            self._loop_task = asyncio.create_task(self._batch_loop(), name="trailmark-postgres-batcher")

    async def close(self) -> None:
        if self._loop_task:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        while not self._queue.empty():
            waiting = self._queue.get_nowait()
            if not waiting.future.done():
                waiting.future.set_exception(RuntimeError("the store was closed"))
        if self._pool:
            await self._pool.close()
            self._pool = None

    async def _migrate(self) -> None:
        """Apply pending migrations, one transaction per version, each under an advisory lock, so
        processes starting at once apply every version exactly once (the others wait, then skip it)."""
        assert self._pool is not None
        async with self._pool.acquire() as conn:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
                await conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations "
                                   "(version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)")
            applied = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            for version, _, postgres_sql in MIGRATIONS:
                if version in applied:
                    continue
                async with conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
                    if await conn.fetchval("SELECT 1 FROM schema_migrations WHERE version = $1", version):
                        continue  # another process applied it while we waited for the lock
                    await conn.execute(postgres_sql)  # no arguments: the simple protocol runs the whole script
                    if version in PYTHON_STEPS:
                        await PYTHON_STEPS[version](PostgresConn(conn))
                    await conn.execute("INSERT INTO schema_migrations VALUES ($1, extract(epoch FROM now())::bigint)",
                                       version)
                    log.info("applied schema migration %s", version)

    # ------------------------------------------------------------ reads and writes
    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[Conn]:
        assert self._pool is not None, "the store is not open"
        async with self._pool.acquire() as conn:
            yield PostgresConn(conn)

    async def write(self, job: Job) -> Any:
        """Run ``job`` in its own transaction (again, from the start, if it lost a race)."""
        assert self._pool is not None, "the store is not open"
        for attempt in range(_ATTEMPTS):
            try:
                async with self._pool.acquire() as conn, conn.transaction():
                    return await job(PostgresConn(conn))
            except _RETRYABLE as exc:
                if attempt == _ATTEMPTS - 1:
                    raise
                log.info("transaction lost a race (%s); running it again", type(exc).__name__)
                await asyncio.sleep(random.uniform(0.001, 0.01) * (attempt + 1))
        raise AssertionError("unreachable")

    async def write_grouped(self, group: GroupJob, item: Any, rank: int = 0) -> Any:
        if not self.group_commit:
            return _unwrap((await self.write(lambda conn: group(conn, [item])))[0])
        if self._loop_task is None:
            raise RuntimeError("the store is not open")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Waiting(group, item, future, rank))
        return await future

    async def _batch_loop(self) -> None:
        """Wait for a request, then for a free batch slot; meanwhile more requests queue up and join the
        batch. The slot is released when the batch's transaction has finished."""
        while True:
            first = await self._queue.get()
            try:
                await self._slots.acquire()
            except asyncio.CancelledError:  # closing: don't leave the caller waiting forever
                if not first.future.done():
                    first.future.set_exception(RuntimeError("the store was closed"))
                raise
            batch = [first]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            task = asyncio.create_task(self._run_batch(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run_batch(self, batch: list[_Waiting]) -> None:
        try:
            await self._commit_batch(batch)
        finally:
            self._slots.release()

    async def _commit_batch(self, batch: list[_Waiting]) -> None:
        groups: dict[GroupJob, list[Any]] = {}
        ranks: dict[GroupJob, int] = {}
        for waiting in batch:
            groups.setdefault(waiting.group, []).append(waiting)
            ranks[waiting.group] = waiting.rank

        async def job(conn: Conn) -> list[tuple[_Waiting, Any]]:
            outcomes: list[tuple[_Waiting, Any]] = []
            for group, members in in_run_order(groups, ranks):
                results = await group(conn, [m.item for m in members])
                outcomes += zip(members, results, strict=True)
            return outcomes

        try:
            outcomes = await self.write(job)
        except Exception as exc:
            if len(batch) > 1:  # find the request that broke it: each one alone, in its own transaction
                await asyncio.gather(*(self._commit_batch([w]) for w in batch))
                return
            if not batch[0].future.done():
                batch[0].future.set_exception(exc)
            return
        except BaseException:
            for waiting in batch:
                if not waiting.future.done():
                    waiting.future.set_exception(RuntimeError("the store was closed"))
            raise
        for waiting, result in outcomes:  # futures resolve only after COMMIT
            if waiting.future.done():
                continue
            if isinstance(result, BaseException):
                waiting.future.set_exception(result)
            else:
                waiting.future.set_result(result)


def _unwrap(result: Any) -> Any:
    if isinstance(result, BaseException):
        raise result
    return result
