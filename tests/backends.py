"""The store backends the suite runs against: SQLite always, PostgreSQL when a server answers.

PostgreSQL: ``TRAILMARK_TEST_POSTGRES_URL`` if set, else the local server on 127.0.0.1:5432 (user
``postgres``, database ``postgres``). It is probed once per session with a short timeout; when it does not
answer, every ``[postgres]`` test is skipped with the reason (``pytest -ra`` lists it).

Isolation: each test gets a fresh *schema* (``tm_<random>``), named in the URL's ``search_path`` (asyncpg
passes unknown URL parameters on as server settings, so every pooled connection, in this process or in a
server subprocess, works inside it), and dropped afterwards. That costs about 1 ms, against about 100 ms
for ``CREATE DATABASE`` + ``DROP DATABASE``; the advisory locks are database-wide, which only means tests
running at the same moment could wait on each other, never see each other's rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

POSTGRES_URL = os.environ.get("TRAILMARK_TEST_POSTGRES_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"


def _probe_postgres() -> str | None:
    """``None`` when PostgreSQL answers, else why the PostgreSQL leg is skipped."""
    try:
        import asyncpg
    except ImportError:
        return "PostgreSQL leg skipped: asyncpg is not installed (pip install -e '.[test]')"

    async def connect() -> None:
        conn = await asyncpg.connect(POSTGRES_URL, timeout=3)
        await conn.close()

    try:
        asyncio.run(connect())
    except Exception as exc:
        from trailmark.store.postgres_db import redact

        return (f"PostgreSQL not reachable at {redact(POSTGRES_URL)} ({type(exc).__name__}: {exc}): "
                "set TRAILMARK_TEST_POSTGRES_URL or start the local server")
    return None


POSTGRES_SKIP = _probe_postgres()
POSTGRES_MARKS = [pytest.mark.postgres] + ([pytest.mark.skip(reason=POSTGRES_SKIP)] if POSTGRES_SKIP else [])
BACKENDS = ["sqlite", pytest.param("postgres", marks=POSTGRES_MARKS, id="postgres")]


def with_search_path(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}search_path={schema}"


@contextlib.asynccontextmanager
async def fresh_postgres_url() -> AsyncIterator[str]:
    """A URL for an empty schema of the test server, dropped (with everything in it) afterwards."""
    import asyncpg

    schema = f"tm_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(POSTGRES_URL, timeout=5)
    try:
        await admin.execute(f"CREATE SCHEMA {schema}")
        try:
            yield with_search_path(POSTGRES_URL, schema)
        finally:
            await admin.execute("SET lock_timeout = '10s'")
            await admin.execute(f"DROP SCHEMA {schema} CASCADE")
    finally:
        await admin.close()


@contextlib.asynccontextmanager
async def backend_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    if backend == "sqlite":
        yield str(tmp_path / "trailmark.db")
        return
    if backend == "postgres":
        if POSTGRES_SKIP:
            pytest.skip(POSTGRES_SKIP)
        async with fresh_postgres_url() as url:
            yield url
        return
    raise ValueError(backend)
