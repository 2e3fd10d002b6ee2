"""Which new event names may be created, and a record of the ones refused.

A workspace holds at most 120 active event names, and the public app_id is all a browser needs to send
events: anyone could use the 120 up with made-up names, after which legitimate new names are refused. So a
new name from an unverified browser (the shim's path; any contact but a user of a workspace that enforces
identity verification) counts against two daily budgets: its contact's and its client address's. A workspace
may also list the only names browsers may create (existing names are always accepted).

Refusals are per event (the batch's other events are stored) and counted per (name, reason) in
``refused_event_names``, which the admin's event list shows. Creation runs under the per-workspace name lock
(``events.lock_event_names``), so the budgets hold across processes.
"""

from __future__ import annotations

from collections.abc import Iterable

from .db import Conn
from .models import USER, AppendRequest
from .sql_helpers import DAY, placeholders

MAX_ACTIVE_EVENT_NAMES = 120  # Intercom: "Cannot have more than 120 active event names"
MAX_REFUSED_ROWS = 1000  # distinct (name, reason) rows kept per workspace; later made-up names are lumped
OTHER_NAMES = "(other names)"

NOT_ALLOWED, CONTACT_QUOTA, ADDRESS_QUOTA, NAME_LIMIT = "not_allowed", "contact_quota", "address_quota", "name_limit"
# Why, as the admin shows it (the table keeps the code).
WHY = {
    NOT_ALLOWED: "not in the names browsers may create (workspace set --browser-event-names)",
    CONTACT_QUOTA: "the visitor's daily budget of new names was used up (--browser-new-names-per-contact)",
    ADDRESS_QUOTA: "the client address's daily budget of new names was used up (--browser-new-names-per-address)",
    NAME_LIMIT: f"the workspace has {MAX_ACTIVE_EVENT_NAMES} active event names (archive some)",
}


def reason_text(code: str, name: str, req: AppendRequest) -> str:
    """What the shim prints for a refused event."""
    b = req.browser
    if code == NOT_ALLOWED:
        return f"event name '{name}' is new and not among the names this workspace lets browsers create"
    if code == CONTACT_QUOTA and b is not None:
        return f"new event name '{name}' refused: at most {b.per_contact} new names per visitor per day"
    if code == ADDRESS_QUOTA and b is not None:
        return f"new event name '{name}' refused: at most {b.per_address} new names per address per day"
    return f"Cannot have more than {MAX_ACTIVE_EVENT_NAMES} active event names"


async def screen_new_names(conn: Conn, req: AppendRequest, contact_id: str, role: str, new_names: list[str],
                           active: int, now: int) -> tuple[list[str], dict[str, str]]:
    """Split a browser request's new names into those to create and those refused (name → reason code);
    counts the created ones against the daily budgets."""
    b = req.browser
    assert b is not None
    refused = {n: NOT_ALLOWED for n in new_names if b.allowed and n not in b.allowed}
    candidates = [n for n in new_names if n not in refused]
    budgeted = not (b.users_verified and role == USER)
    day = now // DAY
    holders = (f"contact:{contact_id}", f"address:{b.address}")
    room_contact = room_address = len(candidates)
    if budgeted and candidates:
        rows = await conn.fetch_all("SELECT holder, count FROM new_name_quota WHERE workspace_id = ? AND day = ? "
                                    "AND holder IN (?, ?)", (req.workspace_id, day, *holders))
        used = {r["holder"]: int(r["count"]) for r in rows}
        room_contact = b.per_contact - used.get(holders[0], 0)
        room_address = b.per_address - used.get(holders[1], 0)
    create: list[str] = []
    for name in candidates:
        if room_contact <= 0:
            refused[name] = CONTACT_QUOTA
        elif room_address <= 0:
            refused[name] = ADDRESS_QUOTA
        elif active + len(create) >= MAX_ACTIVE_EVENT_NAMES:
            refused[name] = NAME_LIMIT
        else:
            create.append(name)
            room_contact, room_address = room_contact - 1, room_address - 1
    if budgeted and create:
        await conn.executemany(
            "INSERT INTO new_name_quota (workspace_id, day, holder, count) VALUES (?, ?, ?, ?) ON CONFLICT "
            "(workspace_id, day, holder) DO UPDATE SET count = new_name_quota.count + excluded.count",
            [(req.workspace_id, day, h, len(create)) for h in sorted(holders)])
        # Yesterday's budgets are done with: the table holds about one day of holders.
        await conn.execute("DELETE FROM new_name_quota WHERE workspace_id = ? AND day < ?", (req.workspace_id, day))
    return create, refused


async def record_refusals(conn: Conn, refusals: dict[tuple[int, str, str], int], now: int) -> None:
    """Count refused events per (workspace, name, reason). Past ``MAX_REFUSED_ROWS`` rows in a workspace, new
    names are counted under ``OTHER_NAMES``: a flood of made-up names cannot grow the table without bound."""
    by_ws: dict[int, dict[tuple[str, str], int]] = {}
    for (ws_id, name, code), n in refusals.items():
        by_ws.setdefault(ws_id, {})[(name, code)] = n
    for ws_id, counts in sorted(by_ws.items()):
        rows = await conn.fetch_all(
            f"SELECT name, reason FROM refused_event_names WHERE workspace_id = ? AND name IN ({_marks(counts)})",
            (ws_id, *sorted({name for name, _ in counts})))
        present = {(r["name"], r["reason"]) for r in rows}
        row = await conn.fetch_one("SELECT COUNT(*) AS n FROM refused_event_names WHERE workspace_id = ?", (ws_id,))
        room = MAX_REFUSED_ROWS - (int(row["n"]) if row else 0)
        folded: dict[tuple[str, str], int] = {}
        for (name, code), n in sorted(counts.items()):
            if (name, code) not in present:
                if room <= 0:
                    name = OTHER_NAMES
                room -= 1
            folded[(name, code)] = folded.get((name, code), 0) + n
        await conn.executemany(
            "INSERT INTO refused_event_names (workspace_id, name, reason, count, last_seen) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (workspace_id, name, reason) DO UPDATE SET count = refused_event_names.count + "
            "excluded.count, last_seen = excluded.last_seen",
            [(ws_id, name, code, n, now) for (name, code), n in sorted(folded.items())])


def _marks(items: Iterable[tuple[str, str]]) -> str:
    return placeholders(len({name for name, _ in items}))
