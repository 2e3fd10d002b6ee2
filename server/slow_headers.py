"""Connections whose request headers do not arrive in time are closed.

uvicorn times out idle keep-alive connections between requests, but not a request whose headers trickle in (or
a new connection that sends nothing): each such connection stays open as long as the client likes. A request
cannot be answered before its headers are complete, so the only answer is to close it. This protocol is
uvicorn's own httptools protocol with one timer: armed when a connection opens and when a request's first
byte arrives, cancelled once its headers are complete (bodies have their own timeout: body_timeout.py).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

DEFAULT_HEADER_TIMEOUT = 10.0


def header_timeout() -> float:
    raw = os.environ.get("TRAILMARK_HEADER_TIMEOUT", "")
    try:
        return max(0.1, float(raw)) if raw else DEFAULT_HEADER_TIMEOUT
    except ValueError:
        return DEFAULT_HEADER_TIMEOUT


class HeaderTimeoutProtocol(HttpToolsProtocol):
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_timer is None:
            self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._cancel_header_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(header_timeout(), self._headers_late)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self, *_: Any) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()
