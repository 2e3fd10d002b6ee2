"""The store's shape: a facade over parts (each part's methods are the store's own), and one dialect object per
backend holding everything that differs between SQLite and PostgreSQL."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import trailmark
from trailmark.store import SQLStore, open_store
from trailmark.store.db import Conn

STORE = Path(trailmark.__file__).parent / "store"
# The parts SQLStore composes whose methods it offers as its own (the others, such as ``messages``, are
# reached through their attribute: ``store.messages.…``).
PARTS = ("workspaces", "contacts", "lifecycle", "events", "names", "retention", "event_sources", "rest_contacts",
         "admin")


def public_methods(part: object) -> list[str]:
    return [name for name, _ in inspect.getmembers(type(part), inspect.isfunction) if not name.startswith("_")]


def test_every_method_of_every_part_is_the_stores_own_and_no_two_parts_share_a_name():
    store = open_store(":memory:")  # never opened: only its shape is looked at
    offered_by: dict[str, str] = {}
    for attr in PARTS:
        part = getattr(store, attr)
        for name in public_methods(part):
            assert name not in offered_by, f"{name} is offered by both {offered_by[name]} and {attr}"
            offered_by[name] = attr
            bound = getattr(store, name, None)
            assert bound is not None, f"SQLStore does not offer {attr}.{name}"
            assert getattr(bound, "__self__", None) is part and bound.__name__ == name, f"store.{name} is not {attr}'s"
    assert len(offered_by) > 60  # the parts were found at all


def test_the_store_and_its_parts_are_composed_not_mixed_in():
    store = open_store(":memory:")
    classes: list[type] = [SQLStore, *(type(getattr(store, attr)) for attr in PARTS)]
    for cls in classes:
        assert cls.__bases__ == (object,), f"{cls.__name__} inherits {cls.__bases__}"


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

