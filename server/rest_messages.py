"""Messages over REST (Bearer token): Trailmark's own resource and Intercom's ``POST /messages``.

``/trailmark/messages`` (Trailmark's path, so Intercom's ``/messages`` stays Intercom's):
``GET`` lists the documents (as ``trailmark message list --json``), ``POST`` applies one document or
``{"messages": [...]}`` (idempotent by key), ``GET/PUT /trailmark/messages/{key}`` reads or creates/replaces
one. An invalid document is 422 with one error per bad field, its ``field`` the JSON pointer, and nothing applied.

``POST /messages`` (Intercom's admin-initiated in-app message): a chat from a teammate to a contact, shown on
the contact's next page view, and a comment in the contact's conversation (so the inbox has it and the
contact can reply). Its HTML body keeps only ``p a b i br`` (``content.sanitize_html``).
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from . import openapi_messages  # noqa: F401  (describes these endpoints in /openapi.json)
from .errors import ApiError, bad_request, missing, not_found
from .http_edge import path_param, read_json
from .messages.content import html_to_text, sanitize_html
from .messages.document import DocumentInvalid, Message, Problem, parse_message, parse_messages
from .messages.engine import PENDING_DAYS
from .rest_auth import rest_workspace
from .store import SQLStore
from .store.models import Contact, Workspace

MAX_BODY = 10_000
API_MESSAGE_KEY = "api-messages"
# The message every POST /messages delivery belongs to (its stats are those of the API's chats). Archived: it
# is never triggered by an event.
API_MESSAGE = {"key": API_MESSAGE_KEY, "name": "Sent with POST /messages", "kind": "chat", "state": "archived",
               "trigger": {"event": "api-message"}, "frequency": {"max": None},
               "content": {"text": "A teammate's message sent through the REST API"}, "chat": {"from": "Team"}}


def _store(request: Request) -> SQLStore:
    store: SQLStore = request.app.state.store
    return store


def invalid(exc: DocumentInvalid) -> ApiError:
    """422, one error per problem, ``field`` = its JSON pointer."""
    first, *rest = exc.problems
    error = ApiError(422, "parameter_invalid", first.message, first.pointer or "/")
    for p in rest:
        error.also("parameter_invalid", p.message, p.pointer or "/")
    return error


async def _apply(store: SQLStore, ws: Workspace, m: Message) -> tuple[str, dict[str, Any]]:
    applied = await store.messages.apply(ws, key=m.key, kind=m.kind, state=m.state, event_name=m.trigger.event,
                                         document=m.document)
    return applied.outcome, applied.message.document


async def list_messages(request: Request) -> Response:
    ws = await rest_workspace(request)
    stored = await _store(request).messages.list(ws)
    return JSONResponse({"type": "list", "data": [m.document for m in stored], "total_count": len(stored)})


async def apply_messages(request: Request) -> Response:
    ws = await rest_workspace(request)
    data = await read_json(request)
    batch = set(data) == {"messages"}
    if batch and not isinstance(data["messages"], list):
        raise ApiError(422, "parameter_invalid", "messages must be a list of message documents", "/messages")
    try:
        messages = parse_messages(data["messages"]) if batch else [parse_message(data)]
    except DocumentInvalid as exc:
        if batch:
            exc = DocumentInvalid([Problem("/messages" + p.pointer, p.message) for p in exc.problems])
        raise invalid(exc) from None
    results = []
    for m in messages:
        outcome, doc = await _apply(_store(request), ws, m)
        results.append({"key": m.key, "outcome": outcome, "message": doc})
    return JSONResponse({"type": "list", "data": results, "total_count": len(results)})


async def get_message(request: Request) -> Response:
    ws = await rest_workspace(request)
    stored = await _store(request).messages.get(ws, path_param(request, "key"))
    if stored is None:
        raise not_found("Message not found", "key")
    return JSONResponse(stored.document)


async def put_message(request: Request) -> Response:
    ws = await rest_workspace(request)
    key = path_param(request, "key")
    data = await read_json(request)
    if data.get("key", key) != key:
        raise ApiError(422, "parameter_invalid", f"the document's key must be {key!r} (the path's)", "/key")
    try:
        m = parse_message({**data, "key": key})
    except DocumentInvalid as exc:
        raise invalid(exc) from None
    outcome, doc = await _apply(_store(request), ws, m)
    return JSONResponse(doc, status_code=201 if outcome == "created" else 200)


# ------------------------------------------------------------------------------------------ Intercom's POST /messages
def _obj(data: dict[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name)
    if value is None:
        raise missing(name)
    if not isinstance(value, dict):
        raise bad_request(f"{name} must be an object", name)
    return value


def _ident(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip() or len(str(value)) > 255:
        raise bad_request(f"{field} must be a non-empty string", field)
    return str(value).strip()


async def _recipient(store: SQLStore, ws: Workspace, to: dict[str, Any]) -> Contact:
    kind = to.get("type", "user")
    if kind not in ("user", "contact", "lead"):
        raise bad_request("to.type must be user, lead or contact", "to.type")
    cid, user_id, email = _ident(to.get("id"), "to.id"), _ident(to.get("user_id"), "to.user_id"), \
        _ident(to.get("email"), "to.email")
    if cid is None and user_id is None and email is None:
        raise missing("to.id", "to needs id, user_id or email")
    found: Contact | None = None
    if cid is not None:
        found = await store.find_contact(ws, contact_id=cid)
    elif user_id is not None:
        found = await store.find_contact(ws, user_id=user_id)
    elif email is not None:
        found = await store.messages.contact_by_email(ws, email)
    if found is None or found.role == "visitor":
        raise not_found("User Not Found", "to")
    return found


async def create_intercom_message(request: Request) -> Response:
    """``POST /messages`` ``{message_type: "inapp", body, from: {type: "admin", id}, to: {type, id|user_id|email}}``."""
    store = _store(request)
    ws = await rest_workspace(request)
    data = await read_json(request)
    message_type = data.get("message_type", "inapp")
    if message_type != "inapp":
        raise ApiError(422, "parameter_invalid", "only in-app messages (message_type inapp) are supported: "
                                                 "Trailmark sends no email", "message_type")
    body = data.get("body")
    if not isinstance(body, str) or not body.strip():
        raise missing("body", "body is required (a little HTML: p, a, b, i, br)")
    if len(body) > MAX_BODY:
        raise bad_request(f"body is longer than {MAX_BODY} characters", "body")
    sender = _obj(data, "from")
    if sender.get("type", "admin") != "admin":
        raise bad_request("from.type must be admin", "from.type")
    admin_id = _ident(sender.get("id"), "from.id")
    teammate = await store.teammate_by_id(int(admin_id)) if admin_id and admin_id.isdigit() and \
        len(admin_id) < 16 else None
    if teammate is None:
        raise not_found("Admin Not Found", "from.id")
    contact = await _recipient(store, ws, _obj(data, "to"))
    clean = sanitize_html(body)
    text = html_to_text(clean)
    if not text:
        raise bad_request("body has no text once sanitised", "body")
    conversation_id, part_id = await store.conversations.start_from_teammate(ws, contact.id, teammate.id, text)
    api = await store.messages.get(ws, API_MESSAGE_KEY)
    if api is None:
        m = parse_message(API_MESSAGE)
        api = (await store.messages.apply(ws, key=m.key, kind=m.kind, state=m.state, event_name=m.trigger.event,
                                          document=m.document)).message
    delivery, _ = await store.messages.record_delivery(
        ws, api, contact.id, f"api:{part_id}:{uuid.uuid4().hex}", source="rest", pending_days=PENDING_DAYS,
        content={"kind": "chat", "message": API_MESSAGE_KEY, "text": text, "html": clean, "from": teammate.email,
                 "conversation_id": conversation_id})
    assert delivery is not None
    # subject: Intercom's answers always carry one (an in-app message's is its body's text when none is sent).
    subject = data.get("subject")
    return JSONResponse({
        "type": "admin_message", "id": str(delivery.id), "created_at": delivery.created_at, "message_type": "inapp",
        "subject": subject[:MAX_BODY] if isinstance(subject, str) else text, "body": clean,
        "conversation_id": str(conversation_id),
        "owner": {"type": "admin", "id": str(teammate.id), "email": teammate.email, "name": teammate.email},
    })


def routes() -> list[BaseRoute]:
    """Mounted by ``app.routes()``."""
    return [
        Route("/trailmark/messages", list_messages, methods=["GET"]),
        Route("/trailmark/messages", apply_messages, methods=["POST"]),
        Route("/trailmark/messages/{key}", get_message, methods=["GET"]),
        Route("/trailmark/messages/{key}", put_message, methods=["PUT"]),
        Route("/messages", create_intercom_message, methods=["POST"]),
    ]
