"""The HTTP edge: what every endpoint does with untrusted bytes before any rule sees them.

One bounded (gzip-aware) body reader, one strict JSON parser, bounded integers for query parameters, the
NUL rule, and the rendering of error answers (with the CORS headers a browser needs to read them). Every
refusal here is a 4xx in Intercom's error shape: a request the edge refuses never reaches the store.
"""

from __future__ import annotations

import json
import re
import zlib
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Scope

from . import strict_json
from .body_timeout import read_within_deadline
from .errors import ApiError, bad_request, error_body
from .limits import ascii_int, has_nul

MAX_BODY_BYTES = 256 * 1024  # a 100-event browser batch of full metadata stays far below this
NUL_MESSAGE = "text must not contain NUL (\\u0000) characters"


# ------------------------------------------------------------------------------------------ paths
def route_path(scope: Scope) -> str:
    """The request's path inside the app: without the ``root_path`` a proxy mounted it under."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


# ------------------------------------------------------------------------------------------ bodies
def too_large(max_bytes: int) -> ApiError:
    return ApiError(413, "request_too_large", f"Request body is larger than {max_bytes} bytes")


async def read_body(request: Request, max_bytes: int = MAX_BODY_BYTES) -> bytes:
    """The raw body, at most ``max_bytes`` (after gunzip when ``Content-Encoding: gzip``: Segment's HTTP
    API accepts gzipped batches)."""
    length, encoding = _body_headers(request)
    declared = ascii_int(length, minimum=0)
    if declared is not None and declared > max_bytes:
        raise too_large(max_bytes)
    # Always counted while read: a Content-Length may be absent, or sent beside Transfer-Encoding: chunked.
    body = await read_within_deadline(request, max_bytes, lambda: too_large(max_bytes))  # 408 when late
    if encoding is not None and encoding.strip().lower() == "gzip":
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            plain = inflater.decompress(body, max_bytes + 1)
        except zlib.error:
            raise bad_request("Request body is not valid gzip") from None
        if len(plain) > max_bytes or inflater.unconsumed_tail:
            raise too_large(max_bytes)
        return plain
    return body


def _body_headers(request: Request) -> tuple[str | None, str | None]:
    """The first Content-Length and Content-Encoding, in one pass over the raw headers (the server gives their
    names in lower case), instead of a ``request.headers`` look-up each."""
    length = encoding = None
    for name, value in request.scope["headers"]:
        if name == b"content-length" and length is None:
            length = value.decode("latin-1")
        elif name == b"content-encoding" and encoding is None:
            encoding = value.decode("latin-1")
    return length, encoding


async def read_json_object(request: Request, max_bytes: int = MAX_BODY_BYTES) -> dict[str, Any]:
    """A JSON object body (whatever the Content-Type: the shim sends text/plain), bounded and strict."""
    return json_object(await read_body(request, max_bytes))


async def read_json(request: Request) -> dict[str, Any]:
    """A REST request's JSON object body, free of NUL characters (the REST API's fields are text)."""
    data = await read_json_object(request)
    reject_nul(data)
    return data


def json_object(body: bytes) -> dict[str, Any]:
    if not body:
        raise bad_request("Request body is empty; send a JSON object")
    data = parse_json(body)
    if not isinstance(data, dict):
        raise bad_request("Request body must be a JSON object")
    return data


# ------------------------------------------------------------------------------------------ strict JSON
def parse_json(raw: bytes | str, what: str = "Request body", field: str | None = None) -> Any:
    """``strict_json.loads`` (no NaN, no 1e400, no lone surrogates, no UTF-16, at most 32 levels), or a 400."""
    try:
        return strict_json.loads(raw)
    except strict_json.Refused as exc:
        raise bad_request(f"{what} is not valid JSON: {exc}", field) from None
    except ValueError:
        raise bad_request(f"{what} is not valid JSON", field) from None


# ------------------------------------------------------------------------------------------ query strings
def json_query(request: Request, name: str) -> Any:
    """A JSON value in one query parameter (``filter={…}``), through the same strict parser; ``None`` when
    the parameter is absent."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    reject_nul(raw, name)
    return parse_json(raw, name, name)


def query_param(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    reject_nul(value, name)
    return value


def path_param(request: Request, name: str) -> str:
    value: str = request.path_params[name]
    reject_nul(value, name)
    return value


def int_param(request: Request, name: str, default: int | None = None) -> int | None:
    """An integer query parameter: ASCII digits (and a ``-``) that fit a SQL BIGINT, else a 400."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"-?[0-9]+", raw):
        raise bad_request(f"{name} must be an integer", name)
    value = ascii_int(raw)
    if value is None:  # more digits than a SQL BIGINT holds: the database driver would raise
        raise bad_request(f"{name} is out of range", name)
    return value


# ------------------------------------------------------------------------------------------ NUL
def reject_nul(value: Any, field: str | None = None) -> None:
    """400 for a NUL character anywhere in ``value`` (keys too): PostgreSQL cannot store one in text or
    jsonb, so both stores refuse it alike instead of one answering 500 (or keeping it)."""
    if isinstance(value, str):
        if has_nul(value):
            raise bad_request(NUL_MESSAGE, field)
    elif isinstance(value, dict):
        for key, item in value.items():
            if has_nul(str(key)):
                raise bad_request(NUL_MESSAGE, field)
            reject_nul(item, f"{field}.{key}" if field else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            reject_nul(item, f"{field}[{i}]" if field else f"[{i}]")


def reject_nul_in(obj: dict[str, Any], keys: Any, prefix: str = "") -> None:
    """The NUL rule for the text fields ``keys`` of ``obj`` (those that land in text columns)."""
    for key in keys:
        value = obj.get(key)
        if isinstance(value, str) and has_nul(value):
            raise bad_request(NUL_MESSAGE, prefix + key)


# ------------------------------------------------------------------------------------------ answers
def set_cors(request: Request, headers: dict[str, str]) -> None:
    """Remember the CORS headers of this request, so its error answers carry them too (else the browser
    hides the error from the shim)."""
    request.state.cors = headers


# JSONResponse's encoding, built once (``json.dumps`` with options builds an encoder per call).
_ANSWER_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


class JSONAnswer(Response):
    """The bytes and headers of ``JSONResponse(content, headers=headers)``, without its general header
    handling: the events route answers every tracked event, and that handling was a twentieth of its
    event-loop CPU (bench/ingest_costs.py)."""

    media_type = "application/json"

    def __init__(self, content: Any, headers: dict[str, str]) -> None:  # no super().__init__: it is the cost
        self.status_code = 200
        self.background = None
        self.body = _ANSWER_ENCODER.encode(content).encode()
        self.raw_headers = [*((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()),
                            (b"content-length", str(len(self.body)).encode()), (b"content-type", b"application/json")]


def error_response(request: Request, exc: ApiError) -> JSONResponse:
    headers = {**getattr(request.state, "cors", {}), **exc.headers}
    return JSONResponse(error_body(exc.errors), status_code=exc.status, headers=headers)
