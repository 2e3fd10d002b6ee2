"""``POST /messenger/web/events`` is served by ``TrailmarkApp`` without Starlette's middleware and router
(server/app.py): the answers must be the ones the routed app gives, errors included."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest

from trailmark import messenger
from trailmark.app import EVENTS_PATH

ORIGIN = "https://shop.example"


async def test_a_stored_event_is_answered_with_its_result_and_cors_headers(harness):
    session = (await harness.visitor())["session"]
    response = await harness.client.post(EVENTS_PATH, headers={"origin": ORIGIN}, content=json.dumps(
        {"app_id": harness.workspace.app_id, "session": session, "events": [{"id": "a1", "event_name": "signed-up"}]}))
    assert response.status_code == 200
    assert response.json() == {"type": "event.batch", "results": [{"id": "a1", "status": "accepted"}]}
    assert response.headers["content-type"] == "application/json"
    assert response.headers["access-control-allow-origin"] == "*"
    assert int(response.headers["content-length"]) == len(response.content)
    assert await harness.event_count() == 1


async def test_refusals_keep_intercoms_error_shape_and_cors_headers(harness):
    response = await harness.client.post(EVENTS_PATH, headers={"origin": ORIGIN}, content=json.dumps(
        {"app_id": harness.workspace.app_id, "session": "forged", "events": []}))
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "invalid_identity"
    assert response.headers["access-control-allow-origin"] == "*"  # the shim can read why
    not_json = await harness.client.post(EVENTS_PATH, content=b"{nope")
    assert not_json.status_code == 400 and not_json.json()["type"] == "error.list"


async def test_other_methods_still_go_through_the_router(harness):
    response = await harness.client.get(EVENTS_PATH)
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "not_found"


async def test_an_unexpected_error_is_a_logged_500_in_intercoms_shape(harness, monkeypatch, caplog):
    async def broken(request: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(messenger, "events", broken)
    with caplog.at_level(logging.ERROR, logger="trailmark"):
        response = await harness.client.post(EVENTS_PATH, content=b"{}")
    assert response.status_code == 500
    body = response.json()
    assert body["type"] == "error.list" and body["request_id"]
    assert body["errors"] == [{"code": "server_error", "message": "Internal server error"}]
    assert any(r.exc_info and "a bug" in str(r.exc_info[1]) for r in caplog.records)


@pytest.mark.parametrize("root", ["/tracker"])
async def test_behind_a_path_prefix_the_route_is_found_after_the_root_path(harness, root):
    session = (await harness.visitor())["session"]
    transport = httpx.ASGITransport(app=harness.app, root_path=root)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.post(root + EVENTS_PATH, content=json.dumps(
            {"app_id": harness.workspace.app_id, "session": session, "events": [{"id": "p1", "event_name": "x"}]}))
    assert response.status_code == 200
    assert response.json()["results"][0]["status"] == "accepted"
