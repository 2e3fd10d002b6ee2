"""REST data events, in Intercom's shapes: ``POST /events`` and ``GET /events`` (list and summary)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .errors import ApiError, bad_request, not_found
from .http_edge import int_param, json_query, read_json, reject_nul
from .ingest import read_created_at, reported_drops, validate_event
from .messages.engine import for_server_events
from .metadata import InvalidEventName, normalize_event_name
from .rest_auth import rest_workspace
from .store import SQLStore
from .store.models import AppendRequest, Contact, StoredEvent, Workspace

LIST_WINDOW_DAYS = 90  # Intercom: only events less than 90 days old can be listed
DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 250


def _identifier(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise bad_request(f"{field} must be a string", field)
    text = str(value).strip()
    if not text:
        raise bad_request(f"{field} must not be empty", field)
    return text


def _contact_identifiers(data: dict[str, Any]) -> dict[str, str | None]:
    """``id`` / ``user_id`` / ``email`` of a request body naming a contact; at least one is required."""
    ids = {f: _identifier(data.get(f), f) for f in ("id", "user_id", "email")}
    if not any(ids.values()):
        raise ApiError(400, "parameter_not_found", "one of id, user_id or email is required", "user_id")
    return ids


async def find_rest_contact(store: SQLStore, ws: Workspace, *, contact_id: str | None, user_id: str | None,
                            email: str | None) -> Contact:
    """The contact a REST call names by ``id``, ``user_id`` (a user's external id, or a visitor's
    user_id) or ``email``; 404 "User Not Found" otherwise: events never create contacts."""
    contact = None
    if contact_id is not None:
        contact = await store.find_contact(ws, contact_id=contact_id)
    elif user_id is not None:
        contact = (await store.find_contact(ws, user_id=user_id)
                   or await store.find_contact(ws, visitor_id=user_id))
    elif email is not None:
        contact = await store.find_contact(ws, email=email)
    if contact is None:
        raise not_found("User Not Found")
    return contact


async def create_event(request: Request) -> Response:
    """``POST /events`` → 202, empty body. Dropped metadata is reported in ``X-Trailmark-Dropped-Metadata``
    (JSON), so clients that expect Intercom's empty 202 keep working."""
    store: SQLStore = request.app.state.store
    ws = await rest_workspace(request)
    data = await read_json(request)
    ids = _contact_identifiers(data)
    now = int(time.time())
    created_at = read_created_at(data.get("created_at"), now)
    # Validate everything before looking the contact up, so a bad request never touches the store.
    event = validate_event({**data, "created_at": created_at}, strict=ws.strict_metadata, now=now,
                           dedupe_key="")
    contact = await find_rest_contact(store, ws, contact_id=ids["id"], user_id=ids["user_id"],
                                      email=ids["email"])
    # Intercom's dedupe key: (workspace, contact, event name, created_at).
    event = type(event)(**{**event.__dict__,
                           "dedupe_key": f"r:{contact.id}:{event.event_name}:{event.created_at}"})
    [result] = await store.append_events(AppendRequest(ws.id, contact.id, "rest", [event]))
    await for_server_events(store, ws, contact, [event], [result], source="rest")  # posts, chats: pending
    headers = {"X-Trailmark-Event-Status": result.status}
    dropped = reported_drops(event)
    if dropped:
        headers["X-Trailmark-Dropped-Metadata"] = json.dumps(dropped)
    return Response(status_code=202, headers=headers)


MAX_SUMMARIES = 100  # event summaries per POST /events/summaries request (our bound)
MAX_SUMMARY_COUNT = 2**31


