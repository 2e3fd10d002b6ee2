"""The ingest path: a pipeline of plain steps, each returning its result or raising an ApiError.

    http_edge.read_json_object → (read_identity, in the endpoint) → validate_event → persist

The whole request is checked before anything is written; the store then writes a request's events
all-or-nothing and the endpoint answers 2xx only after the commit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .errors import ApiError, bad_request, missing, unprocessable
from .limits import has_nul
from .metadata import RENAMED_EVENT_NAME, InvalidEventName, is_renamed, normalize_event_name, validate_metadata
from .page_views import is_page_view, validate_page_view
from .store.models import NewEvent
from .store.page_views import NewPageView

MAX_EVENTS_PER_BATCH = 100
MAX_CLIENT_ID_LENGTH = 64
# created_at may back-fill history (REST) but not come from the far future (clock skew allowance: 1 day).
FUTURE_SKEW = 86400
EARLIEST = 0


def read_created_at(raw: Any, now: int, field: str = "created_at") -> int:
    if raw is None:
        return now
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise bad_request("created_at must be a unix timestamp in seconds", field)
    value = int(raw)
    if value > now + FUTURE_SKEW:
        if value > 10**11:
            raise bad_request("created_at must be in seconds, not milliseconds", field)
        raise bad_request("created_at is in the future", field)
    if value < EARLIEST:
        raise bad_request("created_at must not be before 1970", field)
    return value


def validate_event(raw: Any, *, strict: bool, now: int, dedupe_key: str, field_prefix: str = "") -> NewEvent:
    """One event's name, time and metadata; metadata entries that break a rule are dropped (or, in a
    strict workspace, refuse the event with 422)."""
    if not isinstance(raw, dict):
        raise bad_request("each event must be a JSON object", field_prefix.rstrip(".") or None)
    if "event_name" not in raw or raw["event_name"] is None:
        raise missing(f"{field_prefix}event_name", "event_name is required")
    try:
        name = normalize_event_name(raw["event_name"])
    except InvalidEventName as exc:
        raise bad_request(str(exc), f"{field_prefix}event_name") from None
    created_at = read_created_at(raw.get("created_at"), now, f"{field_prefix}created_at")
    metadata = raw.get("metadata")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise bad_request("metadata must be a JSON object", f"{field_prefix}metadata")
    clean = validate_metadata(metadata)
    dropped = [d.as_dict() for d in clean.dropped]
    if strict and dropped:
        err = unprocessable(f"metadata entry '{dropped[0]['key']}' refused: {dropped[0]['reason']}",
                            f"{field_prefix}metadata.{dropped[0]['key']}", code="data_invalid")
        for d in dropped[1:]:
            err.also("data_invalid", f"metadata entry '{d['key']}' refused: {d['reason']}",
                     f"{field_prefix}metadata.{d['key']}")
        raise err
    return NewEvent(event_name=name, created_at=created_at, dedupe_key=dedupe_key, metadata=clean.values,
                    metadata_types=clean.types, dropped=dropped, renamed=is_renamed(raw["event_name"]))


def reported_drops(event: NewEvent) -> list[dict[str, str]]:
    """What the sender is told was changed in its event: the dropped metadata entries, and a renamed event name
    reported the same way (``{"key": "event_name", "reason", "stored_as"}``: a constant reason, the stored name
    apart). A rename is not a dropped entry: the admin's drop counts and the import summary leave it out."""
    if not event.renamed:
        return event.dropped
    return [*event.dropped, {"key": "event_name", "reason": RENAMED_EVENT_NAME, "stored_as": event.event_name}]


@dataclass
class BrowserBatch:
    """The shim's batch, checked: its events and its page views, each with its position in the batch."""

    events: list[tuple[int, NewEvent]] = field(default_factory=list)
    page_views: list[tuple[int, NewPageView]] = field(default_factory=list)


def validate_browser_batch(data: dict[str, Any], *, strict: bool) -> BrowserBatch:
    """The shim's ``events`` array: events and page views (server/page_views.py), each carrying a client id
    that makes retries count once."""
    events = data.get("events")
    if not isinstance(events, list):
        raise bad_request("events must be a list", "events")
    if not events:
        raise bad_request("events must not be empty", "events")
    if len(events) > MAX_EVENTS_PER_BATCH:
        raise ApiError(413, "request_too_large", f"at most {MAX_EVENTS_PER_BATCH} events per request", "events")
    now = int(time.time())
    out, seen = BrowserBatch(), set()
    for i, raw in enumerate(events):
        client_id = raw.get("id") if isinstance(raw, dict) else None
        if not isinstance(client_id, str) or not client_id or len(client_id) > MAX_CLIENT_ID_LENGTH:
            raise bad_request(f"events[{i}].id must be a client-generated id of at most "
                              f"{MAX_CLIENT_ID_LENGTH} characters", f"events[{i}].id")
        if has_nul(client_id):  # it goes into the dedupe key, a text column
            raise bad_request(f"events[{i}].id must not contain NUL (\\u0000) characters", f"events[{i}].id")
        if client_id in seen:
            raise bad_request(f"events[{i}].id is repeated in this batch", f"events[{i}].id")
        seen.add(client_id)
        if is_page_view(raw):
            created_at = read_created_at(raw.get("created_at"), now, f"events[{i}].created_at")
            out.page_views.append((i, validate_page_view(raw, created_at=created_at, dedupe_key="c:" + client_id,
                                                         field_prefix=f"events[{i}].")))
        else:
            out.events.append((i, validate_event(raw, strict=strict, now=now, dedupe_key="c:" + client_id,
                                                 field_prefix=f"events[{i}].")))
    return out
