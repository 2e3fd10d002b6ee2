"""Event-triggered messages in the browser (docs/messages.md, docs/protocol.md "Messages"): what the
``events`` and ``ping`` answers carry for the shim's renderer (``snippet/messages.js``), and
``POST /messenger/web/messages/{delivery_id}/{shown|clicked|dismissed}``, which the renderer beacons.

- ``events``: each accepted or duplicate browser event goes through the engine (``messages_for_event``); a
  retried event gets its first delivery back (the shim shows a delivery id once). An event whose name no live
  message uses costs one dict lookup: the contact is looked up only when some event may trigger.
- ``ping`` (a page view): the contact's pending posts and chats (from REST, Segment, Stripe, Intercom's
  ``POST /messages``) are handed over and marked delivered (sent), so another tab's next ping does not get them.
- Everything is text except the ``html`` of a chat sent through Intercom's ``POST /messages``, sanitised by the
  server (``p a b i br``) and rendered by the shim through the same allow-list.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from . import identity
from .errors import ApiError, not_found
from .http_edge import read_json_object
from .messages.engine import may_trigger, messages_for_event, tracked
from .rest_messages import API_MESSAGE_KEY  # Intercom's POST /messages: the one chat with html
from .store import SQLStore
from .store.messages import MARKS, Delivery
from .store.models import Contact, EventResult, NewEvent, Workspace

MAX_PAGE_URL = 2048
# What the browser gets of a delivery's rendered content (never the conversation id or anything internal).
_SHOWN_FIELDS = ("text", "title", "body", "image_url", "button", "banner", "from")


def for_browser(d: Delivery) -> dict[str, Any]:
    """One delivery as the shim's renderer takes it: ``{id, key, kind, …content}``."""
    out: dict[str, Any] = {"id": d.id, "key": d.message_key, "kind": d.kind}
    out.update({k: d.content[k] for k in _SHOWN_FIELDS if k in d.content})
    if d.kind == "chat" and d.message_key == API_MESSAGE_KEY and isinstance(d.content.get("html"), str):
        out["html"] = d.content["html"]
    return out


def page_of(data: dict[str, Any]) -> str | None:
    """The batch's page URL (``location.href``), when it is a plausible one; otherwise none (never an error)."""
    page = data.get("page")
    if isinstance(page, str) and 0 < len(page) <= MAX_PAGE_URL and "\x00" not in page:
        return page
    return None


async def for_batch(store: SQLStore, ws: Workspace, contact_id: str, batch: Sequence[NewEvent],
                    results: Sequence[EventResult], page_url: str | None) -> list[dict[str, Any]]:
    """What to show for a browser batch: the deliveries its stored events (accepted, or duplicates: the same
    delivery again) produce, each once."""
    hits = [e for e, r in zip(batch, results, strict=True) if r.status in ("accepted", "duplicate")
            and await may_trigger(store, ws, e.event_name)]
    if not hits:
        return []
    contact = await store.resolve_contact(ws, contact_id)
    if contact is None:
        return []
    out: dict[int, dict[str, Any]] = {}
    for e in hits:
        for d in await messages_for_event(store, ws, contact, tracked(e, page_url), source="js", page_url=page_url):
            out.setdefault(d.id, for_browser(d))
    return list(out.values())


async def hand_over_pending(store: SQLStore, ws: Workspace, contact: Contact) -> list[dict[str, Any]]:
    """The contact's pending posts and chats, for a ping's answer; marked delivered (sent) as they go. One
    read on a partial index (``message_deliveries_pending``) per ping: REST may name a visitor too."""
    pending = await store.messages.pending_for_contact(ws, contact.id)
    if pending:
        await store.messages.mark_delivered(ws, [d.id for d in pending])
    return [for_browser(d) for d in pending]


async def mark(request: Request) -> Response:
    """``POST /messenger/web/messages/{delivery_id}/{shown|clicked|dismissed}`` with ``{app_id, session}``
    (text/plain, so ``navigator.sendBeacon`` can send it): 204, each mark counted once per delivery. Only the
    contact the delivery went to (or the contact it was merged into) can mark it."""
    from .messenger import store_of, workspace_for  # messenger imports this module

    what = request.path_params["what"]
    raw_id = request.path_params["delivery_id"]
    if what not in MARKS:
        raise not_found("Unknown mark: shown, clicked or dismissed", "what")
    if not raw_id.isdigit() or len(raw_id) > 15:
        raise not_found("Delivery not found", "delivery_id")
    store = store_of(request)
    data = await read_json_object(request)
    ws, cors = await workspace_for(request, data)
    contact_id = identity.read_session(ws.signing_key, data.get("session"))
    if contact_id is None:
        raise ApiError(401, "invalid_identity", "The session token is missing, forged, expired or from another "
                       "workspace", "session")
    delivery = await store.messages.delivery(ws, int(raw_id))
    if delivery is None or not await _same_contact(store, ws, delivery.contact_id, contact_id):
        raise not_found("Delivery not found", "delivery_id")
    await store.messages.mark(ws, delivery.id, what)
    return Response(status_code=204, headers=cors)


async def _same_contact(store: SQLStore, ws: Workspace, a: str, b: str) -> bool:
    if a == b:
        return True
    ca, cb = await store.resolve_contact(ws, a), await store.resolve_contact(ws, b)
    return ca is not None and cb is not None and ca.id == cb.id
