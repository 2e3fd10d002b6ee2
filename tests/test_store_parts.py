"""The store's shape: a facade over parts (each part's methods are the store's own), and one dialect object per
backend holding everything that differs between SQLite and PostgreSQL."""

from __future__ import annotations

import ast
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import trailmark
from trailmark.store import SQLStore, open_store
from trailmark.store.db import Conn

STORE = Path(trailmark.__file__).parent / "store"


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[SQLStore]:
    s = open_store(store_url)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


def test_only_the_dialect_module_names_a_backend():
    """Everything that differs between the backends is asked of ``conn.dialect``: no other module of the store
    compares a backend's name (nor reads one with a fallback: ``getattr(conn, "dialect", …)``)."""
    offenders = []
    for path in sorted(STORE.glob("*.py")):
        if path.name == "dialect.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in ("postgres", "sqlite"):
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


async def unique_violation_and_other_failure(store: SQLStore) -> tuple[Exception, Exception]:
    """What the backend raises for a duplicate in a unique index, and for a NULL in a NOT NULL column."""
    ws = await store.create_workspace("dialect")

    async def duplicate(conn: Conn) -> None:
        await conn.execute("INSERT INTO teammates (email, password_hash, created_at) VALUES (?, ?, ?)",
                           ("a@example.com", "x", 1))
        await conn.execute("INSERT INTO teammates (email, password_hash, created_at) VALUES (?, ?, ?)",
                           ("a@example.com", "y", 2))

    async def missing(conn: Conn) -> None:
        await conn.execute("INSERT INTO contacts (id, workspace_id, role, created_at, updated_at) "
                           "VALUES (?, ?, ?, NULL, NULL)", ("c1", ws.id, "visitor"))

    caught = []
    for job in (duplicate, missing):
        with pytest.raises(Exception) as info:
            await store.db.write(job)
        caught.append(info.value)
    return caught[0], caught[1]


async def test_the_dialect_tells_a_unique_violation_from_other_failures(store):
    duplicate, missing = await unique_violation_and_other_failure(store)
    assert store.db.dialect.is_unique_violation(duplicate)
    assert not store.db.dialect.is_unique_violation(missing)
    assert not store.db.dialect.is_unique_violation(ValueError("UNIQUE constraint failed"))


async def test_reads_and_writes_see_the_same_dialect(store):
    async with store.db.read() as conn:
        read_dialect = conn.dialect

    async def job(conn: Conn) -> object:
        return conn.dialect

    assert read_dialect is store.db.dialect
    assert await store.db.write(job) is store.db.dialect

