"""The read benchmarks' synthetic dataset (``bench/dataset.py``) in PostgreSQL: the very rows of the cached
SQLite build, copied into a fresh database whose schema comes from the store's own migrations.

The events indexes are dropped while the rows stream in (``COPY``, asyncpg's binary copy) and recreated from
their own SQL afterwards, then everything is ANALYZEd: what the store would hold after ingesting the same
events, built in minutes. The database is named after the size and the schema (``tm_bench_<events>_<contacts>_
<schema key>``) and kept for later runs (bench/scale.py measures on a copy); ``drop=True`` rebuilds it.

    python bench/dataset_postgres.py postgresql://postgres@127.0.0.1:5432/postgres [events] [contacts]
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import dataset as sqlite_dataset  # noqa: E402  (bench/dataset.py, found through the path above)

# Copied in this order (foreign keys). A contact's merged_into may name a contact copied after it, so
# contacts go in without it, and it is set once they are all there.
TABLES = ("event_names", "contacts", "events", "event_daily_counts", "contact_event_stats")


def database_name(events: int, contacts: int) -> str:
    return f"tm_bench_{events}_{contacts}_{sqlite_dataset.schema_key()}"


async def admin_sql(server: str, sql: str) -> Any:
    import asyncpg

    conn = await asyncpg.connect(server)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def database_url(server: str, name: str) -> str:
    return server.rsplit("/", 1)[0] + "/" + name


async def postgres_dataset(server: str, events: int = 1_000_000, contacts: int = 100_000, *, drop: bool = False,
                           log: Any = print) -> sqlite_dataset.Dataset:
    """The dataset of this size in PostgreSQL (``Dataset.path`` is its URL), built when missing."""
    name = database_name(events, contacts)
    url = database_url(server, name)
    exists = await admin_sql(server, f"SELECT 1 FROM pg_database WHERE datname = '{name}'")
    if exists and drop:
        await admin_sql(server, f"DROP DATABASE {name}")
    source = await asyncio.to_thread(sqlite_dataset.dataset, events, contacts, log)  # it runs its own loop
    if exists and not drop:
        return replace(source, path=url)
    building = f"{name}_building"
    await admin_sql(server, f"DROP DATABASE IF EXISTS {building}")
    await admin_sql(server, f"CREATE DATABASE {building}")
    log(f"  copying {source.events:,} events from {source.path} into PostgreSQL database {name}…")
    started = time.perf_counter()
    await _copy(source, database_url(server, building))
    await admin_sql(server, f"ALTER DATABASE {building} RENAME TO {name}")
    log(f"  built in {time.perf_counter() - started:.0f} s")
    return replace(source, path=url, built_seconds=round(time.perf_counter() - started, 1))


async def _copy(source: sqlite_dataset.Dataset, url: str) -> None:
    import asyncpg

    from trailmark.store import open_store

    store = open_store(url)  # the schema, from the store's own migrations
    await store.open()
    try:
        ws = await store.create_workspace("Bench", app_id=source.app_id)
    finally:
        await store.close()
    lite = sqlite3.connect(source.path)
    (lite_ws,) = lite.execute("SELECT id FROM workspaces WHERE app_id = ?", (source.app_id,)).fetchone()
    assert lite_ws == ws.id, "both stores number the one workspace alike"
    conn = await asyncpg.connect(url)
    try:
        indexes = await conn.fetch("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'events' "
                                   "AND indexname NOT LIKE '%pkey'")
        for r in indexes:
            await conn.execute(f"DROP INDEX {r['indexname']}")
        for table in TABLES:
            columns = [r[1] for r in lite.execute(f"PRAGMA table_info({table})")]
            if table == "contacts":
                columns.remove("merged_into")
            cursor = lite.execute(f"SELECT {', '.join(columns)} FROM {table}")
            while rows := cursor.fetchmany(200_000):
                await conn.copy_records_to_table(table, columns=columns, records=rows)
            if "id" in columns and table != "contacts":
                await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                   f"(SELECT MAX(id) FROM {table}))")
        merged = lite.execute("SELECT id, merged_into FROM contacts WHERE merged_into IS NOT NULL").fetchall()
        await conn.executemany("UPDATE contacts SET merged_into = $2 WHERE id = $1", merged)
        for r in indexes:
            await conn.execute(r["indexdef"])
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
        lite.close()


if __name__ == "__main__":
    ds = asyncio.run(postgres_dataset(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000,
                                      int(sys.argv[3]) if len(sys.argv) > 3 else 100_000))
    print(ds)
