"""A Segment-compatible source: Segment's HTTP tracking API, so Segment, RudderStack and analytics-node
clients (or a Segment "Webhook"/HTTP destination) can send to Trailmark by changing the host.

    POST /v1/track | /v1/page | /v1/screen | /v1/identify | /v1/alias | /v1/group   one message
    POST /v1/batch (and its older name /v1/import)                                   {"batch": [...]}
    POST /v1/t | /v1/p | /v1/s | /v1/i | /v1/a | /v1/g, /v1/b                        analytics.js's short paths
    OPTIONS /v1/*                                                                     CORS preflight

Segment's browser library (analytics.js, ``@segment/analytics-next``) posts to the one-letter paths (the
type's first letter; ``b`` for its batching mode) from the page's origin, with a ``text/plain`` JSON body
holding ``writeKey`` and a Basic ``Authorization`` header: so every answer, errors included, carries CORS
headers, and the preflight is answered for any origin (the workspace is not known before the key is read);
the POST is then refused (403) when its Origin is not in the workspace's allowed origins, as the
Messenger's endpoints do (``origins.check_origin``).

Auth: HTTP Basic with the write key as the user name and an empty password (what Segment's libraries
send), or ``writeKey`` in the body. The write key is the workspace's Segment write key
(``trailmark segment write-key``: write-only, fine to ship in a browser) or its REST access token (a
server-side credential). In a workspace that enforces identity verification, the browser-safe write key
writes anonymous data only: a ``userId`` is not trusted (``trusted_identity``), see ``contact_for``.

Steps, as for every source: ``authenticate`` → ``read_message`` (shape, ids, timestamp, then
``ingest.validate_event``: the same metadata rules as every other path) → ``contact_for`` (anonymousId →
visitor, userId → user, both → identify) → ``persist`` (``store.append_events``; ``messageId`` is the
dedupe key, so a retried message counts once). A whole single call, or each message of a batch, is
checked before anything is written. See docs/sources.md for the mapping.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .. import identity
from ..domain_errors import DomainError
from ..errors import ApiError, api_error, bad_request, missing, unauthorized
from ..http_edge import json_object, read_body, set_cors
from ..ingest import read_created_at, reported_drops, validate_event
from ..limits import EMAIL, MAX_ATTRIBUTE_LENGTH, MAX_ATTRIBUTES, MAX_SAFE_INT
from ..messages.engine import for_server_events
from ..metadata import CONTROL_CHARS
from ..origins import check_origin, cors_headers
from ..store import SQLStore
from ..store.models import USER, VISITOR, AppendRequest, Contact, NewEvent, Workspace

# Segment's documented limits ("32KB per call, 500KB per batch request"): clients built for Segment
# already stay under them.
MAX_MESSAGE_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_ID_LENGTH = 255
MAX_MESSAGE_ID_LENGTH = 200
EVENT_KINDS = ("track", "page", "screen")
KINDS = ("track", "page", "screen", "identify", "alias", "group")
# analytics.js posts each call to the first letter of its type (and a batch to /v1/b).
SHORT_KINDS = {kind[0]: kind for kind in KINDS}
# What analytics.js sends besides the CORS-safelisted ones: Basic auth with the write key, its retry count.
BROWSER_HEADERS = "Authorization, Content-Type, X-Retry-Count"
PAGE_EVENT, SCREEN_EVENT = "viewed-page", "viewed-screen"
# Page fields first, so they survive the 20-key limit ahead of custom properties.
PAGE_FIELDS = ("url", "title", "path", "referrer", "search")
SOURCE = "segment"
PROOF = "write_key"  # how the identity in merges.proof was vouched for: the caller holds the write key

# Field names in errors: ours (validate_event's) → Segment's.
_FIELD_NAMES = {"event_name": "event", "created_at": "timestamp", "metadata": "properties"}


@dataclass
class Message:
    """One Segment message that passed validation and waits to be applied."""

    kind: str
    user_id: str | None
    anonymous_id: str | None
    event: NewEvent | None = None
    email: str | None = None
    name: str | None = None
    phone: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    previous_id: str | None = None
    dropped: list[dict[str, str]] = field(default_factory=list)


# ---------------------------------------------------------------- steps
@dataclass(frozen=True)
class Caller:
    """The workspace a credential names, and whether the identities it sends may be trusted: always with
    the server-side access token, with the browser-safe write key only where the workspace does not enforce
    identity verification."""

    workspace: Workspace
    server_side: bool  # the REST access token: never ships in a browser

    @property
    def trusted_identity(self) -> bool:
        return self.server_side or not self.workspace.enforce_identity_verification


async def authenticate(request: Request, body: dict[str, Any] | None) -> Caller:
    """The caller named by the write key: Basic auth user name, else the body's ``writeKey``."""
    store: SQLStore = request.app.state.store
    key = None
    header = request.headers.get("authorization")
    if header:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            raise unauthorized("Write key invalid: send HTTP Basic auth with the write key as the user name")
        try:
            key = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            raise unauthorized("Write key invalid: malformed Basic credentials") from None
    elif body is not None and isinstance(body.get("writeKey"), str):
        key = body["writeKey"]
    if not key:
        raise unauthorized("Write key missing: send HTTP Basic auth with the write key as the user name")
    found = await store.workspace_by_write_key(key)
    if found is None:
        raise unauthorized("Write key invalid")
    ws, server_side = found
    return Caller(ws, server_side)


