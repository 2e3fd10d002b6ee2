"""The live view: events appearing as they are tracked, filterable by event name and contact, each with the
contact's name and role. ``/admin/live`` is the page; ``/admin/live/stream`` the server-sent events it reads
(``static/live.js``): the last events at once, then each new one, woken by ``server/live.py``'s hub. A
reconnecting browser sends ``Last-Event-ID`` and gets what it missed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from ..contact_lookup import find_person
from .routes import Admin, signed_in

BACKLOG = 50
HEARTBEAT_SECONDS = 15.0
MAX_STREAM_SECONDS = 3600.0  # the browser reconnects (with Last-Event-ID) after this


def _filters(admin: Admin) -> tuple[str, str]:
    q = admin.request.query_params
    return q.get("name", "").strip()[:255], q.get("contact", "").strip()[:64]


@signed_in
async def live_page(admin: Admin) -> Response:
    assert admin.workspace is not None
    name, contact = _filters(admin)
    names = await admin.store.event_names(admin.workspace)
    return admin.render("live.html", section="live", names=names, name=name, contact=contact)


@signed_in
async def live_stream(admin: Admin) -> Response:
    ws = admin.workspace
    assert ws is not None
    name, contact_ident = _filters(admin)
    contact_id = None
    if contact_ident:
        found = await find_person(admin.store, ws, contact_ident)
        contact_id = found.id if found else "-"  # an unknown contact matches nothing
    raw_last = admin.request.headers.get("last-event-id", "")
    cursor = int(raw_last) if raw_last.isascii() and raw_last.isdigit() and len(raw_last) < 19 else None
    hub, request, store = admin.request.app.state.live, admin.request, admin.store

    async def stream() -> AsyncIterator[str]:
        nonlocal cursor
        loop = asyncio.get_running_loop()
        deadline = loop.time() + MAX_STREAM_SECONDS
        with hub.subscribe(ws.id) as woken:
            yield "retry: 2000\n\n"
            while loop.time() < deadline and not await request.is_disconnected():
                woken.clear()
                events = await store.live.events_after(ws, cursor, limit=BACKLOG if cursor is None else 200,
                                                       event_name=name or None, contact_id=contact_id)
                if cursor is None:
                    cursor = events[-1].id if events else await store.live.last_event_id(ws)
                for event in events:
                    cursor = max(cursor or 0, event.id)
                    yield f"id: {event.id}\ndata: {json.dumps(event.as_dict())}\n\n"
                try:
                    await asyncio.wait_for(woken.wait(), HEARTBEAT_SECONDS)
                except TimeoutError:
                    yield ": still here\n\n"  # keeps proxies from closing an idle stream

    return admin.finish(StreamingResponse(stream(), media_type="text/event-stream",
                                          headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}))


def live_routes() -> list[BaseRoute]:
    return [Route("/live", live_page, methods=["GET"]), Route("/live/stream", live_stream, methods=["GET"])]
