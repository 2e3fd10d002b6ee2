"""A synthetic SQLite database for the read benchmarks: 1,000,000 events over ~100,000 contacts.

Built once and cached under ``/tmp/trailmark-bench/``, keyed by :data:`GENERATOR_VERSION` and the
store's schema migrations (a schema change rebuilds it). The schema comes from opening the real store
(its migrations); rows are bulk-loaded with ``executemany`` into the same file with the events indexes
dropped, and the indexes are then recreated from their own SQL, so the result is what the store would
hold, only built in seconds.

Shape (deterministic, seeded):
- contacts: 70 % visitors, 20 % leads (converted, with a visitor floor), 10 % users;
- 20 event names with Zipf-like popularity; events per contact skewed (a few heavy contacts, a long tail);
- the *heavy* contact: a user with 20,000 events of its own plus a visitor merged into it with 5,000
  more (so its timeline is the union of two sources, as after a real merge);
- the *light* contact: a lead with 10 events.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import sqlite3
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

GENERATOR_VERSION = "2"
CACHE_DIR = Path(os.environ.get("TRAILMARK_BENCH_CACHE", "/tmp/trailmark-bench"))
DAY = 86400
EVENT_NAMES = ["page-view", "pricing-viewed", "signup-started", "signup-completed", "upload-complete",
               "invited-friend", "plan-upgraded", "plan-downgraded", "search", "video-played",
               "file-shared", "comment-added", "report-exported", "settings-changed", "integration-added",
               "billing-updated", "trial-extended", "api-key-created", "team-created", "logout"]
HEAVY_OWN, HEAVY_MERGED, LIGHT = 20_000, 5_000, 10


@dataclass
class Dataset:
    path: str
    app_id: str
    events: int
    contacts: int
    heavy_contact: str  # a user with HEAVY_OWN events + a merged visitor with HEAVY_MERGED
    heavy_events: int
    light_contact: str  # a lead with LIGHT events
    filter_event: str  # the event name the filtered contact list asks about
    filter_event_id: int
    built_seconds: float


def schema_key() -> str:
    from trailmark.store.schema import MIGRATIONS

    return hashlib.sha1((GENERATOR_VERSION + repr(MIGRATIONS)).encode()).hexdigest()[:12]


def dataset(events: int = 1_000_000, contacts: int = 100_000, log=print) -> Dataset:
    """The cached dataset of this size, built when missing."""
    name = f"events-{events}-{contacts}-{schema_key()}"
    path, meta = CACHE_DIR / f"{name}.db", CACHE_DIR / f"{name}.json"
    if path.exists() and meta.exists():
        return Dataset(**json.loads(meta.read_text()))
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tmp = CACHE_DIR / f"{name}.building-{os.getpid()}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    log(f"  building {events:,} events over {contacts:,} contacts in {path} (cached for later runs)…")
    start = time.perf_counter()
    app_id = asyncio.run(_create_schema(str(tmp)))
    ds = _load(str(tmp), app_id, events, contacts)
    ds.built_seconds = round(time.perf_counter() - start, 1)
    os.replace(tmp, path)
    ds.path = str(path)
    meta.write_text(json.dumps(asdict(ds)))
    log(f"  built in {ds.built_seconds} s ({path.stat().st_size / 1e6:.0f} MB)")
    return ds


async def _create_schema(path: str) -> str:
    from trailmark.store import open_store

    store = open_store(path)
    await store.open()
    try:
        ws = await store.create_workspace("Bench", app_id="bench1m")
        return ws.app_id
    finally:
        await store.close()


def _hex(rng: random.Random) -> str:
    return f"{rng.getrandbits(96):024x}"


def _load(path: str, app_id: str, n_events: int, n_contacts: int) -> Dataset:
    rng = random.Random(20261129)
    now = int(time.time())
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = DELETE")  # a bulk build: no WAL, no fsync; back to WAL at the end
    db.execute("PRAGMA synchronous = OFF")
    db.execute("PRAGMA cache_size = -262144")
    ws_id = db.execute("SELECT id FROM workspaces WHERE app_id = ?", (app_id,)).fetchone()[0]
    db.execute("BEGIN")
    db.executemany("INSERT INTO event_names (workspace_id, name, created_at) VALUES (?, ?, ?)",
                   [(ws_id, n, now - 400 * DAY) for n in EVENT_NAMES])
    name_ids = [r[0] for r in db.execute("SELECT id FROM event_names WHERE workspace_id = ? ORDER BY id", (ws_id,))]

    # Contacts: (id, role, created_at, contacted_at, visitor_floor, merged_into)
    contacts: list[tuple] = []
    for _ in range(n_contacts):
        created = now - rng.randrange(180 * DAY)
        r = rng.random()
        role = "visitor" if r < 0.7 else "lead" if r < 0.9 else "user"
        contacted = created + rng.randrange(max(1, now - created)) if role != "visitor" else None
        floor = contacted - 90 * DAY if contacted else None
        contacts.append((_hex(rng), role, created, contacted, floor, None))
    heavy, merged = _hex(rng), _hex(rng)
    light = contacts[0][0]
    contacts[0] = (light, "lead", now - 30 * DAY, now - DAY, now - 91 * DAY, None)
    contacts.append((heavy, "user", now - 170 * DAY, now - 160 * DAY, now - 250 * DAY, None))
    contacts.append((merged, "visitor", now - 175 * DAY, now - 160 * DAY, now - 250 * DAY, heavy))
    db.executemany(
        "INSERT INTO contacts (id, workspace_id, role, visitor_id, external_id, email, custom_attributes, "
        "created_at, updated_at, last_seen_at, contacted_at, visitor_floor, signed_up_at, merged_into) "
        "VALUES (?, ?, ?, ?, ?, ?, '{}', ?, ?, ?, ?, ?, ?, ?)",
        [(cid, ws_id, role, f"v-{cid}" if role == "visitor" or merged_into else None,
          f"user-{cid}" if role == "user" and not merged_into else None,
          f"{cid[:10]}@example.com" if role != "visitor" else None,
          created, created, now - rng.randrange(30 * DAY), contacted, floor,
          contacted if role == "user" else None, merged_into)
         for cid, role, created, contacted, floor, merged_into in contacts])

    # Events: the heavy and light contacts first, the rest spread with a skew over the others.
    name_weights = [1 / (k + 1) ** 0.8 for k in range(len(name_ids))]
    per_contact = [1 / (k + 20) ** 0.7 for k in range(1, n_contacts)]
    heavy_own, heavy_merged = min(HEAVY_OWN, n_events // 50), min(HEAVY_MERGED, n_events // 200)
    rest = n_events - heavy_own - heavy_merged - LIGHT
    owners = ([(heavy, "user", now - 160 * DAY, None)] * heavy_own
              + [(merged, "visitor", now - 175 * DAY, None)] * heavy_merged)
    owners += [(light, "lead", now - 30 * DAY, now - DAY)] * LIGHT
    for k in rng.choices(range(1, n_contacts), weights=per_contact, k=rest):
        cid, role, created, contacted, _, _ = contacts[k]
        owners.append((cid, role, created, contacted))
    names = rng.choices(name_ids, weights=name_weights, k=len(owners))
    metadata = ['{"plan":"pro","seats":3}', '{"page":"/pricing","ref":"ad"}', None, None, None,
                '{"duration":19,"size_mb":12.5}']
    types = ['{"plan":"string","seats":"integer"}', '{"page":"string","ref":"string"}', None, None, None,
             '{"duration":"integer","size_mb":"float"}']

    def rows():
        for seq, ((cid, role, created, contacted), name_id) in enumerate(zip(owners, names, strict=True)):
            t = created + rng.randrange(max(1, now - created))
            ev_role = "visitor" if role == "visitor" or (contacted and t < contacted) else role
            m = seq % len(metadata)
            yield (ws_id, cid, name_id, t, t, ev_role, "js", f"g:{seq}", metadata[m], types[m])

    index_sql = [r[0] for r in db.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' AND sql IS NOT NULL")]
    for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' "
                              "AND sql IS NOT NULL").fetchall():
        db.execute(f"DROP INDEX {name}")
    db.executemany("INSERT INTO events (workspace_id, contact_id, event_name_id, created_at, received_at, role, "
                   "source, dedupe_key, metadata, metadata_types) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows())
    for sql in index_sql:
        db.execute(sql)
    # The aggregates the store keeps up to date on ingest: per contact, then per name.
    from trailmark.store.contact_stats import RECOUNT_ALL

    db.execute(RECOUNT_ALL)
    db.execute("UPDATE event_names SET "
               "event_count = (SELECT COUNT(*) FROM events e WHERE e.event_name_id = event_names.id), "
               "first_seen = (SELECT MIN(created_at) FROM events e WHERE e.event_name_id = event_names.id), "
               "last_seen = (SELECT MAX(created_at) FROM events e WHERE e.event_name_id = event_names.id)")
    db.execute(f"INSERT INTO event_daily_counts (event_name_id, day, count) SELECT event_name_id, created_at / {DAY}, "
               "COUNT(*) FROM events GROUP BY 1, 2")
    db.execute("COMMIT")
    db.execute("PRAGMA journal_mode = WAL")
    total = db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    filter_name = EVENT_NAMES[4]
    filter_id = db.execute("SELECT id FROM event_names WHERE workspace_id = ? AND name = ?",
                           (ws_id, filter_name)).fetchone()[0]
    db.close()
    return Dataset(path, app_id, total, len(contacts), heavy, heavy_own + heavy_merged, light, filter_name,
                   filter_id, 0.0)


if __name__ == "__main__":
    print(dataset(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000,
                  int(sys.argv[2]) if len(sys.argv) > 2 else 100_000))
