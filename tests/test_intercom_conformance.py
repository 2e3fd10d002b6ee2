"""Conformance to Intercom's own published OpenAPI description of its REST API 2.11
(tests/data/intercom-openapi/, MIT, copied unchanged beside its licence).

- Real answers: each Intercom operation Trailmark implements is called on a real app (every backend), and its
  JSON answers are validated against the description's response schemas (schemathesis'
  ``APIOperation.validate_response``: the documented status's schema, its content type).
- Generated requests (``slow``): schemathesis generates requests for those operations from Intercom's
  description and sends them with a Bearer token; no answer may be a 5xx, and every documented answer must
  conform to its schema. Bounded: a few examples per operation.

Where Intercom's real answers differ from its description, Trailmark follows the real answers: each such
difference is patched into the loaded description in :data:`REAL_ANSWERS_DIFFER`, named and explained, and a
test checks that each patch still finds what it patches.
"""

from __future__ import annotations

import copy
import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from starlette.routing import Route

from trailmark.admin import auth
from trailmark.app import create_app, routes
from trailmark.settings import Settings
from trailmark.store import open_store
from trailmark.store.models import AppendRequest, NewEvent

from .schemathesis_runs import in_thread, run_examples

DESCRIPTION = Path(__file__).parent / "data" / "intercom-openapi" / "api.intercom.io-2.11.yaml"

# Every Intercom operation Trailmark implements (server/app.py, server/rest_messages.py). Trailmark's own
# endpoints (/trailmark/…, /messenger/…, Segment, Stripe, /contacts/find_by_external_id, which 2.11 does not
# describe) are checked against Trailmark's own description in test_openapi.py.
IMPLEMENTED = [
    ("POST", "/events"), ("GET", "/events"), ("POST", "/events/summaries"),
    ("GET", "/visitors"), ("PUT", "/visitors"), ("POST", "/visitors/convert"),
    ("POST", "/contacts"), ("GET", "/contacts"), ("POST", "/contacts/search"), ("POST", "/contacts/merge"),
    ("GET", "/contacts/{contact_id}"), ("PUT", "/contacts/{contact_id}"), ("DELETE", "/contacts/{contact_id}"),
    ("POST", "/messages"),
]


def _set_schema(schema: dict[str, Any], new: dict[str, Any]) -> None:
    schema.clear()
    schema.update(new)


# (JSON pointer into the description, what is done there, why). Each one is where Intercom's real answers
# differ from its own description, and Trailmark answers as Intercom really does.
REAL_ANSWERS_DIFFER: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    # Intercom's contacts carry relative list urls ("/contacts/{id}/tags"), typed as absolute URIs.
    ("/components/schemas/contact_tags/properties/url", lambda s: s.pop("format"),
     "a contact's tags url is relative (/contacts/{id}/tags), not a URI"),
    ("/components/schemas/contact_notes/properties/url", lambda s: s.pop("format"),
     "a contact's notes url is relative (/contacts/{id}/notes), not a URI"),
    ("/components/schemas/contact_companies/properties/url", lambda s: s.pop("format"),
     "a contact's companies url is relative (/contacts/{id}/companies), not a URI"),
    # Intercom's own recorded answer (the description's example) carries "email": "" for a visitor without one.
    ("/components/schemas/visitor/properties/email", lambda s: s.pop("format"),
     "a visitor without an email has the empty string, not an email address"),
    # A contact made without an email (a user by external_id alone, or a lead from a page) has none: Trailmark
    # answers null, as for every other absent contact field, where the description types it string only.
    ("/components/schemas/contact/properties/email", lambda s: s.__setitem__("nullable", True),
     "a contact without an email has null"),
    ("/components/schemas/contact/properties/email_domain", lambda s: s.__setitem__("nullable", True),
     "a contact without an email has no email domain: null"),
    # GET /events answers the list of events (type event.list, described as data_event_list but linked to no
    # operation) and, with summary=true, the summary: the description names only the summary.
    ("/paths/~1events/get/responses/200/content/application~1json/schema",
     lambda s: _set_schema(s, {"anyOf": [{"$ref": "#/components/schemas/data_event_list"},
                                         {"$ref": "#/components/schemas/data_event_summary"}]}),
     "GET /events without summary=true answers Intercom's event.list, not the summary"),
]


