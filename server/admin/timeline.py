"""A contact's timeline on the profile: events and page views together, newest first, one page at a time.

Both come from their own store reads (``events_for``, ``page_views_for``), each keyset-paginated on
``(created_at, id)``; here they are merged on ``(created_at, kind, id)`` (an event after a page view of the same
second) so the "Older" link's cursor names one place in the merged order. The cursor in the URL is
``<time>:<id>`` for an event (as before page views existed) and ``<time>:pv:<id>`` for a page view.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..limits import MAX_SQL_INT, ascii_int
from ..store import SQLStore
from ..store.models import Contact, StoredEvent, Workspace
from ..store.page_views import StoredPageView
from .render import Shown, safe_url, show_metadata

PAGE_VIEW, EVENT = 0, 1  # the kind's rank: within one second, events come before page views (newest first)


@dataclass(frozen=True)
class Cursor:
    created_at: int
    kind: int
    id: int

    def __str__(self) -> str:
        return f"{self.created_at}:{self.id}" if self.kind == EVENT else f"{self.created_at}:pv:{self.id}"


@dataclass(frozen=True)
class Item:
    """One timeline row: an event with its metadata as shown, or a page view with its link (if safe)."""

    cursor: Cursor
    event: StoredEvent | None = None
    shown: tuple[Shown, ...] = ()
    view: StoredPageView | None = None

    @property
    def href(self) -> str | None:
        return safe_url(self.view.url) if self.view else None


@dataclass(frozen=True)
class TimelinePage:
    items: list[Item]
    older: Cursor | None  # the last item's cursor when there is an older page


def parse_cursor(raw: str | None) -> Cursor | None:
    """The ``before`` parameter; anything malformed means the first page."""
    parts = (raw or "").split(":")
    if len(parts) == 2:
        kind, created, item = EVENT, parts[0], parts[1]
    elif len(parts) == 3 and parts[1] == "pv":
        kind, created, item = PAGE_VIEW, parts[0], parts[2]
    else:
        return None
    t, i = ascii_int(created), ascii_int(item)  # bounded: a 20-digit number would overflow SQL
    return None if t is None or i is None else Cursor(t, kind, i)


async def timeline_page(store: SQLStore, ws: Workspace, contact: Contact, *, limit: int, before: Cursor | None,
                        event_name: str | None) -> TimelinePage:
    """``limit`` items older than ``before``. Showing one event name only leaves page views out."""
    events_before = views_before = None
    if before is not None:
        # Strictly after the cursor in (created_at, kind, id) descending: of the cursor's second, an event
        # cursor leaves the older events and every page view; a page view cursor only the older page views.
        events_before = (before.created_at, before.id if before.kind == EVENT else 0)
        views_before = (before.created_at, before.id if before.kind == PAGE_VIEW else MAX_SQL_INT)
    events = await store.events_for(ws, contact, limit=limit + 1, before=events_before, event_name=event_name)
    items = [Item(Cursor(e.created_at, EVENT, e.id), event=e, shown=tuple(show_metadata(e.metadata, e.metadata_types)))
             for e in events]
    if event_name is None:
        views = await store.page_views_for(ws, contact, limit=limit + 1, before=views_before)
        items += [Item(Cursor(v.created_at, PAGE_VIEW, v.id), view=v) for v in views]
    items.sort(key=lambda it: (it.cursor.created_at, it.cursor.kind, it.cursor.id), reverse=True)
    older = items[limit - 1].cursor if len(items) > limit else None
    return TimelinePage(items[:limit], older)
