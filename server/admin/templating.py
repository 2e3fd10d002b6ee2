"""The admin's Jinja environment: ``server/templates/``, autoescaped, with the formatting filters.

Autoescape is on for every template and no template marks tracked data ``|safe``: event names, metadata,
attributes and messages are always text. The few values that become attributes (``href``, ``src``) are
checked URLs (``render.safe_url``) and are quoted and escaped like any other value.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

from .. import __version__
from ..metadata import display_name
from . import render

# Defence in depth: even if something slipped through escaping, no inline script or handler would run.
# Images may come from any http(s) host (metadata images); nothing else leaves the origin.
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; "
                                "img-src 'self' http: https:; form-action 'self'; frame-ancestors 'none'; "
                                "base-uri 'none'"),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _number(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def _pluralize(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count:,} {singular if count == 1 else (plural or singular + 's')}"


def make_environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("trailmark", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(
        display=display_name, utc=render.utc, iso=render.iso, date=render.human_date,
        day=lambda ts: render.human_date(ts, with_time=False), number=_number, plural=_pluralize,
        urlpart=lambda value: quote(str(value), safe=""), attr=render.show_attribute,
        mailto=lambda email: "mailto:" + quote(str(email), safe="@+"),
    )
    env.globals["version"] = __version__
    return env


ENV = make_environment()


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render ``template`` with the common context (``now``, ``ago``, the request)."""
    now = int(time.time())
    html = ENV.get_template(template).render(request=request, now=now, ago=lambda ts: render.ago(ts, now),
                                             **context)
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)
