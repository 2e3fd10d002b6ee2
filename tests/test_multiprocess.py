"""Two real server processes on one PostgreSQL database (issue 4): one visitor's events go alternately to
both, each event is also sent to both at once, the visitor converts through one of them, and the lead's
history holds every event exactly once. Shared state lives only in the database, so this must hold."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from trailmark.store import open_store

from .backends import POSTGRES_SKIP, fresh_postgres_url

pytestmark = [pytest.mark.postgres, pytest.mark.slow,
              pytest.mark.skipif(POSTGRES_SKIP is not None, reason=f"needs PostgreSQL: {POSTGRES_SKIP}")]

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server_process(database_url: str) -> Iterator[str]:
    """``python -m trailmark serve`` on a free port; yields its base URL once /health answers."""
    port = free_port()
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in the finally below)
    env = {**os.environ, "TRAILMARK_DATABASE_URL": database_url}
    proc = subprocess.Popen([sys.executable, "-m", "trailmark", "serve", "--database", database_url,
                             "--port", str(port), "--log-level", "warning"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise AssertionError(f"server exited with {proc.returncode}:\n{log.read().decode()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError("server did not answer /health within 30 s")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    async with fresh_postgres_url() as url:
        yield url


async def test_two_servers_one_database_store_every_event_once(database_url):
    store = open_store(database_url)
    await store.open()
    try:
        ws = await store.create_workspace("Two servers")
        # One visitor makes many new names here: lift the daily budgets of new names from browsers.
        await store.update_workspace(ws.id, browser_new_names_per_contact=1000, browser_new_names_per_address=1000)
        with server_process(database_url) as a_url, server_process(database_url) as b_url:
            async with httpx.AsyncClient(base_url=a_url) as a, httpx.AsyncClient(base_url=b_url) as b:
                servers = (a, b)

                async def post(client: httpx.AsyncClient, path: str, **body: object) -> dict[str, Any]:
                    r = await client.post(path, content=json.dumps({"app_id": ws.app_id, **body}),
                                          headers={"content-type": "text/plain"})
                    assert r.status_code == 200, r.text
                    return dict(r.json())

                me = await post(a, "/messenger/web/ping")
                cid = me["contact"]["id"]
                names: list[str] = []

                async def send(i: int, session: str) -> None:
                    # To one server, then the same event to both at once: stored once, answered
                    # "accepted" exactly once.
                    name = f"step-{i}"
                    names.append(name)
                    event = {"id": f"client-{i}", "event_name": name, "metadata": {"i": i}}
                    first = await post(servers[i % 2], "/messenger/web/events", session=session, events=[event])
                    again = await asyncio.gather(*(post(s, "/messenger/web/events", session=session, events=[event])
                                                   for s in servers))
                    statuses = [first["results"][0]["status"]] + [r["results"][0]["status"] for r in again]
                    assert statuses == ["accepted", "duplicate", "duplicate"], statuses

                for i in range(10):
                    await send(i, me["session"])
                # First contact through server B: an email from the browser makes the visitor a lead.
                lead = await post(b, "/messenger/web/ping", device=me["device"], session=me["session"],
                                  user={"email": "two-servers@example.com"})
                assert lead["contact"] == {"id": cid, "role": "lead"}
                for i in range(10, 16):
                    await send(i, lead["session"])
                # Both tabs' stale sessions keep working: they name the same contact.
                await send(16, me["session"])

                for client in servers:
                    r = await client.get("/events", params={"type": "user", "intercom_user_id": cid, "per_page": 100},
                                         headers={"Authorization": f"Bearer {ws.access_token}"})
                    assert r.status_code == 200, r.text
                    history = [e["event_name"] for e in r.json()["events"]]
                    assert sorted(history) == sorted(names) and len(history) == len(set(history)) == 17
        assert await store.count_events(ws) == 17
        contact = await store.get_contact(ws, cid)
        assert contact is not None and contact.role == "lead" and contact.email == "two-servers@example.com"
        assert [m.kind for m in await store.merges_for(ws, cid)] == ["convert"]
    finally:
        await store.close()
