"""PostgreSQL ingest (section ``postgres``): the ingest section's configurations on 127.0.0.1:5432 with
``--workers`` 1 and 2, each on a fresh database dropped afterwards; skipped, with the reason, without a server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from report import TITLES, add, say
from section_ingest import BATCH, Options, run_config

PG_ADMIN_URLS = ["postgresql://postgres@127.0.0.1:5432/postgres", "postgresql://root@127.0.0.1:5432/postgres"]


def pg_ids(url: str) -> Callable[[], Awaitable[set[str]]]:
    async def count() -> set[str]:
        import asyncpg

        conn = await asyncpg.connect(url)
        try:
            return {r["dedupe_key"][2:] for r in await conn.fetch("SELECT dedupe_key FROM events")}
        finally:
            await conn.close()
    return count


async def pg_admin() -> tuple[Any, str] | tuple[None, str]:
    try:
        import asyncpg
    except ImportError:
        return None, "asyncpg is not installed (pip install asyncpg)"
    last = ""
    for url in PG_ADMIN_URLS:
        try:
            return await asyncpg.connect(url, timeout=3), url
        except Exception as exc:  # any failure means "not reachable this way"
            last = f"{type(exc).__name__}: {exc}"
    return None, f"PostgreSQL on 127.0.0.1:5432 unreachable ({last})"


async def pg_admin_run(sql: str) -> str | None:
    conn, why = await pg_admin()
    if conn is None:
        return why
    try:
        await conn.execute(sql)
        return None
    finally:
        await conn.close()


async def pg_version() -> tuple[str | None, str]:
    conn, why = await pg_admin()
    if conn is None:
        return None, why
    try:
        return str(await conn.fetchval("SHOW server_version")), ""
    finally:
        await conn.close()


def section_postgres(opts: Options) -> None:
    say("\n[postgres] ingest on PostgreSQL, --workers 1 and 2, each on a fresh database")
    version, why = asyncio.run(pg_version())
    if version is None:
        add("postgres", "PostgreSQL ingest", f"skipped: {why}")
        return
    TITLES["postgres"] = (f"PostgreSQL {version.split()[0]} on 127.0.0.1:5432 (this machine: it shares the cores), "
                          "a fresh database per worker count, same load and rounds; baseline: the bare endpoint with "
                          "as many uvicorn workers")
    for workers in (1, 2):
        names = [f"tm_bench_{uuid.uuid4().hex[:10]}" for _ in range(2 if opts.baseline_python else 1)]
        for name in names:
            why = asyncio.run(pg_admin_run(f'CREATE DATABASE "{name}"'))
            if why:
                add("postgres", "PostgreSQL ingest", f"skipped: {why}")
                return
        urls = [f"postgresql://postgres@127.0.0.1:5432/{name}" for name in names]
        try:
            run_config(opts, {1: "postgres", BATCH: "postgres"},
                       f"PostgreSQL, {workers} worker{'s' if workers > 1 else ''}", urls[0], workers, pg_ids(urls[0]),
                       baseline_database=(urls[-1], pg_ids(urls[-1])) if len(urls) > 1 else None)
        except RuntimeError as exc:
            add("postgres", f"PostgreSQL, {workers} worker(s)", f"skipped: {str(exc)[:240]}")
            return
        finally:
            for name in names:
                asyncio.run(pg_admin_run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