def _id(raw: dict[str, Any], key: str, prefix: str, limit: int = MAX_ID_LENGTH) -> str | None:
    """Segment ids are strings; numbers are accepted (as analytics libraries do) and stringified."""
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise bad_request(f"{key} must be a string", prefix + key)
    if isinstance(value, float):
        value = str(int(value)) if value.is_integer() else str(value)
    text = str(value).strip()
    if not text:
        return None
    if CONTROL_CHARS.search(text):
        raise bad_request(f"{key} must not contain control characters", prefix + key)
    if len(text) > limit:
        raise bad_request(f"{key} is longer than {limit} characters", prefix + key)
    return text


def parse_time(value: Any, field: str) -> float:
    """ISO-8601 (Segment's format) → unix seconds; unix seconds are accepted too."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise bad_request(f"{field} must be an ISO-8601 date string", field)
    if isinstance(value, (int, float)):
        return float(value)
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise bad_request(f"{field} must be an ISO-8601 date string", field) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def read_timestamp(raw: dict[str, Any], prefix: str, now: int, sent_at: Any = None) -> int:
    """``timestamp``; else ``originalTimestamp`` corrected for the device's clock skew with ``sentAt``
    (what Segment does: receivedAt − (sentAt − originalTimestamp)); else now."""
    if raw.get("timestamp") is not None:
        value = parse_time(raw["timestamp"], prefix + "timestamp")
    elif raw.get("originalTimestamp") is not None:
        value = parse_time(raw["originalTimestamp"], prefix + "originalTimestamp")
        sent = raw.get("sentAt", sent_at)
        if sent is not None:
            value = now - (parse_time(sent, prefix + "sentAt") - value)
    else:
        return now
    if not math.isfinite(value):  # 1e308 - -1e308: finite numbers can still add up to infinity
        raise bad_request("timestamp is out of range", prefix + "timestamp")
    return read_created_at(int(value), now, prefix + "timestamp")


def _object(raw: dict[str, Any], key: str, prefix: str) -> dict[str, Any]:
    value = raw.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_request(f"{key} must be a JSON object", prefix + key)
    return value


def page_metadata(raw: dict[str, Any], properties: dict[str, Any], prefix: str) -> dict[str, Any]:
    """``viewed-page`` metadata: the page's name, url, title, path, referrer, search (from properties,
    else ``context.page``), then the other properties."""
    page = _object(_object(raw, "context", prefix), "page", prefix + "context.")
    out: dict[str, Any] = {}
    for key in ("name", "category"):
        if isinstance(raw.get(key), str) and raw[key].strip():
            out[key] = raw[key]
    for key in PAGE_FIELDS:
        value = properties.get(key, page.get(key))
        if value not in (None, ""):
            out[key] = value
    for key, value in properties.items():
        if key not in out and not (key in PAGE_FIELDS and value in (None, "")):  # analytics.js sends referrer ""
            out[key] = value
    return out


def price_from_revenue(properties: dict[str, Any]) -> dict[str, Any]:
    """Segment's e-commerce spec sends ``revenue`` in currency units (dollars) and ``currency``; Trailmark
    also keeps it as a monetary amount ``price`` (cents), as Intercom's Segment destination does."""
    revenue = properties.get("revenue")
    if isinstance(revenue, bool) or not isinstance(revenue, (int, float)) or "price" in properties or revenue < 0:
        return properties
    if revenue * 100 > MAX_SAFE_INT:  # no price (1e308 dollars would overflow to infinity cents)
        return properties
    currency = properties.get("currency")
    currency = currency if isinstance(currency, str) and len(currency) == 3 else "usd"
    return {**properties, "price": {"amount": round(revenue * 100), "currency": currency.lower()}}


