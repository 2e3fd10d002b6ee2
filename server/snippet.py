"""The browser side as the server hands it out: the shim (``/widget/{app_id}``), the contact panel it loads
on demand (``/widget/{app_id}/panel.js``), the messages renderer (``/widget/{app_id}/messages.js``, loaded when
an answer carries messages) and the paste-in loader.

The readable ``snippet/shim.js`` and ``snippet/panel.js`` are the source of truth; what is served is their
minified build, ``snippet/dist/*.min.js`` (``npm --prefix snippet run build``), whose first line names the
sha256 of the source it came from. Both are copied into the package at build time (server/assets.py). A missing
or stale build is served as the readable source instead, with a warning in the log, so that an edit shows up
without node; ``tests/test_snippet.py`` fails on a stale build.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re

from starlette.requests import Request
from starlette.responses import Response

from .assets import read_snippet_bytes

# The build's first line: ``// trailmark shim.js sha256=<64 hex>``.
BUILD_HEADER = re.compile(r"^// trailmark (?P<name>[a-z]+\.js) sha256=(?P<sha>[0-9a-f]{64})$")

log = logging.getLogger("trailmark")


def source_sha256(name: str) -> str:
    """The sha256 of a readable source (``shim`` or ``panel``), as the build header records it."""
    return hashlib.sha256(read_snippet_bytes(f"{name}.js")).hexdigest()


def build_sha256(name: str) -> str | None:
    """The source sha256 named by ``dist/{name}.min.js``'s header; ``None`` when it is missing or malformed."""
    try:
        first = read_snippet_bytes(f"dist/{name}.min.js").decode().split("\n", 1)[0]
    except (OSError, UnicodeDecodeError):
        return None
    match = BUILD_HEADER.match(first)
    return match["sha"] if match and match["name"] == f"{name}.js" else None


@functools.lru_cache(maxsize=3)
def served_script(name: str) -> bytes:
    """What the server sends for ``shim`` or ``panel``: the fresh minified build, else the readable source."""
    if build_sha256(name) == source_sha256(name):
        return read_snippet_bytes(f"dist/{name}.min.js")
    log.warning("snippet/dist/%s.min.js is missing or older than snippet/%s.js: serving the readable source "
                "(run `npm --prefix snippet run build`)", name, name)
    return read_snippet_bytes(f"{name}.js")


def served_shim() -> bytes:
    return served_script("shim")


# The shim's consent settings as written in shim.js; the widget route puts the workspace's in their place.
CONSENT_DEFAULT = b'{"consent_required":false,"honour_gpc":false}'


def shim_for(consent_required: bool, honour_gpc: bool) -> bytes:
    """The shim with a workspace's consent settings written in, so it knows them before it sets a cookie or
    sends anything (docs/privacy.md). The placeholder is a JSON string literal, which minifying keeps as is
    (tests/test_consent.py checks that it is there exactly once)."""
    settings = json.dumps({"consent_required": consent_required, "honour_gpc": honour_gpc}, separators=(",", ":"))
    return served_shim().replace(CONSENT_DEFAULT, settings.encode(), 1)


def served_panel() -> bytes:
    return served_script("panel")


def served_messages() -> bytes:
    return served_script("messages")


SCRIPT_HEADERS = {"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"}


async def widget_panel(request: Request) -> Response:
    """``GET /widget/{app_id}/panel.js``: the contact panel, which the shim loads when it is first needed."""
    if await request.app.state.store.workspace_by_app_id(request.path_params["app_id"]) is None:
        return Response("/* Trailmark: unknown app_id */\n", status_code=404, media_type="text/javascript")
    return Response(served_panel(), media_type="text/javascript", headers=SCRIPT_HEADERS)


async def widget_messages(request: Request) -> Response:
    """``GET /widget/{app_id}/messages.js``: the messages renderer, which the shim loads when an answer first
    carries messages (docs/messages.md)."""
    if await request.app.state.store.workspace_by_app_id(request.path_params["app_id"]) is None:
        return Response("/* Trailmark: unknown app_id */\n", status_code=404, media_type="text/javascript")
    return Response(served_messages(), media_type="text/javascript", headers=SCRIPT_HEADERS)


@functools.lru_cache(maxsize=1)
def loader_source() -> str:
    return read_snippet_bytes("loader.js").decode()


def paste_in_snippet(server_url: str, app_id: str) -> str:
    """The ``<script>`` block a site owner pastes before ``</body>``: ``snippet/loader.js`` as it is, with
    its placeholders ``TRAILMARK_URL`` and ``APP_ID`` filled in."""
    js = loader_source().replace("TRAILMARK_URL", server_url.rstrip("/")).replace("APP_ID", app_id)
    return "<script>\n" + js + "</script>"


def js_string(value: str) -> str:
    return json.dumps(value)
