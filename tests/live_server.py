"""A real Trailmark server for synchronous tests that drive it with third-party clients (SDKs, Segment's
libraries, Node scripts): uvicorn on a free loopback port in a thread, and the store read or prepared from
a loop of its own."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import uvicorn

from trailmark.app import create_app
from trailmark.settings import Settings
from trailmark.store import with_store


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def in_store(url: str, fn: Callable[[Any], Awaitable[Any]]) -> Any:
    """``await fn(store)`` on a store of its own, in an event loop of its own (the caller is synchronous)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, with_store(url, fn)).result()


@contextlib.contextmanager
def running_server(store_url: str, name: str = "trailmark-test-server") -> Iterator[tuple[str, Callable[[], None]]]:
    """``(base_url, stop)`` of a server on ``store_url``; ``stop`` (idempotent) closes its lifespan."""
    port = free_port()
    app = create_app(Settings(database_url=store_url, purge_interval_seconds=0))
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=srv.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)

    def stop() -> None:
        srv.should_exit = True
        thread.join(timeout=15)
        assert not thread.is_alive()

    try:
        yield f"http://127.0.0.1:{port}", stop
    finally:
        stop()
