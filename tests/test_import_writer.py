"""The importer's lean writer (server/store/import_writer.py) against the store's own append path: one chunk
holding every case a chunk can hold gives the same answers, stored rows and counters, on both stores."""

from __future__ import annotations

import json
import time
from typing import Any

from trailmark.domain_errors import DomainError
from trailmark.store import SQLStore
from trailmark.store.import_writer import ImportEvent, as_append_requests, store_import_chunk
from trailmark.store.models import AppendRequest, NewEvent, Workspace

DAY = 86400


Chunk = list[tuple[str, list[ImportEvent]]]


async def make_chunk(store: SQLStore, ws: Workspace, at: int) -> tuple[Chunk, dict[str, str]]:
    """A workspace three names short of the 120-name limit, with an archived name, a lead
    merged into a user, an event already stored; and a chunk touching all of it. Returns the chunk and
    ``contact id → label`` (the two workspaces' ids differ)."""
    setup = await store.create_contact(ws, "user", external_id="setup")
    ada = await store.create_contact(ws, "user", external_id="ada")
    bob = await store.create_contact(ws, "user", external_id="bob")
    lea = await store.create_contact(ws, "lead", email="lea@example.com")
    dan = await store.create_contact(ws, "user", external_id="dan")
    await store.append_many([
        AppendRequest(ws.id, setup.id, "import", [NewEvent(f"n{i}", at, f"setup:{i}", {}, {}) for i in range(118)]),
        AppendRequest(ws.id, ada.id, "import", [NewEvent("n2", at, f"r:{ada.id}:n2:{at}", {}, {})])])
    await store.set_event_archived(ws, "n0", True)  # 117 active: room for 3 new names
    await store.merge_contacts(ws, lea.id, ada.id, reason="test", proof="test")

    def ev(cid: str, name: str, t: int, metadata: dict[str, Any] | None = None,
           dropped: list[dict[str, str]] | None = None) -> ImportEvent:
        types = {k: "string" for k in metadata or {}}
        return ImportEvent(name, t, f"r:{cid}:{name}:{t}", json.dumps(metadata) if metadata else None,
                           json.dumps(types) if types else None, dropped or [])

    chunk = {
        ada.id: [ev(ada.id, "n1", at + 1, {"plan": "pro"}), ev(ada.id, "new-a", at + 2 * DAY),
                 ev(ada.id, "n1", at + 1, {"plan": "pro"}),  # repeated in the chunk: one stored
                 ev(ada.id, "n2", at)],  # stored before the import: a duplicate
        bob.id: [ev(bob.id, "new-b1", at), ev(bob.id, "new-b2", at), ev(bob.id, "new-b3", at),
                 ev(bob.id, "n3", at)],  # 3 new names after Ada's: over 120
        lea.id: [ev(lea.id, "n3", at + 5, {"plan": "x"}, [{"key": "bad", "reason": "not a type"}]),
                 ev(lea.id, "n0", at + 6)],  # merged into Ada; n0 is archived
        dan.id: [ev(dan.id, "new-d", at + DAY)],
        "no-such-contact": [ev("no-such-contact", "n4", at)],
    }
    labels = {ada.id: "ada", bob.id: "bob", lea.id: "lea", dan.id: "dan", setup.id: "setup",
              "no-such-contact": "ghost"}
    # The order both writers see: Bob before Dan, so Bob's new names are the ones over the limit.
    order = ["ada", "lea", "bob", "dan", "ghost"]
    by_label = {labels[cid]: (cid, events) for cid, events in chunk.items()}
    return [by_label[label] for label in order], labels


def answers(outcomes: list[Any]) -> list[Any]:
    return [type(o).__name__ if isinstance(o, DomainError) else [(r.status, r.reason) for r in o]
            for o in outcomes]


async def stored(store: SQLStore, ws: Workspace, labels: dict[str, str]) -> dict[str, Any]:
    async with store.db.read() as conn:
        names = await conn.fetch_all(
            "SELECT name, archived, event_count, first_seen, last_seen, dropped_count, dropped_metadata_count "
            "FROM event_names WHERE workspace_id = ? ORDER BY name", (ws.id,))
        days = await conn.fetch_all(
            "SELECT n.name, d.day, d.count FROM event_daily_counts d JOIN event_names n ON n.id = d.event_name_id "
            "WHERE n.workspace_id = ? ORDER BY n.name, d.day", (ws.id,))
        drops = await conn.fetch_all(
            "SELECT n.name, m.key, m.reason, m.count FROM metadata_drops m JOIN event_names n ON "
            "n.id = m.event_name_id WHERE n.workspace_id = ? ORDER BY n.name, m.key", (ws.id,))
        refused = await conn.fetch_all("SELECT name, reason, count FROM refused_event_names WHERE workspace_id = ? "
                                       "ORDER BY name, reason", (ws.id,))
        events = await conn.fetch_all(
            "SELECT e.contact_id, n.name, e.created_at, e.role, e.source, e.metadata, e.metadata_types, e.dedupe_key "
            "FROM events e JOIN event_names n ON n.id = e.event_name_id WHERE e.workspace_id = ? "
            "ORDER BY e.id", (ws.id,))
    rows = [tuple(r) for r in names]
    return {"names": rows, "active": sum(1 for r in rows if not r[1]),
            "days": [tuple(r) for r in days], "drops": [tuple(r) for r in drops],
            "refused": [tuple(r) for r in refused],
            "events": [(labels[r[0]], *tuple(r)[1:7], _relabel(r[7], labels)) for r in events]}


