"""Request bodies must arrive in time: one still incomplete ``body_timeout_seconds`` (10 s by default) after
the handler started reading gets 408 and its connection is closed. Without this, clients that send half a body
and stop kept as many connections and requests open as they liked (400 in the trust issue).

Slow *headers* never reach the app: uvicorn bounds their size (``h11_max_incomplete_event_size``) and closes idle
keep-alive connections (``timeout_keep_alive``), see ``cli.cmd_serve`` and docs/deploy.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.requests import Request

from .errors import ApiError

DEFAULT_BODY_TIMEOUT = 10.0


def body_timeout(request: Request) -> float:
    settings = getattr(request.app.state, "settings", None)
    return float(getattr(settings, "body_timeout_seconds", DEFAULT_BODY_TIMEOUT))


async def read_within_deadline(request: Request, max_bytes: int, too_large: Callable[[], Exception]) -> bytes:
    """The whole body (``too_large()`` raised past ``max_bytes``), or 408 (Intercom's error shape,
    ``Connection: close``) once it is late. One deadline for the whole read: one timer per request, where a
    timer per chunk cost more than parsing the body (bench/ingest_costs.py)."""
    timeout = body_timeout(request)
    body = bytearray()
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                body += chunk
                if len(body) > max_bytes:
                    raise too_large()
    except TimeoutError:
        raise ApiError(408, "request_timeout", f"The request body did not arrive within {timeout:g} seconds",
                       headers={"Connection": "close"}) from None
    return bytes(body)
