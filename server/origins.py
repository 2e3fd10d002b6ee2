"""Which sites may use a workspace's snippet endpoints (CORS and the allowed-origins list)."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request

from .errors import ApiError
from .store.models import Workspace


def normalise_origin(origin: str) -> str:
    """``https://shop.example`` as browsers send it in ``Origin``: scheme and host (and port), no path.
    Raises ``ValueError`` for anything else. Used by the CLI and the admin's Settings page alike."""
    text = origin.strip()
    try:
        parts = urlsplit(text)
        _ = parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        raise ValueError(f"{text!r} is not an origin such as https://shop.example") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") or parts.query \
            or parts.fragment or "@" in parts.netloc:
        raise ValueError(f"{text!r} is not an origin such as https://shop.example")
    return f"{parts.scheme}://{parts.netloc.lower()}"


def check_origin(request: Request, workspace: Workspace) -> dict[str, str]:
    """Refuse (403) an Origin the workspace does not list; return the CORS headers to answer with.

    A workspace with no allowed origins accepts any site (handy to start; the admin and README say to
    list them in production). Requests without an Origin header (curl, same-origin GETs) pass.
    """
    origin = request.headers.get("origin")
    allowed = workspace.allowed_origins
    if not origin:
        return {}
    if allowed and origin.rstrip("/") not in {o.rstrip("/") for o in allowed}:
        # The refusal itself is readable by the page (no Allow-Credentials, nothing but the error),
        # so the shim can print why instead of seeing an opaque network error and retrying forever.
        raise ApiError(403, "forbidden", f"Origin {origin} is not allowed for this workspace", "origin",
                       headers=cors_headers(origin))
    return cors_headers(origin if allowed else "*")


def cors_headers(allow_origin: str) -> dict[str, str]:
    # Retry-After must be exposed, or the browser hides it from the shim's backoff.
    return {"Access-Control-Allow-Origin": allow_origin, "Vary": "Origin",
            "Access-Control-Allow-Methods": "POST, GET, OPTIONS",
            "Access-Control-Allow-Headers": "Content-Type", "Access-Control-Expose-Headers": "Retry-After",
            "Access-Control-Max-Age": "86400"}
