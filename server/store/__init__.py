"""Storage: pick a backend from the database URL; asyncpg is imported only for PostgreSQL."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from .db import SQLiteDatabase, sqlite_path
from .sql_store import SQLStore


def open_store(url: str) -> SQLStore:
    """``postgresql://…`` → PostgreSQL (asyncpg); anything else is a SQLite path or ``sqlite:`` URL."""
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres_db import PostgresDatabase  # imported lazily: asyncpg is optional

        return SQLStore(PostgresDatabase(url))
    return SQLStore(SQLiteDatabase(sqlite_path(url)))


async def with_store(url: str, fn: Callable[[SQLStore], Awaitable[Any]]) -> Any:
    """``await fn(store)`` on a store opened for the call (CLI commands, scripts), closed afterwards."""
    store = open_store(url)
    await store.open()
    try:
        return await fn(store)
    finally:
        await store.close()


__all__ = ["SQLStore", "open_store", "with_store"]
