"""The Messenger's conversations, the contact's side: writing from the contact panel, reading the thread.

``POST /messenger/web/conversations`` — a message from the panel. An anonymous visitor must leave an email
and becomes a lead (first contact); a lead or user who is known by email writes without one. Every message
is kept: it joins the contact's open conversation, or starts one (store/conversations.py). The optional
``client_id`` makes a resend (a retry, a second tab) count once.

``POST /messenger/web/thread`` — the contact's recent conversations with the team's replies, marked read
(the shim's launcher badge counts the unread ones from the ping answer). Protocol: docs/protocol.md.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from . import identity
from .errors import bad_request
from .http_edge import read_json_object, reject_nul_in
from .limits import EMAIL
from .messenger import current_identity, identity_answer, store_of, workspace_for
from .notify import notify_contact_message
from .store import SQLStore
from .store.conversations import Part
from .store.models import Contact, Workspace

MAX_MESSAGE_LENGTH = 5000
CLIENT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def _email(value: Any, required: bool) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip() and not required):
        if required:
            raise bad_request("Please enter a valid email address", "email")
        return None
    if not isinstance(value, str) or not EMAIL.match(value.strip()) or len(value) > 254:
        raise bad_request("Please enter a valid email address", "email")
    return value.strip()


def _message(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise bad_request("Please write a message", "message")
    if len(value) > MAX_MESSAGE_LENGTH:
        raise bad_request(f"The message is longer than {MAX_MESSAGE_LENGTH} characters", "message")
    return value.strip()


def _client_id(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not CLIENT_ID.match(value):
        raise bad_request("client_id must be 1-64 letters, digits or . _ : -", "client_id")
    return value


async def conversations(request: Request) -> Response:
    store = store_of(request)
    data = await read_json_object(request)
    ws, cors = await workspace_for(request, data)  # from here on, error answers carry the CORS headers
    reject_nul_in(data, ("email", "message"))  # both land in text columns
    message, client_id = _message(data.get("message")), _client_id(data.get("client_id"))
    known = await known_contact(store, ws, data)
    email = _email(data.get("email"), required=known is None or known.email is None)
    # Only now, every check passed, may a visitor be created: a refused request stores nothing.
    visitor_id, current = await current_identity(request, ws, data, cors)
    contact = current
    if current.role == "visitor" or (email and not current.email):
        # First contact: the visitor becomes a lead (idempotent: a second tab finds the same lead).
        contact = await store.convert_to_lead(ws, current.id, email=email, reason="contact form in the Messenger",
                                              proof="none")
    added = await store.conversations.add_contact_message(ws, contact.id, message, client_id)
    if not added.duplicate:
        notify_contact_message(request.app, ws, contact, added, message)
    return identity_answer(ws, visitor_id, contact, [], cors,
                           extra={"conversation": {"id": str(added.conversation_id),
                                                   "new": added.new_conversation, "duplicate": added.duplicate}})


async def known_contact(store: SQLStore, ws: Workspace, data: dict[str, Any]) -> Contact | None:
    """The contact ``current_identity`` would answer with (session first, then device), without creating
    a visitor when the tokens name nobody: ``None`` then."""
    cid = identity.read_session(ws.signing_key, data.get("session"))
    if cid is not None and (contact := await store.resolve_contact(ws, cid)) is not None:
        return contact
    vid = identity.read_device(ws.signing_key, data.get("device"))
    return await store.find_contact(ws, visitor_id=vid) if vid is not None else None


def _part_json(part: Part, contact_id: str) -> dict[str, Any]:
    mine = part.author_type == "contact"
    name = None if mine else (part.author_name or "").split("@")[0].replace(".", " ").title() or "Team"
    return {"id": str(part.id), "from": "you" if mine else "team", "name": name, "body": part.body,
            "created_at": part.created_at}


async def thread(request: Request) -> Response:
    store = store_of(request)
    data = await read_json_object(request)
    ws, cors = await workspace_for(request, data)
    contact_id = identity.read_session(ws.signing_key, data.get("session"))
    contact = await store.resolve_contact(ws, contact_id) if contact_id else None
    if contact is None:
        return JSONResponse({"type": "thread", "conversations": [], "unread": 0, "email_known": False},
                            headers=cors)
    found, parts = await store.conversations.thread_for_contact(ws, contact.id)
    return JSONResponse({
        "type": "thread",
        "email_known": contact.email is not None,
        "unread": 0,
        "conversations": [{"id": str(c.id), "state": c.state,
                           "parts": [_part_json(p, contact.id) for p in parts[c.id]]} for c in found],
    }, headers=cors)