def _relabel(key: str, labels: dict[str, str]) -> str:
    for cid, label in labels.items():
        key = key.replace(cid, label)
    return key


async def test_lean_writer_answers_and_stores_as_the_append_path_does(harness):
    store = harness.store
    old_ws = harness.workspace
    new_ws = await store.create_workspace("Lean")

    at = int(time.time()) - 3 * DAY
    old_chunk, old_labels = await make_chunk(store, old_ws, at)
    new_chunk, new_labels = await make_chunk(store, new_ws, at)
    old = answers(await store.append_many(as_append_requests(old_ws.id, "import", old_chunk)))
    new = answers(await store_import_chunk(store, new_ws.id, "import", new_chunk))

    assert new == old
    assert new == [
        [("accepted", None), ("accepted", None), ("duplicate", None), ("duplicate", None)],  # Ada
        [("accepted", None), ("dropped", "event 'n0' is archived")],  # Lea, stored on Ada
        "NameLimitReached",  # Bob: 118 active + 3 new names > 120
        [("accepted", None)],  # Dan: the 119th
        "UnknownIdentity"]
    old_rows, new_rows = await stored(store, old_ws, old_labels), await stored(store, new_ws, new_labels)
    assert new_rows == old_rows
    assert new_rows["active"] == 119
    assert [e[0] for e in new_rows["events"] if e[1] == "n3" and e[0] != "setup"] == ["ada"]  # Lea's: on Ada
    assert ("new-b1", "name_limit", 1) in new_rows["refused"]

    # Run again: everything is a duplicate (or refused / dropped as before), nothing more stored.
    again = answers(await store_import_chunk(store, new_ws.id, "import", new_chunk))
    assert again[0] == [("duplicate", None)] * 4 and again[3] == [("duplicate", None)]
    assert (await stored(store, new_ws, new_labels))["events"] == new_rows["events"]


async def test_a_chunk_that_fails_as_a_whole_is_stored_contact_by_contact(harness, monkeypatch):
    store, ws = harness.store, harness.workspace
    chunk, _ = await make_chunk(store, ws, int(time.time()) - 3 * DAY)
    write = store.db.write
    calls: list[Any] = []

    async def broken_once(job: Any) -> Any:
        calls.append(job)
        if len(calls) == 1:
            raise RuntimeError("disk I/O error")
        return await write(job)

    monkeypatch.setattr(store.db, "write", broken_once)
    outcomes = answers(await store_import_chunk(store, ws.id, "import", chunk))
    assert outcomes[0] == [("accepted", None), ("accepted", None), ("duplicate", None), ("duplicate", None)]
    assert outcomes[2:] == ["NameLimitReached", [("accepted", None)], "UnknownIdentity"]
    assert len(calls) == 2  # the lean transaction that failed, then the append path's one
    assert await harness.event_count() == 119 + 4  # before the import; Ada 2, Lea 1 (on Ada), Dan 1


async def test_a_chunk_of_only_new_events_and_its_rerun_match_the_append_path(harness):
    """The writer's shortcuts: every row new (a fresh import) and no row new (its re-run) are told apart by
    the insert's change count; both give what the append path gives."""
    store = harness.store
    at = int(time.time()) - 5 * DAY
    results = []
    for label in ("old", "new"):
        ws = await store.create_workspace(label)
        ada = await store.create_contact(ws, "user", external_id="ada")
        bob = await store.create_contact(ws, "user", external_id="bob")
        chunk = [(cid, [ImportEvent(name, at + k * DAY, f"r:{cid}:{name}:{at + k * DAY}",
                                    json.dumps({"plan": "pro"}), json.dumps({"plan": "string"}),
                                    [{"key": "bad", "reason": "not a type"}] if k == 1 else [])
                        for k in range(3) for name in ("a", "b")])
                 for cid in (ada.id, bob.id)]
        labels = {ada.id: "ada", bob.id: "bob"}
        if label == "old":
            first = answers(await store.append_many(as_append_requests(ws.id, "import", chunk)))
            again = answers(await store.append_many(as_append_requests(ws.id, "import", chunk)))
        else:
            first = answers(await store_import_chunk(store, ws.id, "import", chunk))
            again = answers(await store_import_chunk(store, ws.id, "import", chunk))
        results.append((first, again, await stored(store, ws, labels)))
    assert results[1] == results[0]
    first, again, rows = results[1]
    assert first == [[("accepted", None)] * 6] * 2 and again == [[("duplicate", None)] * 6] * 2
    assert len(rows["events"]) == 12 and rows["drops"] == [("a", "bad", "not a type", 2), ("b", "bad", "not a type", 2)]
