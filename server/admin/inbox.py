"""The inbox: conversations started from the Messenger's contact panel, newest first, with the contact's recent
events beside each one (the product document's "Help Desk (recent events)").

A teammate reads (which marks the conversation read), replies (the visitor sees it in the contact panel on
their next page view, with a badge on the launcher), closes and reopens (recorded in the conversation), and
assigns. Store: ``store.conversations`` (server/store/conversations.py).
"""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..limits import ascii_int
from ..store.conversations import CLOSED, OPEN
from .render import show_metadata
from .routes import Admin, not_found, signed_in

INBOX_PAGE = 50
RECENT_EVENTS = 8
MAX_REPLY = 5000
STATES = {"open": OPEN, "closed": CLOSED, "all": None}


def _conversation_id(admin: Admin) -> int | None:
    raw = admin.request.path_params["conversation_id"]
    return ascii_int(raw, minimum=1)


@signed_in
async def inbox(admin: Admin) -> Response:
    ws = admin.workspace
    assert ws is not None and admin.teammate is not None
    state_name = admin.request.query_params.get("state", "open")
    state_name = state_name if state_name in STATES else "open"
    who = admin.request.query_params.get("assignee", "")
    listing = await admin.store.conversations.inbox(
        ws, state=STATES[state_name], assignee_id=admin.teammate.id if who == "me" else None,
        unassigned=who == "unassigned", limit=INBOX_PAGE)
    counts = await admin.store.conversations.counts(ws)
    return admin.render("inbox.html", section="inbox", conversations=listing, counts=counts, state=state_name,
                        assignee=who)


@signed_in
async def conversation(admin: Admin) -> Response:
    ws = admin.workspace
    assert ws is not None
    cid = _conversation_id(admin)
    found = await admin.store.conversations.conversation(ws, cid) if cid is not None else None
    if found is None:
        return not_found(admin, "conversation")
    conv, parts = found
    await admin.store.conversations.mark_read_by_team(ws, conv.id)
    person = await admin.store.get_contact(ws, conv.owner_id)
    summary = await admin.store.event_summary(ws, person) if person else []
    recent = await admin.store.events_for(ws, person, limit=RECENT_EVENTS) if person else []
    return admin.render("conversation.html", section="inbox", conversation=conv, parts=parts, contact=person,
                        summary=summary, recent=[(e, show_metadata(e.metadata, e.metadata_types)) for e in recent],
                        teammates=await admin.store.teammates())


@signed_in
async def reply(admin: Admin) -> Response:
    ws = admin.workspace
    assert ws is not None and admin.teammate is not None
    cid = _conversation_id(admin)
    body = admin.field("body", MAX_REPLY + 1).strip()
    if cid is None:
        return not_found(admin, "conversation")
    url = f"/admin/inbox/{cid}"
    if not body:
        admin.notice("Write a reply first.", error=True)
        return admin.redirect(url)
    if len(body) > MAX_REPLY:
        admin.notice(f"A reply is at most {MAX_REPLY} characters.", error=True)
        return admin.redirect(url)
    if await admin.store.conversations.reply(ws, cid, admin.teammate.id, body) is None:
        return not_found(admin, "conversation")
    admin.notice("Reply sent: the contact sees it in the Messenger on their next page view.")
    return admin.redirect(url)


@signed_in
async def change_state(admin: Admin) -> Response:
    ws = admin.workspace
    assert ws is not None and admin.teammate is not None
    cid = _conversation_id(admin)
    state = admin.field("state")
    if cid is None or state not in (OPEN, CLOSED):
        return not_found(admin, "conversation")
    changed = await admin.store.conversations.set_state(ws, cid, state, admin.teammate.id)
    if changed:
        admin.notice("Conversation closed." if state == CLOSED else "Conversation reopened.")
    return admin.redirect(f"/admin/inbox/{cid}")


@signed_in
async def assign(admin: Admin) -> Response:
    ws = admin.workspace
    assert ws is not None and admin.teammate is not None
    cid = _conversation_id(admin)
    raw = admin.field("assignee")
    if cid is None:
        return not_found(admin, "conversation")
    assignee = None
    if raw:
        teammates = {str(t.id): t for t in await admin.store.teammates()}
        if raw not in teammates:
            admin.notice("No such teammate.", error=True)
            return admin.redirect(f"/admin/inbox/{cid}")
        assignee = teammates[raw].id
    if await admin.store.conversations.assign(ws, cid, assignee, admin.teammate.id):
        admin.notice("Assigned." if assignee is not None else "Unassigned.")
    return admin.redirect(f"/admin/inbox/{cid}")


def inbox_routes() -> list[BaseRoute]:
    """Mounted under ``/admin`` by ``admin_routes``."""
    return [
        Route("/inbox", inbox, methods=["GET"]),
        Route("/inbox/{conversation_id}", conversation, methods=["GET"]),
        Route("/inbox/{conversation_id}/reply", reply, methods=["POST"]),
        Route("/inbox/{conversation_id}/state", change_state, methods=["POST"]),
        Route("/inbox/{conversation_id}/assign", assign, methods=["POST"]),
    ]
