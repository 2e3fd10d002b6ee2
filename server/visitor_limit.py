"""How many new visitors one client address may create: a ping without a device token makes a contact, so
without a bound one client could make thousands a second (``TRAILMARK_NEW_VISITORS_PER_MINUTE``, 0 = off).

In-process, like the REST rate limit (server/ratelimit.py): with several processes each counts its own.
The address is ``request.client.host``: the peer, or the proxy's ``X-Forwarded-For`` only when uvicorn was
told to trust that proxy (``trailmark serve --forwarded-allow-ips``, docs/deploy.md).
"""

from __future__ import annotations

import math

from starlette.requests import Request

from .errors import ApiError
from .ratelimit import RateLimiter

WINDOW = 60


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


class NewVisitorLimit:
    def __init__(self, per_minute: int) -> None:
        self.limiter = RateLimiter(per_minute, WINDOW)

    def admit(self, request: Request, cors: dict[str, str]) -> None:
        """Count one new visitor for the request's address, or refuse it: 429 with ``Retry-After`` (the shim
        waits that long before it pings again)."""
        if not self.limiter.enabled:
            return
        decision = self.limiter.hit("visitor:" + client_address(request))
        if not decision.allowed:
            retry_after = max(1, math.ceil(decision.reset - self.limiter.clock()))
            raise ApiError(429, "rate_limit_exceeded",
                           f"Too many new visitors from this address: at most {decision.limit} a minute",
                           headers={**cors, "Retry-After": str(retry_after)})


def new_visitor_limit(request: Request) -> NewVisitorLimit:
    limit: NewVisitorLimit = request.app.state.new_visitor_limit
    return limit
