"""REST rate limiting, as Intercom does it: a request budget per workspace in fixed 10-second windows.

Intercom (docs/api.md): ``X-RateLimit-Limit``, ``X-RateLimit-Remaining``
and ``X-RateLimit-Reset`` (unix seconds) on every *authenticated* response, none on requests without valid
credentials; past the limit ``429`` with code ``rate_limit_exceeded`` ("Exceeded rate limit of 1000 in
10_seconds") and a ``Retry-After`` both official SDKs honour.

Defaults: 1,000 requests per 10 s per workspace (Intercom's per-workspace 25,000/min is ~4,167 per 10 s;
1,000 is the safer self-hosted default). ``TRAILMARK_RATE_LIMIT`` and ``TRAILMARK_RATE_LIMIT_WINDOW``
(seconds) change it; ``TRAILMARK_RATE_LIMIT=0`` turns it off.

The counter is in-process. With SQLite there is one server process, so the limit is exact. With
PostgreSQL and several processes (``--workers N``, several machines) each process counts on its own: a
workspace may get up to N × the limit, and the headers describe the budget of the process that answered.

A workspace is keyed by its access token (one per workspace). A token gets a counter only after a
response that was not 401, so invalid tokens neither get rate-limit headers nor grow the table.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import error_body
from .http_edge import route_path

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]

DEFAULT_LIMIT = 1000
DEFAULT_WINDOW = 10
# Paths of the Bearer-token REST API (Intercom's shapes). The Messenger, Segment and Stripe endpoints
# authenticate otherwise and are not limited here.
REST_PREFIXES = ("/events", "/contacts", "/visitors", "/messages", "/trailmark/messages")
_MAX_KEYS = 10_000


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset: int  # unix seconds when the window ends

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [(b"x-ratelimit-limit", str(self.limit).encode()),
                (b"x-ratelimit-remaining", str(self.remaining).encode()),
                (b"x-ratelimit-reset", str(self.reset).encode())]


class RateLimiter:
    """Fixed windows aligned on multiples of ``window`` seconds; ``limit`` requests per key per window."""

    def __init__(self, limit: int = DEFAULT_LIMIT, window: int = DEFAULT_WINDOW,
                 clock: Callable[[], float] = time.time) -> None:
        self.limit, self.window, self.clock = limit, max(1, window), clock
        self._counts: dict[str, tuple[int, int]] = {}  # key → (window start, requests counted)

    @classmethod
    def from_env(cls) -> RateLimiter:
        return cls(int(os.environ.get("TRAILMARK_RATE_LIMIT", DEFAULT_LIMIT)),
                   int(os.environ.get("TRAILMARK_RATE_LIMIT_WINDOW", DEFAULT_WINDOW)))

    @property
    def enabled(self) -> bool:
        return self.limit > 0

    def known(self, key: str) -> bool:
        return key in self._counts

    def forget(self, key: str) -> None:
        self._counts.pop(key, None)

    def hit(self, key: str) -> Decision:
        """Count one request for ``key`` (unless it is over the limit) and say whether it may go on."""
        now = self.clock()
        start = int(now // self.window * self.window)
        reset = start + self.window
        window_start, count = self._counts.get(key, (start, 0))
        if window_start != start:
            count = 0
        if count >= self.limit:
            return Decision(False, self.limit, 0, reset)
        count += 1
        if key not in self._counts and len(self._counts) >= _MAX_KEYS:
            self._counts = {k: v for k, v in self._counts.items() if v[0] == start}
        self._counts[key] = (start, count)
        return Decision(True, self.limit, self.limit - count, reset)


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers") or ():
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            return token if scheme.lower() == "bearer" and token else None
    return None


class RateLimitMiddleware:
    """Pure ASGI middleware: counts Bearer-authenticated REST requests per access token."""

    def __init__(self, app: Callable[..., Any], limiter: RateLimiter | None = None) -> None:
        self.app = app
        self.limiter = limiter or RateLimiter.from_env()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.limiter.enabled:
            await self.app(scope, receive, send)
            return
        token = _bearer(scope)
        if token is None or not route_path(scope).startswith(REST_PREFIXES):
            await self.app(scope, receive, send)
            return
        decision = self.limiter.hit(token) if self.limiter.known(token) else None
        if decision is not None and not decision.allowed:
            await self._too_many(decision, send)
            return

        async def send_with_headers(message: Message) -> None:
            nonlocal decision
            if message["type"] == "http.response.start":
                if message["status"] == 401:  # not (or no longer) a valid token: no budget, no headers
                    self.limiter.forget(token)
                else:
                    decision = decision or self.limiter.hit(token)
                    message = {**message, "headers": [*message.get("headers", []), *decision.headers()]}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _too_many(self, decision: Decision, send: Send) -> None:
        retry_after = max(1, math.ceil(decision.reset - self.limiter.clock()))
        body = json.dumps(error_body([{
            "code": "rate_limit_exceeded",
            "message": f"Exceeded rate limit of {decision.limit} in {self.limiter.window}_seconds"}])).encode()
        await send({"type": "http.response.start", "status": 429, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(retry_after).encode()), *decision.headers()]})
        await send({"type": "http.response.body", "body": body})