def _summary_item(raw: Any, now: int, field: str) -> tuple[str, int, int, int]:
    """One ``{event_name, count?, first?, last?}``: count defaults to 1; first/last (unix seconds) default to
    each other, or to now when both are missing."""
    if not isinstance(raw, dict):
        raise bad_request("each event summary must be an object", field)
    if raw.get("event_name") is None:
        raise ApiError(400, "parameter_not_found", "event_name is required", f"{field}.event_name")
    try:
        name = normalize_event_name(raw["event_name"])
    except InvalidEventName as exc:
        raise bad_request(str(exc), f"{field}.event_name") from None
    count = raw.get("count", 1)
    if count is None:
        count = 1
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_SUMMARY_COUNT:
        raise bad_request(f"count must be an integer between 1 and {MAX_SUMMARY_COUNT}", f"{field}.count")
    first_raw, last_raw = raw.get("first"), raw.get("last")
    for key, value in (("first", first_raw), ("last", last_raw)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise bad_request(f"{key} must be a unix timestamp in seconds", f"{field}.{key}")
    first = None if first_raw is None else read_created_at(first_raw, now, f"{field}.first")
    last = None if last_raw is None else read_created_at(last_raw, now, f"{field}.last")
    first = first if first is not None else (last if last is not None else now)
    last = last if last is not None else first
    if first > last:
        raise bad_request("first must not be after last", f"{field}.first")
    return name, count, first, last


async def create_summaries(request: Request) -> Response:
    """``POST /events/summaries`` ``{"user_id"|"id"|"email", "event_summaries": {…} | [{…}, …]}`` → 200, empty.

    Imported aggregates are merged per event name into the contact's summary table (count added, first =
    min, last = max) and show up in ``GET /events?summary=true`` on top of the counted events; they are not
    events (nothing to list) and do not count towards the 120 active event names. Not idempotent: sending
    the same summary twice adds its count twice, as the request means "these happened too"."""
    store: SQLStore = request.app.state.store
    ws = await rest_workspace(request)
    data = await read_json(request)
    ids = _contact_identifiers(data)
    raw = data.get("event_summaries")
    if raw is None:
        raise ApiError(400, "parameter_not_found", "event_summaries is required", "event_summaries")
    items = [raw] if isinstance(raw, dict) else raw
    if not isinstance(items, list) or not items:
        raise bad_request("event_summaries must be an object or a non-empty list", "event_summaries")
    if len(items) > MAX_SUMMARIES:
        raise bad_request(f"at most {MAX_SUMMARIES} event summaries per request", "event_summaries")
    now = int(time.time())
    rows = [_summary_item(item, now, "event_summaries" if item is raw else f"event_summaries[{i}]")
            for i, item in enumerate(items)]
    contact = await find_rest_contact(store, ws, contact_id=ids["id"], user_id=ids["user_id"], email=ids["email"])
    await store.add_event_summaries(ws, contact.id, rows)
    return Response(status_code=200)


def merge_summaries(counted: list[dict[str, Any]], imported: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Counted events' per-name aggregates plus imported ones; most recent first."""
    by_name = {s["name"]: dict(s) for s in counted}
    for imp in imported:
        have = by_name.get(imp["name"])
        if have is None:
            by_name[imp["name"]] = {**imp, "description": None}
        else:
            have.update(count=have["count"] + imp["count"], first=min(have["first"], imp["first"]),
                        last=max(have["last"], imp["last"]))
    return sorted(by_name.values(), key=lambda s: (-s["last"], s["name"]))


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _json_filter(request: Request) -> dict[str, Any]:
    """``filter={"user_id": "…"}``: a JSON object in one query parameter, which is how the Node SDK's
    (``intercom-client`` 7.x) ``unstable.dataEvents.lisDataEvents({filter: {…}})`` serialises its filter.
    Absent: ``{}``; not a JSON object: 400."""
    if request.query_params.get("filter") is None:
        return {}
    value = json_query(request, "filter")
    if not isinstance(value, dict):
        raise bad_request('filter must be a JSON object such as {"user_id": "314159"}', "filter")
    return value


def _query(request: Request, name: str) -> str | None:
    """A query parameter, also under the ``filter[name]`` alias the Python SDK's newer client sends, or in
    the JSON object ``filter`` the Node SDK's newer client sends."""
    value = request.query_params.get(name)
    if value is None:
        value = request.query_params.get(f"filter[{name}]")
    if value is None:
        item = _json_filter(request).get(name)
        if item is not None:
            if isinstance(item, bool) or not isinstance(item, (str, int)):
                raise bad_request(f"filter.{name} must be a string", f"filter.{name}")
            value = str(item)
    reject_nul(value, name)
    return value


def event_json(event: StoredEvent, contact: Contact) -> dict[str, Any]:
    return {"type": "event", "id": str(event.id), "event_name": event.event_name,
            "created_at": event.created_at, "user_id": contact.external_id or contact.visitor_id,
            "intercom_user_id": contact.id, "email": contact.email, "metadata": event.metadata}


async def list_events(request: Request) -> Response:
    """``GET /events?type=user&(user_id|email|intercom_user_id)=…[&summary=true][&per_page][&before|since]``"""
    store: SQLStore = request.app.state.store
    ws = await rest_workspace(request)
    if _query(request, "type") != "user":
        raise ApiError(400, "parameter_invalid", "type must be 'user'", "type")
    if not any(_query(request, k) for k in ("intercom_user_id", "user_id", "email")):
        raise ApiError(400, "parameter_not_found", "one of user_id, email or intercom_user_id is required",
                       "user_id")
    contact = await find_rest_contact(store, ws, contact_id=_query(request, "intercom_user_id"),
                                      user_id=_query(request, "user_id"), email=_query(request, "email"))
    if (request.query_params.get("summary") or "").lower() == "true":
        summary = merge_summaries(await store.event_summary(ws, contact),
                                  await store.imported_summaries(ws, contact))
        return JSONResponse({
            "type": "event.summary", "email": contact.email, "intercom_user_id": contact.id,
            "user_id": contact.external_id or contact.visitor_id,
            # Intercom describes description as a string: left out when the event has none, never null.
            "events": [{"name": s["name"], "first": _iso(s["first"]), "last": _iso(s["last"]), "count": s["count"],
                        **({"description": s["description"]} if s["description"] is not None else {})}
                       for s in summary]})
    per_page = int_param(request, "per_page", DEFAULT_PER_PAGE)
    assert per_page is not None
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise bad_request(f"per_page must be between 1 and {MAX_PER_PAGE}", "per_page")
    before_ms, before_id = int_param(request, "before"), int_param(request, "before_id")
    since_ms = int_param(request, "since")
    before = None
    if before_ms is not None:
        # Intercom pages with epoch milliseconds; our own next links add the event id to break ties.
        before = (before_ms // 1000, before_id) if before_id is not None else (-(-before_ms // 1000), 0)
    window = int(time.time()) - LIST_WINDOW_DAYS * 86400
    newer_than = None if since_ms is None else -(-since_ms // 1000) - 1
    events = await store.events_for(ws, contact, limit=per_page + 1, before=before, since=window,
                                    newer_than=newer_than)
    page, more = events[:per_page], len(events) > per_page
    base = str(request.base_url).rstrip("/") + request.url.path
    ident = {k: v for k in ("intercom_user_id", "user_id", "email") if (v := _query(request, k))}
    pages: dict[str, str] = {}
    if more and page:
        last = page[-1]
        pages["next"] = base + "?" + urlencode({"type": "user", **ident, "per_page": per_page,
                                                "before": last.created_at * 1000, "before_id": last.id})
    newest = page[0].created_at if page else (newer_than if newer_than is not None else int(time.time()))
    pages["since"] = base + "?" + urlencode({"type": "user", **ident, "since": newest * 1000 + 1})
    return JSONResponse({"type": "event.list", "events": [event_json(e, contact) for e in page],
                         "pages": pages})
