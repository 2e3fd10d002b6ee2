"""The official Node.js clients against a real Trailmark server, changing only the base URL / host.

- Intercom's Node SDK, ``intercom-client`` 7.x (``new IntercomClient({token, baseUrl})``): tests/node/intercom.mjs
- Segment's ``@segment/analytics-node`` 3.x (``new Analytics({writeKey, host})``): tests/node/segment.mjs

The server is uvicorn on a free port of 127.0.0.1, in a thread, on a fresh store (each backend), as in
tests/test_python_sdk.py. Each script runs under ``node`` in a subprocess, prints one JSON object (what the
client returned), and the test asserts on it, then on what the REST API and the store hold.

Versions are pinned in tests/node/package.json + package-lock.json; ``npm ci --prefix tests/node`` installs
them (scripts/test does when npm is available). Without ``node`` or tests/node/node_modules, these tests
are skipped and say why.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from trailmark.store.models import Workspace

from .live_server import in_store, running_server

NODE_DIR = Path(__file__).parent / "node"
NODE = shutil.which("node")
PACKAGES = ("intercom-client", "@segment/analytics-node")
NODE_TIMEOUT = 90  # seconds per script; both finish in about a second


def _skip_reason() -> str | None:
    if NODE is None:
        return "Node.js SDK tests skipped: `node` is not on PATH (install Node.js 20+, then npm ci --prefix tests/node)"
    missing = [p for p in PACKAGES if not (NODE_DIR / "node_modules" / p / "package.json").is_file()]
    if missing:
        return (f"Node.js SDK tests skipped: tests/node/node_modules lacks {', '.join(missing)} "
                "(run `npm ci --prefix tests/node`; scripts/test does when npm is available)")
    return None


pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")]


@dataclass
class Server:
    base_url: str
    store_url: str
    workspace: Workspace
    token: str
    write_key: str
    stop: Callable[[], None]

    def get(self, path: str, **params: Any) -> httpx.Response:
        """The REST API, read from Python."""
        return httpx.get(self.base_url + path, params=params, timeout=30,
                         headers={"Authorization": f"Bearer {self.token}"})

    def read(self, fn: Callable[[Any], Any]) -> Any:
        """Read the store from Python; stops the server first, so nothing else writes meanwhile."""
        self.stop()
        return in_store(self.store_url, fn)


@pytest.fixture
def server(store_url: str) -> Iterator[Server]:
    """A real server on a free port with one workspace (its access token and Segment write key)."""
    async def setup(store: Any) -> tuple[Workspace, str]:
        # The write key identifies users only where verification is not enforced (docs/sources.md).
        ws = await store.create_workspace("Node SDKs", enforce_identity_verification=False)
        return ws, await store.segment_write_key(ws)

    ws, key = in_store(store_url, setup)
    with running_server(store_url, "trailmark-node-sdk-server") as (base_url, stop):
        yield Server(base_url, store_url, ws, ws.access_token, key, stop)


def run_node(script: str, *args: str) -> dict[str, Any]:
    """Run tests/node/<script> and return the JSON object it printed."""
    assert NODE is not None
    proc = subprocess.run([NODE, script, *args], cwd=NODE_DIR, capture_output=True, text=True,
                          timeout=NODE_TIMEOUT)
    lines = proc.stdout.strip().splitlines()
    result = json.loads(lines[-1]) if lines else {}
    assert proc.returncode == 0 and "failed" not in result, (
        f"node {script} exited {proc.returncode}\nstdout: {proc.stdout[-4000:]}\nstderr: {proc.stderr[-4000:]}")
    return dict(result)


# ------------------------------------------------------------------ Intercom's Node SDK
def test_intercom_node_sdk_contacts_events_and_merge(server: Server) -> None:
    started = int(time.time())
    out = run_node("intercom.mjs", server.base_url, server.token)

    # What the SDK returned.
    user, lead = out["user"]["data"], out["lead"]["data"]
    assert out["user"]["status"] == 200 and user["type"] == "contact" and user["role"] == "user"
    ext = user["external_id"]
    assert ext.startswith("node-") and user["custom_attributes"] == {"plan": "pro", "seats": 3}
    assert out["lead"]["status"] == 200 and lead["role"] == "lead" and lead["external_id"] is None
    # POST /events: Intercom's 202 with an empty body (the SDK resolves to undefined); summaries: 200, empty.
    assert out["create_user_event"] == {"status": 202, "data": None}
    assert out["create_lead_event"] == {"status": 202, "data": None}
    assert out["summaries"] == {"status": 200, "data": None}

    listed = out["list"]["data"]
    assert out["list"]["status"] == 200 and listed["type"] == "event.list"
    [event] = listed["events"]
    assert (event["type"], event["event_name"], event["user_id"], event["intercom_user_id"], event["email"]) == (
        "event", "invited-friend", ext, user["id"], user["email"])
    assert event["metadata"] == out["metadata"]  # string, number, date, link, rich link, monetary amount
    assert started - 60 - 5 <= event["created_at"] <= int(time.time())
    assert listed["pages"]["since"].startswith(server.base_url + "/events?")
    # The newer data-events client (filter as a JSON object in the query) lists the same events.
    assert out["data_events"]["status"] == 200 and out["data_events"]["data"]["events"] == listed["events"]
    counts = {e["name"]: e["count"] for e in out["summary"]["data"]["events"]}
    assert out["summary"]["data"]["type"] == "event.summary" and counts == {"invited-friend": 1, "placed-order": 3}
    [lead_event] = out["lead_events"]["data"]["events"]
    assert (lead_event["event_name"], lead_event["intercom_user_id"], lead_event["metadata"]) == (
        "asked-question", lead["id"], {"topic": "pricing"})

    # The merge: the answer is the user, who now shows the lead's event; the lead is gone (404).
    merged = out["merged"]["data"]
    assert out["merged"]["status"] == 200 and (merged["id"], merged["role"]) == (user["id"], "user")
    after = out["after_merge"]["data"]["events"]
    assert [e["event_name"] for e in after] == ["asked-question", "invited-friend"]
    assert {e["intercom_user_id"] for e in after} == {user["id"]} and {e["user_id"] for e in after} == {ext}
    assert out["lead_gone"]["statusCode"] == 404 and out["lead_gone"]["body"]["errors"][0]["code"] == "not_found"
    assert out["found"]["data"]["id"] == user["id"]
    # Errors reach the SDK as its own classes with Intercom's error list.
    assert out["unknown_user"]["statusCode"] == 404
    assert out["unknown_user"]["body"]["errors"][0]["message"] == "User Not Found"
    assert out["unauthorized"]["class"] == "UnauthorizedError" and out["unauthorized"]["statusCode"] == 401
    assert out["unauthorized"]["isUnauthorizedError"] is True
    assert out["unauthorized"]["body"]["type"] == "error.list"

    # The REST API, read from Python, agrees.
    r = server.get(f"/contacts/{user['id']}")
    assert r.status_code == 200 and r.json()["external_id"] == ext
    assert server.get(f"/contacts/{lead['id']}").status_code == 404
    r = server.get("/events", type="user", user_id=ext)
    assert [e["event_name"] for e in r.json()["events"]] == ["asked-question", "invited-friend"]

    # And so does the store.
    async def check(store: Any) -> tuple[Any, list[Any], list[Any], list[Any]]:
        contact = await store.find_contact(server.workspace, user_id=ext)
        events = list(reversed(await store.events_for(server.workspace, contact, limit=10)))
        return (contact, events, await store.merges_for(server.workspace, contact.id),
                await store.imported_summaries(server.workspace, contact))

    contact, events, merges, imported = server.read(check)
    assert (contact.id, contact.role, contact.email) == (user["id"], "user", user["email"])
    assert [(e.event_name, e.source) for e in events] == [("invited-friend", "rest"), ("asked-question", "rest")]
    assert events[0].metadata == out["metadata"]
    assert events[0].metadata_types == {"invite_code": "string", "load": "number", "contact_date": "date",
                                        "article": "link", "link": "rich_link", "price": "money"}
    assert [(m.kind, m.from_contact, m.into_contact) for m in merges] == [("merge", lead["id"], user["id"])]
    assert [(s["name"], s["count"]) for s in imported] == [("placed-order", 3)]


# ------------------------------------------------------------------ Segment's analytics-node
def test_segment_analytics_node_identify_and_track(server: Server) -> None:
    started = int(time.time())
    out = run_node("segment.mjs", server.base_url, server.write_key, "r1")
    user_id, device = out["userId"], out["anonymousId"]

    # Every call was delivered (its callback got no error) in two batches of flushAt = 2, each a 200.
    assert out["first"] == [None, None] and out["second"] == [None, None]
    answers = out["answers"]
    assert [a["url"] for a in answers] == [server.base_url + "/v1/batch"] * 2
    assert [a["status"] for a in answers] == [200, 200]
    assert [[m["type"] for m in a["sent"]["batch"]] for a in answers] == [["page", "identify"], ["track", "track"]]
    first, second = answers[0]["body"], answers[1]["body"]
    assert (first["accepted"], first["identified"], first["rejected"], first["dropped"]) == (1, 1, [], [])
    assert (second["accepted"], second["rejected"]) == (2, [])
    # The properties of unsupported types are dropped and reported (the batch is still a 200, not a 500).
    dropped = {d["key"]: d["reason"] for d in second["dropped"]}
    assert {d["index"] for d in second["dropped"]} == {0}
    assert set(dropped) == {"gift", "tags", "shipping"}
    assert "boolean" in dropped["gift"] and "list" in dropped["tags"] and "nested" in dropped["shipping"]
    # A wrong write key: 401 in the error shape, reported by the library as a failed delivery.
    assert out["refused"]["delivery"] == "[401] Unauthorized"
    [refused] = out["refused"]["answers"]
    assert refused["status"] == 401 and refused["body"]["errors"][0]["code"] == "unauthorized"
    assert out["errors"] == [{"code": "delivery_failure", "reason": "[401] Unauthorized"}]

    # The REST API shows the events on the user.
    r = server.get("/events", type="user", user_id=user_id)
    assert r.status_code == 200, r.text
    assert sorted(e["event_name"] for e in r.json()["events"]) == ["opened receipt", "order completed",
                                                                   "viewed-page"]

    async def check(store: Any) -> tuple[Any, list[Any], int]:
        user = await store.find_contact(server.workspace, user_id=user_id)
        events = list(reversed(await store.events_for(server.workspace, user, limit=10)))
        return user, events, await store.count_events(server.workspace)

    user, events, total = server.read(check)
    # identify: the device's visitor became the user, with the traits.
    assert (user.role, user.external_id, user.visitor_id) == ("user", user_id, device)
    assert (user.email, user.name, user.custom_attributes) == (f"{user_id}@example.com", "Sam Gamgee",
                                                               {"plan": "pro", "seats": 2})
    # The page (anonymous, before identify), the track and the device's later track, all on the user.
    assert [(e.event_name, e.source) for e in events] == [
        ("viewed-page", "segment"), ("order completed", "segment"), ("opened receipt", "segment")]
    assert all(started - 5 <= e.created_at <= int(time.time()) for e in events)
    assert events[0].metadata == {"name": "Pricing", "url": "https://shop.example/pricing", "title": "Pricing",
                                  "path": "/pricing"}
    assert events[1].metadata == {"order_id": "A-17", "revenue": 49.9, "currency": "EUR",
                                  "coupon_url": "https://shop.example/c/SAVE",
                                  "price": {"amount": 4990, "currency": "eur"}}
    assert events[1].metadata_types["coupon_url"] == "link" and events[1].metadata_types["price"] == "money"
    assert total == 3  # nothing from the refused batch
