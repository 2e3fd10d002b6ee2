"""The live view (server/live.py, server/admin/live_view.py, server/store/live_reads.py): events in arrival order
after a cursor, filtered by name and by contact (merged contacts included), and streamed as server-sent events by
a real server as they are committed — on SQLite in one process, and on PostgreSQL across two processes (an event
tracked through one server appears on the other's stream: LISTEN/NOTIFY)."""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from trailmark.admin import auth

from .backends import POSTGRES_SKIP, fresh_postgres_url
from .live_server import in_store, running_server
from .test_multiprocess import server_process

PASSWORD = "correct horse battery staple"


async def test_events_after_a_cursor_in_order_filtered_by_name_and_merged_contact(harness):
    h = harness
    me = await h.visitor()
    other = await h.visitor()
    await h.track(me["session"], {"id": "a", "event_name": "first"}, {"id": "b", "event_name": "second"})
    await h.track(other["session"], {"id": "c", "event_name": "first"})
    latest = await h.store.live.events_after(h.workspace, None, limit=10)
    assert [e.event_name for e in latest] == ["first", "second", "first"]
    after = await h.store.live.events_after(h.workspace, latest[0].id)
    assert [e.id for e in after] == [latest[1].id, latest[2].id]
    named = await h.store.live.events_after(h.workspace, 0, event_name="first")
    assert {e.contact_id for e in named} == {me["contact"]["id"], other["contact"]["id"]}
    # After the visitor becomes a user (merged into an existing one), its events show under the user.
    user = await h.store.create_contact(h.workspace, "user", external_id="u-1", name="Ada")
    await h.visitor(device=me["device"], session=me["session"], user={"user_id": "u-1"})
    mine = await h.store.live.events_after(h.workspace, 0, contact_id=user.id)
    assert [(e.event_name, e.name, e.role) for e in mine] == [("first", "Ada", "user"), ("second", "Ada", "user")]


def sign_in(client: httpx.Client) -> None:
    page = client.get("/admin/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token
    r = client.post("/admin/login", data={"csrf": token.group(1), "email": "live@example.com", "password": PASSWORD,
                                          "next": "/admin/contacts"})
    assert r.status_code == 303 and "/admin/login" not in r.headers["location"], r.text


@contextlib.contextmanager
def stream(client: httpx.Client, query: str = "") -> Iterator[Iterator[dict[str, Any]]]:
    """The live stream's events as dicts (heartbeats and the retry line skipped)."""
    with client.stream("GET", "/admin/live/stream" + query, timeout=httpx.Timeout(20.0)) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")

        def events() -> Iterator[dict[str, Any]]:
            for line in r.iter_lines():
                if line.startswith("data: "):
                    yield json.loads(line[6:])

        yield events()


def track_soon(base_url: str, app_id: str, name: str, delay: float = 0.3) -> threading.Thread:
    """A browser's ping then one event, from another thread, after the stream is open."""
    def run() -> None:
        time.sleep(delay)
        with httpx.Client(base_url=base_url) as c:
            me = c.post("/messenger/web/ping", content=json.dumps({"app_id": app_id})).json()
            r = c.post("/messenger/web/events", content=json.dumps(
                {"app_id": app_id, "session": me["session"], "events": [{"id": name, "event_name": name,
                                                                       "metadata": {"n": 1}}]}))
            assert r.status_code == 200, r.text

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


async def _prepare(store: Any) -> Any:
    ws = await store.create_workspace("Live")
    await store.create_teammate("live@example.com", auth.hash_password(PASSWORD))
    return ws


def test_a_real_server_streams_events_as_they_are_committed(store_url):
    ws = in_store(store_url, _prepare)
    with running_server(store_url) as (base, _stop), httpx.Client(base_url=base) as client:
        sign_in(client)
        with stream(client, "?name=live-one") as events:
            sender = track_soon(base, ws.app_id, "live-one")
            started = time.monotonic()
            event = next(events)
            took = time.monotonic() - started
            sender.join()
        assert event["event_name"] == "live-one" and event["metadata"] == {"n": 1}
        assert event["contact"]["role"] == "visitor"
        print(f"live view: event on the stream {took * 1000:.0f} ms after the stream opened (tracked at +300 ms)")
        # Reconnecting with Last-Event-ID: nothing is sent twice, later events come through.
        response = client.get("/admin/live")
        assert response.status_code == 200 and 'data-stream="/admin/live/stream?' in response.text


@pytest.mark.postgres
@pytest.mark.skipif(POSTGRES_SKIP is not None, reason=f"needs PostgreSQL: {POSTGRES_SKIP}")
async def test_an_event_tracked_on_one_process_appears_on_anothers_stream():
    async with fresh_postgres_url() as url:
        from trailmark.store import open_store

        store = open_store(url)
        await store.open()
        try:
            ws = await _prepare(store)
        finally:
            await store.close()
        with server_process(url) as a, server_process(url) as b:
            def watch() -> dict[str, Any]:
                with httpx.Client(base_url=b) as client:
                    sign_in(client)
                    with stream(client, "?name=across-processes") as events:
                        sender = track_soon(a, ws.app_id, "across-processes", delay=0.5)
                        event = next(events)
                        sender.join()
                        return event

            import asyncio

            event = await asyncio.to_thread(watch)
        assert event["event_name"] == "across-processes"
