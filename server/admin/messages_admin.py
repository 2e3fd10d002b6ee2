"""The admin's Messages: the list (state, sent / shown / clicked / dismissed, a daily chart each), a message's
page (its JSON document edited in place, errors shown by JSON pointer; its state; the audience estimate; "Would
this show for <contact>, now? Why not?", every rule of ``decide`` passing or failing), and a new message. Both
editors have a live preview drawn by the Messenger's own renderer (``_message_preview.html``).

Store: ``store.messages`` (server/store/messages.py); rules: ``server/messages/``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..messages.audience import check_attribute
from ..messages.document import STATES, DocumentInvalid, Message, Problem, parse_message
from ..messages.engine import explain
from ..messages.rules import TrackedEvent
from ..store.messages import StoredMessage
from ..store.models import Contact, Workspace
from .charts import daily_chart
from .routes import Admin, not_found, signed_in

DAYS = 30
MAX_DOCUMENT = 50_000
ESTIMATE_LIMIT = 20_000  # contacts checked one by one when the audience has attribute conditions
EXAMPLE = {"key": "upload-done", "kind": "banner", "state": "draft",
           "trigger": {"event": "upload-complete", "metadata": [{"key": "type", "op": "eq", "value": "JPEG"}]},
           "frequency": {"max": 1, "per_days": 1},
           "content": {"text": "Your {{event.type}} upload is ready"}, "banner": {"position": "top"}}


@dataclass(frozen=True)
class Spark:
    """A small bar chart of one message's sends per day (the list)."""

    bars: list[tuple[float, float, float, str]]  # x, y, height, title
    width: int
    height: int
    label: str


def spark(days: list[tuple[int, dict[str, int]]]) -> Spark:
    chart = daily_chart([(day, c["sent"]) for day, c in days], noun="message sent")
    scale = 40 / (chart.bottom - 12)
    bars = [(round(i * 4.0, 1), round(40 - b.height * scale, 1), round(b.height * scale, 1), b.title)
            for i, b in enumerate(chart.bars)]
    return Spark(bars, 4 * len(days), 40, chart.label)


def pretty(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False)


@signed_in
async def messages(admin: Admin) -> Response:
    ws = admin.workspace
    assert ws is not None
    if admin.request.method == "POST":
        return await _save(admin, None)
    listed = await admin.store.messages.list(ws)
    totals = await admin.store.messages.totals(ws)
    now = int(time.time())
    sparks = {m.id: spark(await admin.store.messages.daily_stats(ws, m.id, DAYS, now)) for m in listed}
    gap = await admin.store.messages.gap_minutes(ws)
    return admin.render("messages.html", section="messages", messages=listed, totals=totals, sparks=sparks, gap=gap,
                        draft=pretty(EXAMPLE), problems=[], app_id=ws.app_id)


async def _save(admin: Admin, current: StoredMessage | None) -> Response:
    """Create (``current`` None) or replace a message from the posted JSON; errors shown by pointer."""
    ws = admin.workspace
    assert ws is not None
    text = admin.field("document", MAX_DOCUMENT + 1)
    problems: list[Problem] = []
    message: Message | None = None
    if len(text) > MAX_DOCUMENT:
        problems = [Problem("", f"the document is longer than {MAX_DOCUMENT:,} characters")]
    else:
        try:
            data = json.loads(text)
        except ValueError as exc:
            problems = [Problem("", f"not JSON: {exc}")]
        else:
            try:
                message = parse_message(data)
            except DocumentInvalid as exc:
                problems = exc.problems
    if message is not None and current is not None and message.key != current.key:
        problems, message = [Problem("/key", f"must stay {current.key!r} (create a new message for another key)")], None
    if message is None:
        if current is None:
            return await _list_with_problems(admin, text, problems)
        return await _page(admin, current, draft=text, problems=problems, status=422)
    applied = await admin.store.messages.apply(ws, key=message.key, kind=message.kind, state=message.state,
                                               event_name=message.trigger.event, document=message.document)
    admin.notice({"created": "Message created.", "updated": "Message saved.",
                  "unchanged": "Nothing changed."}[applied.outcome])
    return admin.redirect(f"/admin/messages/{message.key}")


async def _list_with_problems(admin: Admin, text: str, problems: list[Problem]) -> Response:
    ws = admin.workspace
    assert ws is not None
    listed = await admin.store.messages.list(ws)
    totals = await admin.store.messages.totals(ws)
    now = int(time.time())
    sparks = {m.id: spark(await admin.store.messages.daily_stats(ws, m.id, DAYS, now)) for m in listed}
    return admin.render("messages.html", status_code=422, section="messages", messages=listed, totals=totals,
                        sparks=sparks, gap=await admin.store.messages.gap_minutes(ws), draft=text, problems=problems,
                        app_id=ws.app_id)


