"""Event sources other than the snippet and the REST API: Segment-compatible (``segment.py``) and Stripe
webhooks (``stripe.py``). The historical importer is ``server/importer.py``.

Every source ends in the same steps as the REST API: ``ingest.validate_event`` (the metadata rules) and
``store.append_events`` (dedupe on ``(workspace, dedupe_key)``, all-or-nothing per contact). What lives
here is only what sources share: reading a raw, bounded (optionally gzipped) body.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from starlette.requests import Request

from ..body_timeout import body_chunks
from ..errors import ApiError, bad_request


def too_large(max_bytes: int) -> ApiError:
    return ApiError(413, "request_too_large", f"Request body is larger than {max_bytes} bytes")


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The raw body, at most ``max_bytes`` (after gunzip when ``Content-Encoding: gzip``: Segment's HTTP
    API accepts gzipped batches)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise too_large(max_bytes)
    body = bytearray()
    async for chunk in body_chunks(request):  # 408 when the body is late
        body += chunk
        if len(body) > max_bytes:
            raise too_large(max_bytes)
    if request.headers.get("content-encoding", "").strip().lower() == "gzip":
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            plain = inflater.decompress(bytes(body), max_bytes + 1)
        except zlib.error:
            raise bad_request("Request body is not valid gzip") from None
        if len(plain) > max_bytes or inflater.unconsumed_tail:
            raise too_large(max_bytes)
        return plain
    return bytes(body)


def json_object(body: bytes) -> dict[str, Any]:
    """Decode a JSON object, with the same 400s as ``ingest.parse_body``."""
    if not body:
        raise bad_request("Request body is empty; send a JSON object")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise bad_request("Request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise bad_request("Request body must be a JSON object")
    return data
