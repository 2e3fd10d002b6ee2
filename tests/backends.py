"""The store backends the suite runs against: SQLite always, PostgreSQL when a server answers.

PostgreSQL: ``TRAILMARK_TEST_POSTGRES_URL`` if set, else the local server on 127.0.0.1:5432 (user
``postgres``, database ``postgres``). It is probed once per session with a short timeout; when it does not
answer, every ``[postgres]`` test is skipped with the reason (``pytest -ra`` lists it).

Isolation, and why it is cheap (applying every migration costs far more than most tests; the figures are in
docs/performance.md, "The test suite"): a test's ``store_url`` already holds the current schema, made by the
store's own migration code once per test process and then reused:

- SQLite: a copy of a template file migrated once per process (an owner-only file, like the server makes).
- PostgreSQL: a *schema* (``tm_<random>``) of its own, named in the URL's ``search_path`` (asyncpg passes
  unknown URL parameters on as server settings, so every pooled connection, in this process or in a server
  subprocess, works inside it). Schemas are migrated once, then kept in a per-process pool: after a test its
  rows are deleted and its identity sequences restarted, so the next test finds it as a fresh migration
  leaves it; a schema whose reset fails (say, a row lock held past the test) or whose migrations a test
  changed is dropped instead. (No test changes a migrated schema's tables: the tests of the migrations
  themselves get an empty store, below.)
  The advisory locks are database-wide, which only means tests running at the same moment could wait on
  each other, never see each other's rows.

A test of the migrations themselves asks for an empty database with ``@pytest.mark.empty_store``
(``fresh_postgres_url`` and a new SQLite path are always empty).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
# The PostgreSQL leg is ``slow``: the full run (CI) has it, the ``-m "not slow"`` inner loop runs the SQLite leg
# only (each PostgreSQL test pays for new server connections and their catalog caches: several times SQLite's cost).
POSTGRES_MARKS = [pytest.mark.postgres, pytest.mark.slow] + ([pytest.mark.skip(reason=POSTGRES_SKIP)] if POSTGRES_SKIP
                                                             else [])
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


# ------------------------------------------------------------------------------------------ SQLite
_sqlite_template: Path | None = None


async def _migrated_sqlite_template() -> Path:
    """This process's template: an empty file migrated by the store itself, made on first use."""
    global _sqlite_template
    if _sqlite_template is None:
        from trailmark.store import with_store

        path = Path(tempfile.mkdtemp(prefix="trailmark-test-template-")) / "template.db"
        await with_store(str(path), _noop)  # opening applies every migration; closing checkpoints the WAL
        atexit.register(shutil.rmtree, path.parent, True)
        _sqlite_template = path
    return _sqlite_template


async def _noop(_store: Any) -> None:
    return None


async def migrated_sqlite_path(path: Path) -> str:
    """``path``, a copy of the migrated template, readable by its owner only (as the server creates it)."""
    template = await _migrated_sqlite_template()
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    shutil.copyfile(template, path)  # into the 0600 file: copyfile keeps the destination's mode
    return str(path)


# ------------------------------------------------------------------------------------------ PostgreSQL
@dataclass
class _PooledSchema:
    name: str
    reset_sql: str  # deletes every row (referencing tables first) and restarts the identity sequences
    versions: tuple[int, ...]  # as migrated: a schema whose migrations a test changed is dropped, not reused


_pool: list[_PooledSchema] = []

async def _versions(conn: Any, schema: str) -> tuple[int, ...]:
    rows = await conn.fetch(f"SELECT version FROM {schema}.schema_migrations ORDER BY version")
    return tuple(r["version"] for r in rows)


