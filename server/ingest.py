"""The ingest path: a pipeline of plain steps, each returning its result or raising an ApiError.

    parse_body → (read_identity, in the endpoint) → validate_event → persist

The whole request is checked before anything is written; the store then writes a request's events
all-or-nothing and the endpoint answers 2xx only after the commit.
"""

from __future__ import annotations

import json
import math
import re
import time
from typing import Any

from starlette.requests import Request

from .body_timeout import body_chunks
from .errors import ApiError, bad_request, missing, unprocessable
from .metadata import InvalidEventName, normalize_event_name, validate_metadata
from .store.models import NewEvent

MAX_BODY_BYTES = 256 * 1024  # a 100-event browser batch of full metadata stays far below this
MAX_EVENTS_PER_BATCH = 100
MAX_CLIENT_ID_LENGTH = 64
# created_at may back-fill history (REST) but not come from the far future (clock skew allowance: 1 day).
FUTURE_SKEW = 86400
EARLIEST = 0


async def parse_body(request: Request, max_bytes: int = MAX_BODY_BYTES) -> dict[str, Any]:
    """Read a JSON object body (whatever the Content-Type: the shim sends text/plain), bounded in size."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise ApiError(413, "request_too_large", f"Request body is larger than {max_bytes} bytes")
    # Always counted while read: a Content-Length may be absent, or sent beside Transfer-Encoding: chunked.
    body = bytearray()
    async for chunk in body_chunks(request):  # 408 when the body is late
        body += chunk
        if len(body) > max_bytes:
            raise ApiError(413, "request_too_large", f"Request body is larger than {max_bytes} bytes")
    if not body:
        raise bad_request("Request body is empty; send a JSON object", code="parameter_invalid")
    try:
        # Decoded strictly: json.loads(bytes) would let UTF-8-encoded surrogates through ("surrogatepass").
        data = loads_strict(body.decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError):
        raise bad_request("Request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise bad_request("Request body must be a JSON object")
    if _SURROGATE_ESCAPE.search(body) and _has_lone_surrogate(data):
        raise bad_request("Request body is not valid JSON: it contains an unpaired UTF-16 surrogate")
    return data


# JSON.stringify never emits NaN/Infinity and 1e400 overflows to inf; Python's json accepts both, and a
# non-finite number would crash int(), poison stored JSON (Starlette refuses to render it) and reach SQL.
def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text}")
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def loads_strict(text: str) -> Any:
    """``json.loads`` that refuses NaN, Infinity and numbers that overflow to infinity (ValueError)."""
    return json.loads(text, parse_float=_finite_float, parse_constant=_refuse_constant)


# "\ud800" alone decodes to a lone surrogate that no UTF-8 database text can hold; escaped pairs (emoji
# from ensure_ascii encoders) decode to one code point. The full check runs only when an escape is present.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _has_lone_surrogate(data: Any) -> bool:
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


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
                    metadata_types=clean.types, dropped=dropped)


def validate_browser_batch(data: dict[str, Any], *, strict: bool) -> list[NewEvent]:
    """The shim's ``events`` array: each event carries a client id that makes retries count once."""
    events = data.get("events")
    if not isinstance(events, list):
        raise bad_request("events must be a list", "events")
    if not events:
        raise bad_request("events must not be empty", "events")
    if len(events) > MAX_EVENTS_PER_BATCH:
        raise ApiError(413, "request_too_large", f"at most {MAX_EVENTS_PER_BATCH} events per request", "events")
    now = int(time.time())
    out, seen = [], set()
    for i, raw in enumerate(events):
        client_id = raw.get("id") if isinstance(raw, dict) else None
        if not isinstance(client_id, str) or not client_id or len(client_id) > MAX_CLIENT_ID_LENGTH:
            raise bad_request(f"events[{i}].id must be a client-generated id of at most "
                              f"{MAX_CLIENT_ID_LENGTH} characters", f"events[{i}].id")
        if client_id in seen:
            raise bad_request(f"events[{i}].id is repeated in this batch", f"events[{i}].id")
        seen.add(client_id)
        out.append(validate_event(raw, strict=strict, now=now, dedupe_key="c:" + client_id,
                                  field_prefix=f"events[{i}]."))
    return out