async def _estimate(admin: Admin, ws: Workspace, message: Message) -> tuple[int, bool]:
    """How many live contacts the audience matches now (roles, event filters, attributes): ``(n, at_least)``."""
    a = message.audience
    if not a.attributes:
        n, _ = await admin.store.messages.audience_contacts(ws, a.roles, a.events, count_only=True)
        return n, False
    _, rows = await admin.store.messages.audience_contacts(ws, a.roles, a.events, count_only=False,
                                                           limit=ESTIMATE_LIMIT)
    n = sum(1 for c in rows if all(check_attribute(x, c).passed for x in a.attributes))
    return n, len(rows) >= ESTIMATE_LIMIT


async def _pick(admin: Admin, ws: Workspace, who: str) -> Contact | None:
    if not who:
        return None
    found = await admin.store.find_contact(ws, contact_id=who) or await admin.store.messages.contact_by_email(ws, who)
    if found is None:
        matches = await admin.store.search.search(ws, who, limit=1)
        found = matches[0] if matches else None
    if found is not None and found.merged_into:
        found = await admin.store.resolve_contact(ws, found.id)
    return found


async def _page(admin: Admin, stored: StoredMessage, *, draft: str | None = None, problems: list[Problem] | None = None,
                status: int = 200) -> Response:
    ws = admin.workspace
    assert ws is not None
    try:
        message: Message | None = parse_message(stored.document)
    except DocumentInvalid:
        message = None
    now = int(time.time())
    days = await admin.store.messages.daily_stats(ws, stored.id, DAYS, now)
    chart = daily_chart([(day, c["sent"]) for day, c in days], noun="message sent")
    totals = (await admin.store.messages.totals(ws)).get(stored.id, {"sent": 0, "shown": 0, "clicked": 0,
                                                                     "dismissed": 0})
    estimate = await _estimate(admin, ws, message) if message else None
    who = admin.request.query_params.get("who", "").strip()[:320]
    page_url = admin.request.query_params.get("page", "").strip()[:2048] or None
    person = await _pick(admin, ws, who)
    decision, based_on = None, None
    if person is not None and message is not None:
        last = await admin.store.events_for(ws, person, limit=1, event_name=message.trigger.event)
        based_on = last[0] if last else None
        event = TrackedEvent(message.trigger.event, now, f"admin-preview:{now}",
                             based_on.metadata if based_on else {}, based_on.metadata_types if based_on else {},
                             page_url=page_url, received_at=now)
        decision = await explain(admin.store, ws, stored, message, person, event, now)
    return admin.render("message_page.html", status_code=status, section="messages", stored=stored, message=message,
                        draft=draft if draft is not None else pretty(stored.document), problems=problems or [],
                        chart=chart, days=[(d, c) for d, c in days if any(c.values())], totals=totals,
                        estimate=estimate, who=who, page_url=page_url or "", person=person, decision=decision,
                        based_on=based_on, states=STATES, app_id=ws.app_id)


@signed_in
async def message_page(admin: Admin) -> Response:
    ws = admin.workspace
    assert ws is not None
    stored = await admin.store.messages.get(ws, admin.request.path_params["key"][:100])
    if stored is None:
        return not_found(admin, "message")
    if admin.request.method == "POST":
        return await _save(admin, stored)
    return await _page(admin, stored)


@signed_in
async def change_state(admin: Admin) -> Response:
    ws = admin.workspace
    assert ws is not None
    key = admin.request.path_params["key"][:100]
    state = admin.field("state", 20)
    if state not in STATES:
        admin.notice("Unknown state.", error=True)
        return admin.redirect(f"/admin/messages/{key}")
    changed = await admin.store.messages.set_state(ws, key, state)
    if changed is None:
        return not_found(admin, "message")
    admin.notice({"live": "Live: events from now on trigger it.", "paused": "Paused: nothing is sent.",
                  "draft": "Back to draft.", "archived": "Archived."}[state])
    return admin.redirect(f"/admin/messages/{key}")


def messages_routes() -> list[BaseRoute]:
    """Mounted under ``/admin`` by ``admin_routes``."""
    return [
        Route("/messages", messages, methods=["GET", "POST"]),
        Route("/messages/{key}", message_page, methods=["GET", "POST"]),
        Route("/messages/{key}/state", change_state, methods=["POST"]),
    ]