def read_traits(traits: dict[str, Any], msg: Message) -> None:
    """``identify`` traits → email, name, phone and flat custom attributes; the rest is dropped, with a
    reason (custom attributes hold strings, numbers, booleans and null, as the Messenger's do)."""
    for key, value in traits.items():
        if isinstance(value, str) and "\x00" in value:
            msg.dropped.append({"key": key, "reason": "contains a NUL character"})
        elif key == "email":
            if isinstance(value, str) and EMAIL.match(value.strip()):
                msg.email = value.strip()[:MAX_ATTRIBUTE_LENGTH]
            elif value is not None:
                msg.dropped.append({"key": key, "reason": "not a valid email address"})
        elif key in ("name", "phone"):
            if isinstance(value, str) and value.strip():
                setattr(msg, key, value.strip()[:MAX_ATTRIBUTE_LENGTH])
        elif key in ("firstName", "lastName", "first_name", "last_name"):
            continue  # folded into name below
        elif len(msg.attributes) >= MAX_ATTRIBUTES:
            msg.dropped.append({"key": key, "reason": f"more than {MAX_ATTRIBUTES} custom attributes"})
        elif value is None or isinstance(value, (bool, int, float)):
            msg.attributes[key[:MAX_ATTRIBUTE_LENGTH]] = value
        elif isinstance(value, str):
            msg.attributes[key[:MAX_ATTRIBUTE_LENGTH]] = value[:MAX_ATTRIBUTE_LENGTH]
        else:
            msg.dropped.append({"key": key, "reason": "custom attributes must be strings, numbers, booleans or null"})
    if msg.name is None:
        first = traits.get("firstName", traits.get("first_name"))
        last = traits.get("lastName", traits.get("last_name"))
        parts = [p.strip() for p in (first, last) if isinstance(p, str) and p.strip() and "\x00" not in p]
        if parts:
            msg.name = " ".join(parts)[:MAX_ATTRIBUTE_LENGTH]


def dedupe_key(raw: dict[str, Any], kind: str, message_id: str | None, created_at: int) -> str:
    """``s:<messageId>``; without a messageId, a hash of the message (so an identical retry still counts
    once)."""
    if message_id is not None:
        return "s:" + message_id
    canonical = json.dumps({"k": kind, "t": created_at, "u": raw.get("userId"), "a": raw.get("anonymousId"),
                            "e": raw.get("event") or raw.get("name"), "p": raw.get("properties")},
                           sort_keys=True, default=str)
    return "s:h:" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _segment_fields(err: ApiError, prefix: str) -> ApiError:
    """Name fields as the Segment payload does (``event``, ``properties``) in validate_event's errors."""
    for item in err.errors:
        f = item.get("field")
        if isinstance(f, str) and f.startswith(prefix):
            head, dot, rest = f[len(prefix):].partition(".")
            item["field"] = prefix + _FIELD_NAMES.get(head, head) + dot + rest
    return err


