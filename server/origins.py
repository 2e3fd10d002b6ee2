"""Which sites may use a workspace's snippet endpoints (CORS and the allowed-origins list)."""

from __future__ import annotations

from starlette.requests import Request

from .errors import ApiError
from .store.models import Workspace


def check_origin(request: Request, workspace: Workspace) -> dict[str, str]:
    """Refuse (403) an Origin the workspace does not list; return the CORS headers to answer with.

    A workspace with no allowed origins accepts any site (handy to start; the admin and README say to
    list them in production). Requests without an Origin header (curl, same-origin GETs) pass.
    """
    origin = request.headers.get("origin")
    allowed = workspace.allowed_origins
    if origin and allowed and origin.rstrip("/") not in {o.rstrip("/") for o in allowed}:
        raise ApiError(403, "forbidden", f"Origin {origin} is not allowed for this workspace", "origin")
    if not origin:
        return {}
    return {"Access-Control-Allow-Origin": origin if allowed else "*", "Vary": "Origin",
            "Access-Control-Allow-Methods": "POST, GET, OPTIONS",
            "Access-Control-Allow-Headers": "Content-Type", "Access-Control-Max-Age": "86400"}
