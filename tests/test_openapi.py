"""``GET /openapi.json``: it describes every routed endpoint, and a bounded schemathesis run against the ASGI
app (a valid Bearer token, a seeded workspace) finds no 5xx and no answer that breaks the document.

Bounded and deterministic: ``schemathesis_runs.EXAMPLES`` examples per operation and generation mode,
hypothesis derandomized (a fixed seed), no example database. Besides fully generated requests, each operation
runs once more with the seeded contact's identifiers pinned, so the success shapes (200 contact, event list,
summary, visitor) are checked too, not only the 4xx ones.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import pytest
import schemathesis
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from trailmark import openapi
from trailmark.app import create_app
from trailmark.settings import Settings
from trailmark.store import open_store
from trailmark.store.models import AppendRequest, NewEvent

from .schemathesis_runs import in_thread, run_examples

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]


def test_every_routed_endpoint_is_documented():
    app = create_app(Settings(database_url=":memory:"))
    documented = {(route, method) for (_, method), (route, _) in openapi.OPERATIONS.items()}
    routed = {(path, method) for path, method in openapi.routed(app.routes)
              if not path.startswith(openapi.UNDOCUMENTED_PREFIXES)}
    assert routed - documented == set(), "document these in server/openapi.py"
    doc = openapi.document(app.routes, "http://testserver")
    assert doc["openapi"] == "3.1.0"
    listed = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert len(listed) == len(routed)
    for (path, method), op in ((k, v) for k, (_, v) in openapi.OPERATIONS.items() if (k[0], k[1]) in listed):
        assert any(code.startswith("2") for code in op["responses"]), (path, method)
        assert all(code.startswith("2") or "Error" in str(r.get("content", {})) or code == "404"
                   for code, r in op["responses"].items()), (path, method)


async def test_openapi_json_is_served_with_the_servers_url(harness):
    r = await harness.client.get("/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["servers"] == [{"url": "http://testserver"}]
    assert {"/events", "/events/summaries", "/contacts", "/contacts/search", "/contacts/{contact_id}",
            "/visitors", "/visitors/convert", "/messenger/web/ping"} <= set(doc["paths"])
    assert doc["paths"]["/contacts/{contact_id}"].keys() == {"get", "put", "delete"}


async def _seed(url: str) -> dict[str, str]:
    store = open_store(url)
    await store.open()
    try:
        ws = await store.create_workspace("Schemathesis")
        user = await store.create_contact(ws, "user", external_id="seed-user", email="seed@example.com")
        lead = await store.create_contact(ws, "lead", email="lead@example.com")
        visitor = await store.create_visitor(ws)
        now = int(time.time())
        await store.append_events(AppendRequest(ws.id, user.id, "rest", [
            NewEvent(event_name=f"did-{i}", created_at=now - i, dedupe_key=f"s{i}", metadata={"n": i},
                     metadata_types={"n": "number"}) for i in range(3)]))
        assert ws.access_token is not None  # shown once, on creation
        return {"token": ws.access_token, "app_id": ws.app_id, "user": user.id, "lead": lead.id,
                "visitor_id": visitor.visitor_id or ""}
    finally:
        await store.close()


def _pins(seed: dict[str, str]) -> dict[tuple[str, str], dict[str, Any]]:
    """Known identifiers per operation, so generated requests also reach the success paths."""
    return {
        ("GET", "/contacts/{contact_id}"): {"path_parameters": {"contact_id": seed["user"]}},
        ("PUT", "/contacts/{contact_id}"): {"path_parameters": {"contact_id": seed["lead"]}},
        ("DELETE", "/contacts/{contact_id}"): {"path_parameters": {"contact_id": seed["lead"]}},
        ("GET", "/contacts/find_by_external_id/{external_id}"): {"path_parameters": {"external_id": "seed-user"}},
        ("GET", "/events"): {"query": {"type": "user", "user_id": "seed-user"}},
        ("GET", "/visitors"): {"query": {"user_id": seed["visitor_id"]}},
        ("GET", "/widget/{app_id}"): {"path_parameters": {"app_id": seed["app_id"]}},
        ("GET", "/widget/{app_id}/panel.js"): {"path_parameters": {"app_id": seed["app_id"]}},
        ("POST", "/events"): {"body": {"event_name": "pinned-event", "user_id": "seed-user", "metadata": {"n": 1}}},
        ("POST", "/events/summaries"): {"body": {"user_id": "seed-user",
                                                 "event_summaries": {"event_name": "imported", "count": 2}}},
        ("POST", "/contacts/search"): {"body": {"query": {"field": "external_id", "operator": "=",
                                                          "value": "seed-user"}}},
        ("PUT", "/visitors"): {"body": {"user_id": seed["visitor_id"], "name": "Pinned"}},
        ("POST", "/integrations/stripe/webhook/{app_id}"): {"path_parameters": {"app_id": seed["app_id"]}},
    }


@pytest.mark.slow
def test_schemathesis_finds_no_5xx_and_no_answer_outside_the_schema(store_url, tmp_path, monkeypatch):
    monkeypatch.setenv("TRAILMARK_RATE_LIMIT", "100000")  # the run itself must not hit the limit
    seed = in_thread(lambda: _seed(store_url))
    app = create_app(Settings(database_url=store_url, purge_interval_seconds=0))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    headers = {"Authorization": f"Bearer {seed['token']}"}
    pins = _pins(seed)
    ran = set()
    try:
        for result in schema.get_all_operations():
            if isinstance(result, Err):
                raise result.err()
            operation = result.ok()
            key = (operation.method.upper(), operation.path)
            run_examples(operation.as_strategy(generation_mode=GenerationMode.POSITIVE), headers, CHECKS)
            # Unsatisfiable: nothing to make invalid (e.g. one free-form string path parameter).
            with contextlib.suppress(Unsatisfiable):
                run_examples(operation.as_strategy(generation_mode=GenerationMode.NEGATIVE), headers, CHECKS)
            if key in pins:
                run_examples(operation.as_strategy(**pins[key]), headers, CHECKS)
            ran.add((operation.path, operation.method.lower()))
    finally:
        from schemathesis.python import asgi

        asgi.shutdown_lifespans()
    documented = {(path, method) for path, ops in schema.raw_schema["paths"].items() for method in ops}
    assert ran == documented - {("/openapi.json", "get")}  # schemathesis leaves its own source out
