"""``trailmark demo --sample-data``: a few weeks of a photo shop's visitors, leads and users, so the contact
filters, the event charts and the inbox have something to show.

Made through the store's own paths (events through ``append_many`` and the metadata rules, first contact
through ``convert_to_lead``, sign-ups through ``identify_user``, messages through the conversations part), so
the counters, merge records and histories are what real traffic would leave. Deterministic (a fixed seed).
"""

from __future__ import annotations

import random
import time
from typing import Any

from .ingest import validate_event
from .store import SQLStore
from .store.db import Conn
from .store.models import AppendRequest, NewEvent, Workspace
from .store.sql_helpers import DAY
from .store.sql_store import new_contact_id

FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Margaret", "Linus", "Radia", "Donald", "Frances",
         "John", "Katherine", "Dennis", "Hedy", "Tim", "Sophie", "Guido", "Anita", "Niklaus", "Karen", "Bjarne"]
LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Thompson", "Hamilton", "Torvalds", "Perlman",
        "Knuth", "Allen", "Backus", "Johnson", "Ritchie", "Lamarr", "Berners-Lee", "Wilson", "van Rossum", "Borg"]
PLANS = ["Starter", "Pro", "Business"]
QUESTIONS = ["Can I get the photo book printed by Friday?", "Do you ship prints to Norway?",
             "Is there a student discount?", "My RAW files fail to upload, any idea?",
             "Can I pay by invoice?", "How long do you keep my originals?"]
REPLIES = ["Yes! Order before Wednesday noon and it ships Thursday.", "We do: 3-5 working days.",
           "20% off with a university email address.", "Could you send us the camera model? We'll look into it."]


def _visit(rng: random.Random, start: int, now: int) -> list[tuple[str, int, dict[str, Any]]]:
    """One visitor's events: pricing for most, uploads for some, an order for a few."""
    t = start
    out: list[tuple[str, int, dict[str, Any]]] = [("viewed-pricing-page", t, {})]
    if rng.random() < 0.6:
        t += rng.randint(20, 600)
        out.append(("viewed-pricing-plan", t, {"plan": rng.choice(PLANS)}))
    for _ in range(rng.choice([0, 0, 1, 1, 2, 4])):
        t += rng.randint(60, 3 * DAY)
        kind = rng.choice(["JPEG", "JPEG", "HEIC", "RAW"])
        out.append(("upload-complete", t, {"type": kind, "duration": rng.randint(2, 90),
                                           "size_mb": round(rng.uniform(0.5, 48), 1)}))
    if rng.random() < 0.12:
        t += rng.randint(60, 2 * DAY)
        amount = rng.choice([1299, 2499, 3499, 4999])
        out.append(("placed-order", t, {"order_number": f"PB-{rng.randint(10000, 99999)}",
                                        "price": {"amount": amount, "currency": "eur"}, "items": rng.randint(1, 6)}))
    if rng.random() < 0.2:
        t += rng.randint(60, DAY)
        out.append(("subscribed-newsletter", t, {"source": rng.choice(["home", "footer"])}))
    return [e for e in out if e[1] < now - 60] or out[:1]  # nothing in the future


async def fill(store: SQLStore, ws: Workspace, contacts: int = 2500, days: int = 28,
               seed: int = 7) -> dict[str, int]:
    """Add ``contacts`` contacts (about 70% visitors, 18% leads, 12% users) active over ``days`` days."""
    rng = random.Random(seed)
    now = int(time.time())
    people: list[dict[str, Any]] = []
    for i in range(contacts):
        start = now - rng.randint(0, days * DAY)
        visit = _visit(rng, start, now)
        roll = rng.random()
        role = "user" if roll < 0.12 else "lead" if roll < 0.30 else "visitor"
        first, last = rng.choice(FIRST), rng.choice(LAST)
        people.append({"id": new_contact_id(), "visitor_id": f"sample-{seed}-{i}", "role": role, "events": visit,
                       "name": f"{first} {last}", "email": f"{first}.{last}.{i}@example.com".lower().replace(" ", ""),
                       "user_id": f"sample-user-{i}", "first": visit[0][1], "last": visit[-1][1]})

    async def insert_visitors(conn: Conn) -> None:
        await conn.executemany(
            "INSERT INTO contacts (id, workspace_id, role, visitor_id, created_at, updated_at, last_seen_at) "
            "VALUES (?, ?, 'visitor', ?, ?, ?, ?)",
            [(p["id"], ws.id, p["visitor_id"], p["first"], p["last"], p["last"]) for p in people])

    await store.db.write(insert_visitors)
    requests = []
    for p in people:
        batch: list[NewEvent] = [
            validate_event({"event_name": name, "created_at": at, "metadata": md}, strict=False, now=now,
                           dedupe_key=f"sample:{p['visitor_id']}:{k}")
            for k, (name, at, md) in enumerate(p["events"])]
        requests.append(AppendRequest(ws.id, p["id"], "js", batch))
    for i in range(0, len(requests), 500):
        await store.append_many(requests[i:i + 500])

    teammates = await store.teammates()
    conversations = 0
    for p in people:
        if p["role"] == "visitor":
            continue
        lead = await store.convert_to_lead(ws, p["id"], email=p["email"], name=p["name"], reason="sample data",
                                           proof="none")
        if p["role"] == "lead" and rng.random() < 0.35:
            added = await store.conversations.add_contact_message(ws, lead.id, rng.choice(QUESTIONS))
            conversations += 1
            if teammates and rng.random() < 0.5:
                await store.conversations.reply(ws, added.conversation_id, teammates[0].id, rng.choice(REPLIES))
        if p["role"] == "user":
            await store.identify_user(ws, lead.id, user_id=p["user_id"], email=p["email"], name=p["name"],
                                      reason="sample data", proof="user_hash")

    async def backdate(conn: Conn) -> None:
        # First contact and sign-up happened during the visit, not now.
        await conn.executemany(
            "UPDATE contacts SET contacted_at = ?, signed_up_at = CASE WHEN role = 'user' THEN ? END, "
            "updated_at = ?, last_seen_at = ? WHERE id = ?",
            [(p["last"], p["last"], p["last"], p["last"], p["id"]) for p in people if p["role"] != "visitor"])

    await store.db.write(backdate)
    counts = {role: sum(1 for p in people if p["role"] == role) for role in ("visitor", "lead", "user")}
    return {"visitors": counts["visitor"], "leads": counts["lead"], "users": counts["user"],
            "events": sum(len(p["events"]) for p in people), "conversations": conversations}