async def _reset_sql(conn: Any, schema: str) -> str:
    """One script that empties every table but ``schema_migrations``, each after the tables referencing it
    (a DELETE per table: far cheaper than TRUNCATE, which makes new files for each table)."""
    tables = {r["tablename"] for r in await conn.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = $1 AND tablename <> 'schema_migrations'", schema)}
    refs = await conn.fetch(
        "SELECT c.conrelid::regclass::text AS child, c.confrelid::regclass::text AS parent FROM pg_constraint c "
        "WHERE c.contype = 'f' AND c.connamespace = $1::regnamespace AND c.conrelid <> c.confrelid", schema)
    referenced_by: dict[str, set[str]] = {t: set() for t in tables}
    for r in refs:
        referenced_by[r["parent"].rpartition(".")[2].strip('"')].add(r["child"].rpartition(".")[2].strip('"'))
    order: list[str] = []
    while referenced_by:
        free = sorted(t for t, children in referenced_by.items() if not children - set(order))
        if not free:
            raise RuntimeError(f"foreign keys form a cycle among {sorted(referenced_by)}")
        order += free
        for t in free:
            del referenced_by[t]
    sequences = await conn.fetch("SELECT sequencename, start_value FROM pg_sequences WHERE schemaname = $1", schema)
    return ("BEGIN; SET LOCAL lock_timeout = '10s';"
            + "".join(f'DELETE FROM {schema}."{t}";' for t in order)
            + "".join(f"SELECT setval('{schema}.\"{s['sequencename']}\"', {s['start_value']}, false);"
                      for s in sequences)
            + "COMMIT;")


async def _drop_schema(conn: Any, schema: str) -> None:
    await conn.execute("SET lock_timeout = '10s'")
    await conn.execute(f"DROP SCHEMA {schema} CASCADE")


async def _new_migrated_schema(admin: Any) -> _PooledSchema:
    from trailmark.store import with_store

    name = f"tm_{secrets.token_hex(6)}"
    await admin.execute(f"CREATE SCHEMA {name}")
    try:
        await with_store(with_search_path(POSTGRES_URL, name), _noop)  # the store's own migration code
        return _PooledSchema(name, await _reset_sql(admin, name), await _versions(admin, name))
    except BaseException:
        await _drop_schema(admin, name)
        raise


@contextlib.asynccontextmanager
async def migrated_postgres_url() -> AsyncIterator[str]:
    """A URL for a schema as a fresh migration leaves it: from this process's pool, or made and migrated."""
    import asyncpg

    admin = await asyncpg.connect(POSTGRES_URL, timeout=5)
    try:
        schema = _pool.pop() if _pool else await _new_migrated_schema(admin)
        try:
            yield with_search_path(POSTGRES_URL, schema.name)
        finally:
            try:
                if await _versions(admin, schema.name) != schema.versions:
                    raise RuntimeError("the test changed the schema's migrations")
                await admin.execute(schema.reset_sql)
            except Exception:
                with contextlib.suppress(Exception):
                    await admin.execute("ROLLBACK")
                await _drop_schema(admin, schema.name)
            else:
                _pool.append(schema)
    finally:
        await admin.close()


async def drop_pooled_schemas() -> None:
    """At the end of the session: the pool's schemas are dropped."""
    if not _pool:
        return
    import asyncpg

    admin = await asyncpg.connect(POSTGRES_URL, timeout=5)
    try:
        while _pool:
            await _drop_schema(admin, _pool.pop().name)
    finally:
        await admin.close()


@contextlib.asynccontextmanager
async def backend_url(backend: str, tmp_path: Path, empty: bool = False) -> AsyncIterator[str]:
    """A database for one test: migrated, or with ``empty`` as a new install finds it."""
    if backend == "sqlite":
        path = tmp_path / "trailmark.db"
        yield str(path) if empty else await migrated_sqlite_path(path)
        return
    if backend == "postgres":
        if POSTGRES_SKIP:
            pytest.skip(POSTGRES_SKIP)
        async with (fresh_postgres_url() if empty else migrated_postgres_url()) as url:
            yield url
        return
    raise ValueError(backend)
