"""Request bodies must arrive in time: one still incomplete ``body_timeout_seconds`` (10 s by default) after
the handler started reading gets 408 and its connection is closed. Without this, clients that send half a body
and stop kept as many connections and requests open as they liked (400 in the trust issue).

Slow *headers* never reach the app: uvicorn bounds their size (``h11_max_incomplete_event_size``) and closes idle
keep-alive connections (``timeout_keep_alive``), see ``cli.cmd_serve`` and docs/deploy.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.requests import ClientDisconnect, Request

from .errors import ApiError

DEFAULT_BODY_TIMEOUT = 10.0


def body_timeout(request: Request) -> float:
    settings = getattr(request.app.state, "settings", None)
    return float(getattr(settings, "body_timeout_seconds", DEFAULT_BODY_TIMEOUT))


async def read_within_deadline(request: Request, max_bytes: int, too_large: Callable[[], Exception]) -> bytes:
    """The whole body (``too_large()`` raised past ``max_bytes``), or 408 (Intercom's error shape,
    ``Connection: close``) once it is late. One timer for the whole read, which cancels the reading task when
    it fires: what ``asyncio.timeout`` does, without its per-request context object and rescheduling (a timer
    per chunk cost more than parsing the body; ``asyncio.timeout`` itself a tenth of the events route's
    event-loop CPU: bench/ingest_costs.py)."""
    timeout = body_timeout(request)
    task = asyncio.current_task()
    assert task is not None
    late = False

    def expire() -> None:
        nonlocal late
        late = True
        task.cancel()

    timer = asyncio.get_running_loop().call_later(timeout, expire)
    body = bytearray()
    receive = request.receive  # the ASGI messages themselves: ``request.stream()`` is an async generator more
    try:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            body += message.get("body", b"")
            if len(body) > max_bytes:
                raise too_large()
            if not message.get("more_body", False):
                break
    except asyncio.CancelledError:
        if late and task.uncancel() == 0:  # our cancel and nobody else's: the body is late
            raise ApiError(408, "request_timeout", f"The request body did not arrive within {timeout:g} seconds",
                           headers={"Connection": "close"}) from None
        raise
    finally:
        timer.cancel()
    return bytes(body)