def read_message(raw: Any, *, kind: str | None, strict: bool, now: int, prefix: str = "",
                 sent_at: Any = None) -> Message:
    """Check one message; return it, or raise the ApiError that refuses it. Writes nothing."""
    if not isinstance(raw, dict):
        raise bad_request("each message must be a JSON object", prefix.rstrip(".") or None)
    if kind is None:
        kind = raw.get("type")
        if not isinstance(kind, str) or kind not in KINDS:
            raise bad_request(f"type must be one of {', '.join(KINDS)}", prefix + "type")
    user_id, anonymous_id = _id(raw, "userId", prefix), _id(raw, "anonymousId", prefix)
    if kind == "alias":
        previous = _id(raw, "previousId", prefix)
        if user_id is None or previous is None:
            raise missing(prefix + ("userId" if user_id is None else "previousId"),
                          "alias needs userId and previousId")
        return Message(kind, user_id, None, previous_id=previous)
    if user_id is None and anonymous_id is None:
        raise missing(prefix + "userId", "userId or anonymousId is required")
    message_id = _id(raw, "messageId", prefix, MAX_MESSAGE_ID_LENGTH)
    created_at = read_timestamp(raw, prefix, now, sent_at)
    msg = Message(kind, user_id, anonymous_id)
    if kind == "identify":
        read_traits(_object(raw, "traits", prefix), msg)
        return msg
    if kind == "group":
        return msg
    properties = _object(raw, "properties", prefix)
    if kind == "track":
        if raw.get("event") is None:
            raise missing(prefix + "event", "event is required")
        name, metadata = raw["event"], price_from_revenue(properties)
    elif kind == "page":
        name, metadata = PAGE_EVENT, page_metadata(raw, properties, prefix)
    else:
        name = SCREEN_EVENT
        metadata = ({"name": raw["name"]} if isinstance(raw.get("name"), str) and raw["name"].strip() else {})
        metadata.update({k: v for k, v in properties.items() if k not in metadata})
    try:
        msg.event = validate_event({"event_name": name, "created_at": created_at, "metadata": metadata},
                                   strict=strict, now=now, dedupe_key=dedupe_key(raw, kind, message_id, created_at),
                                   field_prefix=prefix)
    except ApiError as err:
        raise _segment_fields(err, prefix) from None
    msg.dropped = reported_drops(msg.event)
    return msg


UNTRUSTED_USER_ID = ("userId ignored: this workspace enforces identity verification and the write key may ship "
                     "in browsers; send users' messages from your server with the REST access token")


def distrust_user_id(msg: Message) -> str | None:
    """For a caller whose identities are not trusted: drop the ``userId`` so the message is anonymous.
    Returns the warning to report, or raises 403 when nothing anonymous is left to attach it to."""
    if msg.kind == "alias" or (msg.user_id is not None and msg.anonymous_id is None):
        raise ApiError(403, "identity_verification_required", UNTRUSTED_USER_ID, "userId")
    if msg.user_id is None:
        return None
    msg.user_id = None
    return UNTRUSTED_USER_ID


async def contact_for(store: SQLStore, ws: Workspace, msg: Message) -> Contact | None:
    """anonymousId → its visitor (created if new); userId → the user with that external id (created if
    new: Segment's identify and track create users); both → the visitor is identified as that user
    (``store.identify_user``: converted in place, or merged into the existing user). Untrusted callers
    never get here with a userId (``distrust_user_id``)."""
    if msg.kind == "alias":
        assert msg.previous_id is not None and msg.user_id is not None
        previous = await store.find_contact(ws, visitor_id=msg.previous_id)
        if previous is None or previous.role == USER:
            return None  # aliasing two user ids: Trailmark never merges two users
        return await store.identify_user(ws, previous.id, user_id=msg.user_id, email=None,
                                         reason="segment alias", proof=PROOF)
    if msg.user_id is None:
        assert msg.anonymous_id is not None
        contact = await store.visitor_for(ws, msg.anonymous_id)
        if msg.kind == "identify" and msg.email and contact.role == VISITOR:
            # A visitor who gave an email is a lead (as after the Messenger's contact panel).
            contact = await store.convert_to_lead(ws, contact.id, email=msg.email, name=msg.name,
                                                  reason="segment identify", proof=PROOF)
        return contact
    if msg.anonymous_id is None:
        return await store.user_for(ws, msg.user_id)
    visitor = await store.visitor_for(ws, msg.anonymous_id)
    if visitor.role == USER:
        if visitor.external_id == msg.user_id:
            return visitor
        return await store.user_for(ws, msg.user_id)  # this device belonged to another user: never merge users
    return await store.identify_user(ws, visitor.id, user_id=msg.user_id, email=msg.email, name=msg.name,
                                     reason=f"segment {msg.kind}", proof=PROOF)


