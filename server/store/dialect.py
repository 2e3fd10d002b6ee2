"""What differs between SQLite and PostgreSQL, in one place: locks, planner settings, JSON, unique violations,
the smaller / larger of two values.

Also notifications to other processes.

The rest of the store writes its SQL once (``?`` placeholders, ``ON CONFLICT``, ``RETURNING``: both backends
take them) and asks its connection's ``dialect`` for these few pieces, never which backend it runs on. One
object per backend: :data:`SQLITE` (``db.py``) and :data:`POSTGRES` (``postgres_db.py``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from .sql_helpers import placeholders

if TYPE_CHECKING:
    from .db import Conn

Sql = tuple[str, tuple[Any, ...]]  # a SQL expression and the arguments of its ``?`` placeholders


class Dialect(Protocol):
    name: str
    # A commit can wake the other processes sharing the database (PostgreSQL's NOTIFY, heard by LISTEN); with
    # SQLite only the process that wrote knows (the store's on_commit hooks).
    notifies_other_processes: bool
    # Rows can be streamed in with COPY (PostgreSQL): the importer's writer copies a chunk into a staging table
    # instead of one INSERT per row (store/import_writer.py).
    bulk_copy: bool
    # Other transactions write at the same time (PostgreSQL), so a read-then-write of a row needs it locked
    # (``SELECT … FOR UPDATE``); SQLite's single writer has nothing to lock (and no FOR UPDATE).
    concurrent_writers: bool

    async def lock(self, conn: Conn, *key: int) -> None:
        """Hold the lock named by ``key`` (one or two integers) until the transaction ends, across processes."""
        ...

    async def without_jit(self, conn: Conn) -> None:
        """No JIT compiling on this (read) connection: for queries whose estimated cost is far above their
        actual one."""
        ...

    async def notify(self, conn: Conn, channel: str, payload: str) -> None:
        """Tell the other processes' listeners on ``channel``, at COMMIT."""
        ...

    async def refresh_statistics(self, conn: Conn, table: str) -> None:
        """After a bulk write into ``table``: the planner's statistics made again from it."""
        ...

    def email_domain(self, email: str) -> str:
        """The part of the ``email`` column after its ``@``."""
        ...

    def json_type(self, document: str, key: str) -> Sql:
        """The JSON type of the top-level ``key`` of the JSON text column ``document``; NULL when missing.
        Compared only with ``'null'`` by callers (its other values differ between the backends)."""
        ...

    def json_value(self, document: str, key: str, kind: str) -> Sql:
        """The value of ``key`` in ``document`` when its JSON type is ``kind`` (string | number | boolean),
        else NULL; a boolean reads as ``'true'`` or ``'false'``."""
        ...

    def is_unique_violation(self, exc: BaseException) -> bool:
        """Whether a write failed because another one filled a unique index first."""
        ...

    def least(self, a: str, b: str) -> str:
        """The smaller of two SQL expressions (SQLite's scalar ``min``, PostgreSQL's ``LEAST``)."""
        ...

    def greatest(self, a: str, b: str) -> str:
        """The larger of two SQL expressions (SQLite's scalar ``max``, PostgreSQL's ``GREATEST``)."""
        ...

    async def copy_rows(self, conn: Conn, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        """Stream ``rows`` into ``table`` with COPY; only where ``bulk_copy`` is true."""
        ...


def _json_path(key: str) -> str:
    return '$."' + key + '"'


class SQLiteDialect:
    """SQLite: one writer at a time, so locks are already held; JSON through the json1 functions."""

    name = "sqlite"
    notifies_other_processes = False
    bulk_copy = False
    concurrent_writers = False

    async def lock(self, conn: Conn, *key: int) -> None:
        """Nothing to take: SQLite's single writer already serialises every write transaction."""

    async def without_jit(self, conn: Conn) -> None:
        """SQLite compiles nothing."""

    async def notify(self, conn: Conn, channel: str, payload: str) -> None:
        """No other process listens: the writing process's own on_commit hooks tell its live view."""

    async def refresh_statistics(self, conn: Conn, table: str) -> None:
        """Nothing to do: SQLite plans every statement afresh, without statistics unless ANALYZE made some."""

    def email_domain(self, email: str) -> str:
        return f"substr({email}, instr({email}, '@') + 1)"

    def json_type(self, document: str, key: str) -> Sql:
        return f"json_type({document}, ?)", (_json_path(key),)

    def json_value(self, document: str, key: str, kind: str) -> Sql:
        typ, args = self.json_type(document, key)
        if kind == "boolean":  # json_type says 'true'/'false', as the value is compared
            return f"(CASE WHEN {typ} IN ('true', 'false') THEN {typ} END)", args * 2
        types = "('text')" if kind == "string" else "('integer', 'real')"
        return (f"(CASE WHEN {typ} IN {types} THEN json_extract({document}, ?) END)",
                (*args, _json_path(key)))

    def is_unique_violation(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.IntegrityError) and getattr(exc, "sqlite_errorname", "") in (
            "SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY")

    def least(self, a: str, b: str) -> str:
        return f"min({a}, {b})"

    def greatest(self, a: str, b: str) -> str:
        return f"max({a}, {b})"

    async def copy_rows(self, conn: Conn, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        raise NotImplementedError("SQLite has no COPY: callers check bulk_copy")


class PostgresDialect:
    """PostgreSQL: several processes write at once, so locks are advisory transaction locks; JSON as jsonb."""

    name = "postgres"
    notifies_other_processes = True
    bulk_copy = True
    concurrent_writers = True

    async def lock(self, conn: Conn, *key: int) -> None:
        marks = placeholders(len(key))
        await conn.execute(f"SELECT pg_advisory_xact_lock({marks})", key)

    async def without_jit(self, conn: Conn) -> None:
        """The per-contact probes and recursive CTEs make the planner's estimate large (it guesses ~10,000 rows
        per recursive CTE), which turns JIT on: ~400-500 ms of compiling for a query that then runs in a few
        ms. The pool resets the setting when the connection goes back (RESET ALL)."""
        await conn.execute("SET jit = off")

    async def notify(self, conn: Conn, channel: str, payload: str) -> None:
        await conn.execute("SELECT pg_notify(?, ?)", (channel, payload))

    async def refresh_statistics(self, conn: Conn, table: str) -> None:
        """``ANALYZE`` (a bounded sample of rows, inside the transaction: its own new rows count). A table
        filled in bulk and never analysed makes a cached generic plan go astray: the import's 500-id look-ups
        on contacts took 30–170 ms instead of 2 from their sixth run (docs/performance.md, "Import, per row")."""
        await conn.execute(f"ANALYZE {table}")

    def email_domain(self, email: str) -> str:
        return f"split_part({email}, '@', 2)"

    @staticmethod
    def _jsonb(document: str) -> str:
        """jsonb cannot hold "\\u0000", which JSON text may (a Messenger attribute with a NUL in it): one such
        contact must not make every custom-attribute search fail, so the escape becomes U+FFFD first.
        (Swapping one 6-character escape for another keeps the JSON valid even after an escaped backslash.)"""
        return f"CAST(replace({document}, '\\u0000', '\\ufffd') AS jsonb)"

    def json_type(self, document: str, key: str) -> Sql:
        return f"jsonb_typeof({self._jsonb(document)} -> CAST(? AS text))", (key,)

    def json_value(self, document: str, key: str, kind: str) -> Sql:
        """CASE (not AND) guarantees PostgreSQL never casts a string to a number."""
        typ, args = self.json_type(document, key)
        cast = {"string": "text", "number": "double precision", "boolean": "text"}[kind]
        return (f"(CASE WHEN {typ} = '{kind}' THEN CAST({self._jsonb(document)} ->> CAST(? AS text) AS {cast}) END)",
                (*args, key))

    def is_unique_violation(self, exc: BaseException) -> bool:
        from asyncpg.exceptions import UniqueViolationError  # asyncpg is installed wherever this dialect runs

        return isinstance(exc, UniqueViolationError)

    def least(self, a: str, b: str) -> str:
        return f"LEAST({a}, {b})"

    def greatest(self, a: str, b: str) -> str:
        return f"GREATEST({a}, {b})"

    async def copy_rows(self, conn: Conn, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        from .postgres_db import PostgresConn  # imports asyncpg: only where this dialect runs

        assert isinstance(conn, PostgresConn), "a PostgreSQL dialect on another backend's connection"
        await conn.conn.copy_records_to_table(table, columns=list(columns), records=rows)


SQLITE: Dialect = SQLiteDialect()
POSTGRES: Dialect = PostgresDialect()
