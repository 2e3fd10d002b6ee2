"""Page views, as the shim sends them: entries ``{"id", "type": "page_view", "url", "title"?, "referrer"?,
"created_at"?}`` in the ``events`` batch (docs/protocol.md), checked here and stored apart from events
(server/store/page_views.py).

Intercom tracks page views by default; so does Trailmark, unless the workspace switches them off
(``trailmark workspace set --no-page-views``, the admin's Settings page). Then the server drops the page views
it still gets (answered ``dropped``, so the shim forgets them) and tells the shim in every ping answer
(``"page_views": false``), which then stops sending them.
"""

from __future__ import annotations

from typing import Any

from .errors import bad_request
from .limits import has_nul
from .store import SQLStore
from .store.models import EventResult, Workspace
from .store.page_views import NewPageView

PAGE_VIEW_TYPE = "page_view"
MAX_URL = 2048  # as a message's page condition (messenger_messages.MAX_PAGE_URL)
MAX_TITLE = 255
SWITCHED_OFF = "page views are switched off for this workspace"


def is_page_view(raw: Any) -> bool:
    return isinstance(raw, dict) and raw.get("type") == PAGE_VIEW_TYPE


def _text(raw: dict[str, Any], key: str, limit: int, field: str, *, required: bool = False) -> str | None:
    """A string field: longer ones are cut to ``limit`` (a page's title or URL is not the visitor's to fix);
    anything but a string (or null when optional) is a 400."""
    value = raw.get(key)
    if value is None or value == "":
        if required:
            raise bad_request(f"{field} is required: the page's URL", field)
        return None
    if not isinstance(value, str):
        raise bad_request(f"{field} must be a string", field)
    if has_nul(value):
        raise bad_request(f"{field} must not contain NUL (\\u0000) characters", field)
    return value[:limit]


def validate_page_view(raw: dict[str, Any], *, created_at: int, dedupe_key: str, field_prefix: str) -> NewPageView:
    """One page view's URL, title and referrer (the time and the dedupe key are read as for events)."""
    url = _text(raw, "url", MAX_URL, f"{field_prefix}url", required=True)
    assert url is not None
    return NewPageView(url=url, title=_text(raw, "title", MAX_TITLE, f"{field_prefix}title"),
                       referrer=_text(raw, "referrer", MAX_URL, f"{field_prefix}referrer"),
                       created_at=created_at, dedupe_key=dedupe_key)


async def record(store: SQLStore, ws: Workspace, contact_id: str, views: list[NewPageView]) -> list[EventResult]:
    """Store the batch's page views (answered after the commit), or drop them all when the workspace has
    switched page views off."""
    if not views:
        return []
    if not ws.page_views:
        return [EventResult("dropped", SWITCHED_OFF) for _ in views]
    return [EventResult(status) for status in await store.append_page_views(ws, contact_id, views)]