async def persist(store: SQLStore, caller: Caller, messages: list[tuple[int, Message]]) -> dict[int, Any]:
    """Apply messages in order (identity first, so a batch's identify helps its later tracks), then store
    their events, one ``AppendRequest`` per contact (the writer commits them together). Returns, per
    index, a result dict or an ApiError."""
    ws = caller.workspace
    results: dict[int, Any] = {}
    warnings: dict[int, str] = {}
    per_contact: dict[str, list[tuple[int, NewEvent]]] = defaultdict(list)
    contacts: dict[str, Contact] = {}
    for index, msg in messages:
        if msg.kind == "group":
            results[index] = {"status": "ignored"}  # companies are not tracked by Trailmark
            continue
        try:
            if not caller.trusted_identity and (warning := distrust_user_id(msg)):
                warnings[index] = warning
            contact = await contact_for(store, ws, msg)
        except ApiError as err:
            results[index] = err
            continue
        except DomainError as err:
            results[index] = api_error(err)
            continue
        # An untrusted caller never rewrites a user's profile (an anonymousId is only as secret as a cookie).
        may_write_traits = caller.trusted_identity or (contact is not None and contact.role != USER)
        if not caller.server_side:
            for key in identity.SERVER_ONLY_ATTRIBUTES & msg.attributes.keys():
                del msg.attributes[key]
                msg.dropped.append({"key": key, "reason": "only a server-side credential may set it"})
        if (contact is not None and msg.kind == "identify" and may_write_traits
                and (msg.attributes or msg.email or msg.name or msg.phone)):
            await store.update_contact_traits(ws, contact.id, email=msg.email, name=msg.name, phone=msg.phone,
                                              attributes=msg.attributes)
        if msg.event is not None and contact is not None:
            per_contact[contact.id].append((index, msg.event))
            contacts[contact.id] = contact
        else:
            results[index] = {"status": "ignored" if contact is None else "identified"}
    contact_ids = list(per_contact)
    outcomes = await asyncio.gather(
        *(store.append_events(AppendRequest(ws.id, cid, SOURCE, [e for _, e in per_contact[cid]]))
          for cid in contact_ids), return_exceptions=True)
    for cid, outcome in zip(contact_ids, outcomes, strict=True):
        for (index, _), result in zip(per_contact[cid], outcome if isinstance(outcome, list) else [], strict=False):
            results[index] = {"status": result.status, **({"reason": result.reason} if result.reason else {})}
        if isinstance(outcome, list):  # posts and chats wait for the contact's next page view (never banners)
            await for_server_events(store, ws, contacts[cid], [e for _, e in per_contact[cid]], outcome,
                                    source=SOURCE)
        if isinstance(outcome, DomainError):
            for index, _ in per_contact[cid]:
                results[index] = api_error(outcome)
        elif isinstance(outcome, BaseException):
            raise outcome
    for index, warning in warnings.items():
        if isinstance(results.get(index), dict):
            results[index]["warning"] = warning
    return results


# ---------------------------------------------------------------- endpoints
def browser_cors(origin: str) -> dict[str, str]:
    """CORS headers for Segment's browser library: the Messenger's, allowing its request headers too."""
    return {**cors_headers(origin), "Access-Control-Allow-Headers": BROWSER_HEADERS}


async def preflight(request: Request) -> Response:
    """``OPTIONS /v1/*``: allowed for any origin; the POST that follows is checked against the workspace's
    allowed origins once its write key names the workspace."""
    return Response(status_code=204, headers=browser_cors(request.headers.get("origin") or "*"))