def _pointer(doc: dict[str, Any], pointer: str) -> dict[str, Any]:
    node: Any = doc
    for part in pointer.lstrip("/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    assert isinstance(node, dict)
    return node


@functools.cache
def _raw_description() -> dict[str, Any]:
    loaded: dict[str, Any] = schemathesis.openapi.from_path(DESCRIPTION).raw_schema
    return loaded


def description() -> dict[str, Any]:
    """Intercom's description with the named exceptions applied (a fresh copy each time)."""
    doc = copy.deepcopy(_raw_description())
    for pointer, change, _why in REAL_ANSWERS_DIFFER:
        change(_pointer(doc, pointer))
    return doc


def intercom_schema(app: Any = None) -> Any:
    schema = schemathesis.openapi.from_dict(description())
    if app is not None:
        schema.app = app
    return schema


def operation(schema: Any, method: str, path: str) -> Any:
    found = schema.find_operation_by_path(method, path)
    assert found is not None, (method, path)
    return found


# ------------------------------------------------------------------------------------------ the description
def test_the_copy_is_intercoms_2_11_description_with_its_licence():
    doc = _raw_description()
    assert doc["info"]["version"] == "2.11" and doc["openapi"].startswith("3.")
    assert "MIT License" in (DESCRIPTION.parent / "LICENSE").read_text()


def test_every_implemented_operation_is_described_by_intercom_and_routed_here():
    doc = _raw_description()
    routed = {(m, r.path) for r in routes() if isinstance(r, Route) for m in (r.methods or ())}
    for method, path in IMPLEMENTED:
        assert method.lower() in doc["paths"].get(path, {}), (method, path)
        assert (method, path) in routed, (method, path)


def test_each_exception_still_patches_something_intercom_describes():
    doc = copy.deepcopy(_raw_description())
    for pointer, change, why in REAL_ANSWERS_DIFFER:
        before = copy.deepcopy(_pointer(doc, pointer))
        change(_pointer(doc, pointer))
        assert _pointer(doc, pointer) != before, (pointer, why)


# ------------------------------------------------------------------------------------------ real answers
async def _checked(schema: Any, method: str, path: str, response: httpx.Response, status: int) -> Any:
    assert response.status_code == status, (method, path, response.text)
    operation(schema, method, path).validate_response(response)
    return response.json() if response.content else None


async def test_real_answers_conform_to_intercoms_response_schemas(harness):
    h = harness
    schema = intercom_schema()
    c, headers = h.client, {**h.auth, "Intercom-Version": "2.11"}
    teammate = await h.store.create_teammate("grace@example.com", auth.hash_password("a long enough password"))

    async def call(method: str, path: str, status: int, url: str | None = None, **kw: Any) -> Any:
        r = await c.request(method, url or path, headers=headers, **kw)
        return await _checked(schema, method, path, r, status)

    ada = await call("POST", "/contacts", 200, json={
        "role": "user", "external_id": "42", "email": "ada@example.com", "name": "Ada",
        "avatar": "https://example.com/ada.png", "custom_attributes": {"plan": "pro"}})
    assert ada["avatar"] == {"type": "avatar", "image_url": "https://example.com/ada.png"}
    lead = await call("POST", "/contacts", 200, json={"role": "lead", "email": "lee@example.com"})
    await call("GET", "/contacts/{contact_id}", 200, f"/contacts/{ada['id']}")
    await call("PUT", "/contacts/{contact_id}", 200, f"/contacts/{ada['id']}", json={"name": "Ada L."})
    await call("GET", "/contacts", 200, params={"per_page": 1})
    await call("POST", "/contacts/search", 200, json={
        "query": {"field": "email", "operator": "=", "value": "ada@example.com"}})
    await call("POST", "/events", 202, json={"event_name": "signed-up", "user_id": "42",
                                             "created_at": int(time.time()), "metadata": {"plan": "pro"}})
    await call("GET", "/events", 200, params={"type": "user", "user_id": "42"})
    await call("GET", "/events", 200, params={"type": "user", "user_id": "42", "summary": "true"})
    await call("POST", "/events/summaries", 200, json={
        "user_id": "42", "event_summaries": {"event_name": "imported", "count": 2}})
    await call("POST", "/messages", 200, json={
        "message_type": "inapp", "body": "<p>Hi <b>Ada</b></p>",
        "from": {"type": "admin", "id": str(teammate.id)}, "to": {"type": "user", "id": ada["id"]}})

    visitor_id = (await h.visitor())["visitor_id"]
    await call("GET", "/visitors", 200, params={"user_id": visitor_id})
    await call("PUT", "/visitors", 200, json={"user_id": visitor_id, "name": "Visiting"})
    await call("POST", "/visitors/convert", 200, json={
        "type": "user", "user": {"email": "lee@example.com"}, "visitor": {"user_id": visitor_id}})
    merged = await call("POST", "/contacts", 200, json={"role": "lead", "email": "merge-me@example.com"})
    await call("POST", "/contacts/merge", 200, json={"from": merged["id"], "into": ada["id"]})
    await call("DELETE", "/contacts/{contact_id}", 200, f"/contacts/{lead['id']}")

    # Errors Intercom documents for these operations: 401 (no token) and 404 (an unknown visitor).
    r = await c.get(f"/contacts/{ada['id']}")
    await _checked(schema, "GET", "/contacts/{contact_id}", r, 401)
    await call("GET", "/visitors", 404, params={"user_id": "no-such-visitor"})


# ------------------------------------------------------------------------------------------ generated requests
# Per operation and mode: the bound of the run (14 operations, up to 3 runs each: about 15 s per backend on 2
# idle cores; no timing is asserted, a busy machine only makes it slower).


async def _seed(url: str) -> dict[str, str]:
    store = open_store(url)
    await store.open()
    try:
        ws = await store.create_workspace("Intercom conformance")
        teammate = await store.create_teammate("grace@example.com", auth.hash_password("a long enough password"))
        user = await store.create_contact(ws, "user", external_id="seed-user", email="seed@example.com")
        lead = await store.create_contact(ws, "lead", email="lead@example.com")
        other = await store.create_contact(ws, "lead", email="other@example.com")
        visitor = await store.create_visitor(ws)
        await store.append_events(AppendRequest(ws.id, user.id, "rest", [
            NewEvent(event_name="did-it", created_at=int(time.time()), dedupe_key="seed", metadata={},
                     metadata_types={})]))
        assert ws.access_token is not None
        return {"token": ws.access_token, "user": user.id, "lead": lead.id, "other": other.id,
                "visitor_id": visitor.visitor_id or "", "admin": str(teammate.id)}
    finally:
        await store.close()


def _pins(seed: dict[str, str]) -> dict[tuple[str, str], dict[str, Any]]:
    """Known identifiers per operation, so generated requests also reach the success paths."""
    return {
        ("GET", "/contacts/{contact_id}"): {"path_parameters": {"contact_id": seed["user"]}},
        ("PUT", "/contacts/{contact_id}"): {"path_parameters": {"contact_id": seed["user"]}},
        ("DELETE", "/contacts/{contact_id}"): {"path_parameters": {"contact_id": seed["other"]}},
        ("GET", "/events"): {"query": {"type": "user", "user_id": "seed-user"}},
        ("GET", "/visitors"): {"query": {"user_id": seed["visitor_id"]}},
        ("PUT", "/visitors"): {"body": {"user_id": seed["visitor_id"], "name": "Pinned"}},
        ("POST", "/events"): {"body": {"event_name": "pinned-event", "user_id": "seed-user",
                                       "created_at": int(time.time())}},
        ("POST", "/contacts/merge"): {"body": {"from": seed["lead"], "into": seed["user"]}},
        ("POST", "/messages"): {"body": {"message_type": "inapp", "body": "<p>Hi</p>",
                                         "from": {"type": "admin", "id": seed["admin"]},
                                         "to": {"type": "user", "id": seed["user"]}}},
    }


@pytest.mark.slow
def test_schemathesis_from_intercoms_description_finds_no_5xx(store_url, monkeypatch):
    monkeypatch.setenv("TRAILMARK_RATE_LIMIT", "100000")  # the run itself must not hit the limit
    seed = in_thread(lambda: _seed(store_url))
    app = create_app(Settings(database_url=store_url, purge_interval_seconds=0))
    schema = intercom_schema(app)
    headers = {"Authorization": f"Bearer {seed['token']}"}
    pins = _pins(seed)
    try:
        for method, path in IMPLEMENTED:
            op = operation(schema, method, path)
            # Valid requests: no 5xx, and every documented answer in Intercom's shape.
            run_examples(op.as_strategy(generation_mode=GenerationMode.POSITIVE), headers,
                 [not_a_server_error, response_schema_conformance])
            # Invalid ones: refused in Intercom's error shape (a 4xx), never a 5xx.
            run_examples(op.as_strategy(generation_mode=GenerationMode.NEGATIVE), headers, [not_a_server_error])
            if (method, path) in pins:
                run_examples(op.as_strategy(**pins[(method, path)]), headers,
                     [not_a_server_error, response_schema_conformance])
    finally:
        from schemathesis.python import asgi

        asgi.shutdown_lifespans()
