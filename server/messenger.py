"""The browser-facing endpoints: the shim itself, ``ping`` (boot/update), and ``events``.

Protocol: docs/protocol.md. Identity rules: server/identity.py. Ingest steps: server/ingest.py.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from . import identity, messenger_messages, page_views
from .errors import ApiError, bad_request, not_found
from .http_edge import JSONAnswer, read_json_object, reject_nul, reject_nul_in, set_cors
from .ingest import reported_drops, validate_browser_batch
from .limits import MAX_ATTRIBUTE_LENGTH, MAX_ATTRIBUTES
from .origins import check_origin, cors_headers
from .snippet import shim_for
from .store import SQLStore
from .store.models import AppendRequest, BrowserNames, Contact, Workspace
from .visitor_limit import client_address, new_visitor_limit

# Settings keys that configure the Messenger itself; everything else in boot/update is about the person.
MESSENGER_KEYS = frozenset({
    "app_id", "api_base", "alignment", "custom_launcher_selector", "hide_default_launcher",
    "horizontal_padding", "vertical_padding", "session_duration", "action_color", "background_color",
    "installation_type", "page_title", "hide_notifications", "link_color", "z_index", "theme_mode",
    "messenger_style_id", "region", "widgetUrl", "auth_tokens", "last_request_at",
})
IDENTITY_KEYS = frozenset({"user_id", "email", "user_hash", "intercom_user_jwt", "name", "phone",
                           "created_at"})


def store_of(request: Request) -> SQLStore:
    store: SQLStore = request.app.state.store
    return store


async def workspace_for(request: Request, data: dict[str, Any]) -> tuple[Workspace, dict[str, str]]:
    app_id = data.get("app_id")
    if not isinstance(app_id, str) or not app_id:
        raise ApiError(400, "parameter_not_found", "app_id is required", "app_id")
    reject_nul(app_id, "app_id")
    ws = await store_of(request).workspace_by_app_id(app_id)
    if ws is None:
        raise not_found("Unknown app_id", "app_id")
    cors = check_origin(request, ws)
    set_cors(request, cors)  # from here on, error answers carry them too (http_edge.error_response)
    return ws, cors


async def widget(request: Request) -> Response:
    """``GET /widget/{app_id}``: the shim, as Intercom's loader expects to find it."""
    ws = await store_of(request).workspace_by_app_id(request.path_params["app_id"])
    if ws is None:
        return Response("/* Trailmark: unknown app_id */\n", status_code=404, media_type="text/javascript")
    # The workspace's consent settings are written into the script: the shim needs them before its first
    # cookie or request. Cached 5 minutes: a change reaches browsers within that.
    return Response(shim_for(ws.consent_required, ws.honour_gpc), media_type="text/javascript",
                    headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"})


async def preflight(request: Request) -> Response:
    """CORS preflight, for clients that send ``application/json`` instead of the shim's ``text/plain``."""
    return Response(status_code=204, headers=cors_headers(request.headers.get("origin") or "*"))


def split_settings(user: dict[str, Any], verified: bool = False) -> tuple[dict[str, Any], list[str]]:
    """Custom attributes from boot/update settings: flat values only, bounded; warnings for the rest.
    Attributes that tie the contact to an outside identity are kept only for a verified user."""
    attrs: dict[str, Any] = {}
    warnings: list[str] = []
    for key, value in user.items():
        if key in MESSENGER_KEYS or key in IDENTITY_KEYS or key.startswith("utm_") or key in (
                "company", "companies", "avatar", "language_override", "unsubscribed_from_emails"):
            continue
        if key in identity.SERVER_ONLY_ATTRIBUTES and not verified:
            warnings.append(f"attribute '{key}' dropped: only a verified user (user_hash or JWT) or your "
                            "server (REST API) may set it")
        elif len(attrs) >= MAX_ATTRIBUTES:
            warnings.append(f"attribute '{key}' dropped: more than {MAX_ATTRIBUTES} custom attributes")
        elif value is None or isinstance(value, (bool, int, float)):
            attrs[key[:MAX_ATTRIBUTE_LENGTH]] = value
        elif isinstance(value, str):
            attrs[key[:MAX_ATTRIBUTE_LENGTH]] = value[:MAX_ATTRIBUTE_LENGTH]
        else:
            warnings.append(f"attribute '{key}' dropped: custom attributes must be strings, numbers, "
                            "booleans or null")
    return attrs, warnings


def verify_identity(ws: Workspace, user: dict[str, Any]) -> tuple[str | None, str | None, str]:
    """``(user_id, email, proof)`` for the identity the boot settings claim, after verification.

    Proof is ``jwt``, ``user_hash`` or ``none``. When the workspace enforces verification an unverified
    ``user_id`` is refused (401) and nothing is attached to it. An unverified email alone is still taken, as
    first contact: it makes the current anonymous visitor a lead and never names anyone else (``ping``).
    """
    now = int(time.time())
    secrets = ws.identity_secrets(now)
    jwt = user.get("intercom_user_jwt")
    if jwt is not None:
        claims = identity.verify_jwt(secrets, jwt)
        if claims is None:
            raise ApiError(401, "identity_verification_failed",
                           "intercom_user_jwt is invalid, expired, or lacks a user_id claim", "intercom_user_jwt")
        _refuse_placeholder(claims["user_id"])
        # The token vouches for its claims only: an email beside it in the settings is the user's profile
        # (it never names whom to attach to: the user_id does).
        email = claims.get("email") if isinstance(claims.get("email"), str) else _text(user.get("email"))
        return claims["user_id"], email, "jwt"
    user_id, email = _identifier(user, "user_id"), _identifier(user, "email")
    if user_id is not None:
        # A placeholder is refused outright, before any proof is looked at: a proof computed over
        # "undefined" must never fall back to the email beside it (that would name someone else).
        _refuse_placeholder(user_id)
    if user_id is None and email is None:
        return None, None, "none"
    if user.get("user_hash") is not None:
        if identity.verify_user_hash(secrets, user_id if user_id is not None else email or "", user.get("user_hash")):
            return user_id, email, "user_hash"
        raise ApiError(401, "identity_verification_failed", "user_hash does not match", "user_hash")
    if ws.enforce_identity_verification and user_id is not None:
        raise ApiError(401, "identity_verification_failed",
                       "This workspace enforces identity verification, so a user_id or email without proof is "
                       "refused: compute user_hash (HMAC-SHA256 of the user_id with the workspace's identity "
                       "secret) on your server and boot with it, or send intercom_user_jwt", "user_hash")
    return user_id, email, "none"


def _refuse_placeholder(user_id: str) -> None:
    if identity.is_generic_user_id(user_id):
        raise ApiError(401, "invalid_identity",
                       f"user_id '{user_id[:40]}' looks like a placeholder (an empty user object?), not a user's "
                       "id: nothing was attached. Boot without user_id for anonymous visitors", "user_id")


def _identifier(user: dict[str, Any], field: str) -> str | None:
    """``user_id``/``email`` from the settings: never silently shortened (two long ids must not collide)."""
    value = _text(user.get(field), limit=None)
    if value is not None and len(value) > MAX_ATTRIBUTE_LENGTH:
        raise bad_request(f"{field} is longer than {MAX_ATTRIBUTE_LENGTH} characters", field)
    return value


def _text(value: Any, limit: int | None = MAX_ATTRIBUTE_LENGTH) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        value = str(value)  # float() of a huge JSON integer would overflow
    elif isinstance(value, float):
        value = str(int(value)) if value.is_integer() else str(value)
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()[:limit]


async def current_identity(request: Request, ws: Workspace, data: dict[str, Any],
                           cors: dict[str, str]) -> tuple[str, Contact]:
    """``(visitor_id, contact)`` named by the request's tokens; a fresh visitor when they name nobody
    (within the client address's budget of new visitors: else 429).

    A forged, expired or foreign token reads as absent, so it never attaches anything to anyone.
    """
    store = store_of(request)
    vid = identity.read_device(ws.signing_key, data.get("device"))
    # The device's visitor, or the lead/user it became or was merged into.
    holder = await store.find_contact(ws, visitor_id=vid) if vid is not None else None
    if holder is None or vid is None:
        new_visitor_limit(request).admit(request, cors)
        holder = await store.create_visitor(ws)
        vid = holder.visitor_id
        assert vid is not None
    current = holder
    cid = identity.read_session(ws.signing_key, data.get("session"))
    if cid is not None:
        session_contact = await store.resolve_contact(ws, cid)
        if session_contact is not None:
            current = session_contact
    return vid, current


def identity_answer(ws: Workspace, visitor_id: str, contact: Contact, warnings: list[str],
                    cors: dict[str, str], extra: dict[str, Any] | None = None) -> JSONResponse:
    """The freshly signed tokens the shim keeps in its first-party cookies (docs/protocol.md)."""
    return JSONResponse({
        "type": "ping",
        "device": identity.sign_device(ws.signing_key, visitor_id),
        "session": identity.sign_session(ws.signing_key, contact.id),
        "visitor_id": visitor_id,
        "contact": {"id": contact.id, "role": contact.role},
        "warnings": warnings,
        **(extra or {}),
    }, headers=cors)


async def ping(request: Request) -> Response:
    """Boot/update: resolve who this browser is, identify users, record attributes; hand back tokens."""
    store = store_of(request)
    data = await read_json_object(request)
    ws, cors = await workspace_for(request, data)
    user = data.get("user") or {}
    if not isinstance(user, dict):
        raise bad_request("user must be a JSON object", "user")
    # Identity fields land in text columns (NUL refused); custom attributes are JSON text, where a NUL is
    # the escape "\u0000" and keeps.
    reject_nul_in(user, sorted(IDENTITY_KEYS), "user.")
    warnings: list[str] = []
    user_id, email, proof = verify_identity(ws, user)
    visitor_id, current = await current_identity(request, ws, data, cors)
    if user_id is not None or (email is not None and proof != "none"):
        current = await store.identify_user(ws, current.id, user_id=user_id, email=email, reason="boot",
                                            proof=proof, name=_text(user.get("name")))
    elif email is not None and proof == "none" and current.role != "user":
        # An unverified email from an anonymous visitor (e.g. update({email})) is first contact: a lead.
        current = await store.convert_to_lead(ws, current.id, email=email, name=_text(user.get("name")),
                                              reason="email supplied in the browser", proof="none")
    attrs, attr_warnings = split_settings(user, verified=proof != "none" and current.role == "user")
    warnings += attr_warnings
    await store.touch_contact(ws, current.id, attrs, name=_text(user.get("name")))
    # Team replies the contact has not read: the launcher's badge. A visitor has written nothing yet.
    unread = 0 if current.role == "visitor" else await store.conversations.unread_for_contact(ws, current.id)
    # Whether the shim records page views: it stops when the workspace has switched them off.
    extra: dict[str, Any] = {"unread": unread, "page_views": ws.page_views}
    # A page view: the posts and chats waiting for it (server-side events, Intercom's POST /messages).
    pending = await messenger_messages.hand_over_pending(store, ws, current)
    if pending:
        extra["messages"] = pending
    return identity_answer(ws, visitor_id, current, warnings, cors, extra=extra)


async def events(request: Request) -> Response:
    """A batch of the shim's events, all for the contact the session token names."""
    store = store_of(request)
    data = await read_json_object(request)
    ws, cors = await workspace_for(request, data)
    contact_id = identity.read_session(ws.signing_key, data.get("session"))
    if contact_id is None:
        raise ApiError(401, "invalid_identity",
                       "The session token is missing, forged, expired or from another workspace; ping again",
                       "session")
    batch = validate_browser_batch(data, strict=ws.strict_metadata)
    events = [e for _, e in batch.events]
    views = [v for _, v in batch.page_views]
    # Page views are stored apart from events (server/page_views.py); both are committed before the answer, and
    # queued together, so one transaction (one commit) usually holds both. Not always (a batch retried job by
    # job, the batch size limit): page views may then be stored beside an events error; the shim resends the
    # batch and they count as duplicates.
    appended = AppendRequest(ws.id, contact_id, "js", events, browser=browser_names(request, ws))
    if events and views:
        results, view_results = await asyncio.gather(store.append_events(appended),
                                                     page_views.record(store, ws, contact_id, views))
    elif events:
        results, view_results = await store.append_events(appended), []
    else:
        results, view_results = [], await page_views.record(store, ws, contact_id, views)
    raw_events = data["events"]
    body: list[dict[str, Any]] = [{}] * len(raw_events)
    for (i, event), result in zip(batch.events, results, strict=True):
        item: dict[str, Any] = {"id": raw_events[i]["id"], "status": result.status}
        if result.reason:
            item["reason"] = result.reason
        dropped = reported_drops(event)
        if dropped:
            item["dropped_metadata"] = dropped
        body[i] = item
    for (i, _), result in zip(batch.page_views, view_results, strict=True):
        body[i] = {"id": raw_events[i]["id"], "status": result.status, "type": page_views.PAGE_VIEW_TYPE,
                   **({"reason": result.reason} if result.reason else {})}
    answer: dict[str, Any] = {"type": "event.batch", "results": body}
    shown = await messenger_messages.for_batch(store, ws, contact_id, events, results,
                                               messenger_messages.page_of(data))
    if shown:
        answer["messages"] = shown
    return JSONAnswer(answer, cors)


def browser_names(request: Request, ws: Workspace) -> BrowserNames:
    """The budgets for new event names from this browser (server/store/name_policy.py)."""
    return BrowserNames(client_address(request), ws.browser_new_names_per_contact, ws.browser_new_names_per_address,
                        frozenset(ws.browser_event_names), users_verified=ws.enforce_identity_verification)