def _let_the_page_read_errors(request: Request) -> None:
    """From a browser (an Origin), the refusals that come before the workspace is known (401, 400, 404, 413)
    carry CORS headers: else analytics.js sees an opaque network error instead of the answer."""
    origin = request.headers.get("origin")
    if origin:
        set_cors(request, browser_cors(origin))


async def _read(request: Request, max_bytes: int) -> tuple[Caller, dict[str, Any]]:
    """Auth from the header first (a bad key is 401 whatever the body), then the body; then the Origin
    against the workspace's allowed origins (403), before anything is stored."""
    _let_the_page_read_errors(request)
    origin = request.headers.get("origin")
    caller = await authenticate(request, None) if request.headers.get("authorization") else None
    data = json_object(await read_body(request, max_bytes))
    caller = caller or await authenticate(request, data)
    if origin:  # 403 for an origin the workspace does not list (readable by the page, as the Messenger's)
        allowed = check_origin(request, caller.workspace)
        set_cors(request, {**allowed, "Access-Control-Allow-Headers": BROWSER_HEADERS})
    return caller, data


def _answer(request: Request, body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, headers=getattr(request.state, "cors", None))


async def single(request: Request) -> Response:
    """``POST /v1/{track|page|screen|identify|alias|group}`` (or analytics.js's ``/v1/{t|p|s|i|a|g}``) → 200
    ``{"success": true, "status", "dropped"}``."""
    _let_the_page_read_errors(request)
    kind = request.path_params["kind"]
    kind = SHORT_KINDS.get(kind, kind)
    if kind not in KINDS:
        raise ApiError(404, "not_found", "Resource Not Found")
    caller, data = await _read(request, MAX_MESSAGE_BYTES)
    msg = read_message(data, kind=kind, strict=caller.workspace.strict_metadata, now=int(time.time()))
    result = (await persist(request.app.state.store, caller, [(0, msg)]))[0]
    if isinstance(result, ApiError):
        raise result
    return _answer(request, {"success": True, **result, "dropped": msg.dropped})


async def batch(request: Request) -> Response:
    """``POST /v1/batch`` (and analytics.js's ``/v1/b``): each message is checked on its own. The valid ones are
    stored; the others are reported by index under ``rejected`` (200). When no message is valid: 400, nothing
    stored."""
    caller, data = await _read(request, MAX_BATCH_BYTES)
    ws = caller.workspace
    items = data.get("batch")
    if not isinstance(items, list):
        raise bad_request("batch must be a list of messages", "batch")
    if not items:
        raise bad_request("batch must not be empty", "batch")
    now = int(time.time())
    valid: list[tuple[int, Message]] = []
    rejected: dict[int, ApiError] = {}
    for i, raw in enumerate(items):
        try:
            valid.append((i, read_message(raw, kind=None, strict=ws.strict_metadata, now=now,
                                          prefix=f"batch[{i}].", sent_at=data.get("sentAt"))))
        except ApiError as err:
            rejected[i] = err
    if not valid:
        first = next(iter(rejected.values()))
        combined = ApiError(first.status, **first.errors[0])
        for other in rejected.values():
            for item in other.errors:
                if item is not first.errors[0]:
                    combined.also(**item)
        raise combined
    results = await persist(request.app.state.store, caller, valid)
    counts: dict[str, int] = defaultdict(int)
    dropped, warnings = [], []
    for i, msg in valid:
        result = results[i]
        if isinstance(result, ApiError):
            rejected[i] = result
            continue
        counts[result["status"]] += 1
        dropped += [{"index": i, **d} for d in msg.dropped]
        if "warning" in result:
            warnings.append({"index": i, "message": result["warning"]})
    return _answer(request, {
        "success": True,
        **{s: counts.get(s, 0) for s in ("accepted", "duplicate", "identified", "ignored")},
        "archived": counts.get("dropped", 0),  # events of an archived name: not stored (as everywhere)
        "rejected": [{"index": i, "status": err.status, "errors": err.errors} for i, err in sorted(rejected.items())],
        "dropped": dropped, **({"warnings": warnings} if warnings else {})})
