"""Storage: pick a backend from the database URL; asyncpg is imported only for PostgreSQL."""

from __future__ import annotations

from .db import SQLiteDatabase, sqlite_path
from .sql_store import SQLStore


def open_store(url: str) -> SQLStore:
    """``postgresql://…`` → PostgreSQL (asyncpg); anything else is a SQLite path or ``sqlite:`` URL."""
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres_db import PostgresDatabase  # imported lazily: asyncpg is optional

        return SQLStore(PostgresDatabase(url))
    return SQLStore(SQLiteDatabase(sqlite_path(url)))


__all__ = ["SQLStore", "open_store"]
