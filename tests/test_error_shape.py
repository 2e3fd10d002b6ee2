"""One table: every endpoint × every kind of bad input.

Each row must get a 4xx (never a 5xx) in Intercom's error shape
(``{"type": "error.list", "request_id": …, "errors": [{"code", "message", "field"?}]}``), and nothing of the
request may be stored: no event, no event name, no contact.

The first table names each endpoint's own bad inputs; the second sends the inputs any JSON endpoint must
survive to *every* route the app has that takes a body, so a new endpoint is covered the day it is added.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from trailmark import identity
from trailmark.app import routes
from trailmark.http_edge import MAX_BODY_BYTES

NO_CONTACT = "000000000000000000000000"


@dataclass
class World:
    """What a bad request may try to touch: a user, a visitor with valid tokens, and the app's keys."""

    app_id: str
    token: str
    session: str
    device: str
    visitor_id: str
    visitor_contact: str
    user_contact: str
    other_session: str  # a valid session token of another workspace
    signing_key: str


Body = bytes | dict[str, Any] | Callable[[World], Any] | AsyncIterator[bytes] | None


@dataclass(frozen=True)
class Bad:
    method: str
    path: str
    body: Body = None
    auth: str = "bearer"  # bearer | none | wrong
    headers: tuple[tuple[str, str], ...] = ()
    status: int = 400
    code: str | None = None


def oversized() -> bytes:
    return b'{"app_id": "x", "pad": "' + b"x" * (MAX_BODY_BYTES + 1) + b'"}'


async def oversized_stream() -> AsyncIterator[bytes]:
    """An oversized body without Content-Length: the server must stop reading, not buffer it all."""
    yield b'{"pad": "'
    for _ in range(MAX_BODY_BYTES // 8192 + 2):
        yield b"x" * 8192
    yield b'"}'


def msg(**fields: Any) -> Callable[[World], dict[str, Any]]:
    """A messenger body with the world's app_id and session unless overridden (``None`` removes a key)."""
    def build(w: World) -> dict[str, Any]:
        body = {"app_id": w.app_id, "session": w.session, **{k: (v(w) if callable(v) else v)
                                                              for k, v in fields.items()}}
        return {k: v for k, v in body.items() if v is not None}
    return build


def ev(**fields: Any) -> dict[str, Any]:
    return {"id": "e1", "event_name": "upload-complete", **fields}


def rest(**fields: Any) -> Callable[[World], dict[str, Any]]:
    def build(w: World) -> dict[str, Any]:
        body = {"user_id": "314159", "event_name": "upload-complete", **fields}
        return {k: v for k, v in body.items() if v is not None}
    return build


def raw_msg(template: str) -> Callable[[World], bytes]:
    """A hand-written messenger body (for what json.dumps cannot produce); {app_id} and {session} filled."""
    return lambda w: template.replace("{app_id}", w.app_id).replace("{session}", w.session).encode()


PING, EVENTS, CONV = "/messenger/web/ping", "/messenger/web/events", "/messenger/web/conversations"
MESSENGER = {"ping": PING, "events": EVENTS, "conversations": CONV, "thread": "/messenger/web/thread",
             "mark": "/messenger/web/messages/1/shown"}

# Inputs every JSON endpoint must refuse the same way, whatever it is for.
GENERIC: dict[str, tuple[Body, int, str]] = {
    "malformed_json": (b'{"app_id": ', 400, "parameter_invalid"),
    "trailing_garbage": (b'{"app_id": "x"} x', 400, "parameter_invalid"),
    "json_list": (b"[]", 400, "parameter_invalid"),
    "json_string": (b'"ping"', 400, "parameter_invalid"),
    "json_number": (b"42", 400, "parameter_invalid"),
    "json_null": (b"null", 400, "parameter_invalid"),
    "empty_body": (b"", 400, "parameter_invalid"),
    "whitespace_body": (b"  \n", 400, "parameter_invalid"),
    "invalid_utf8": (b'{"app_id": "\xff\xfe"}', 400, "parameter_invalid"),
    "encoded_surrogate": (b'{"app_id": "\xed\xa0\x80"}', 400, "parameter_invalid"),
    "nan": (b'{"app_id": NaN}', 400, "parameter_invalid"),
    "infinity": (b'{"app_id": "x", "n": -Infinity}', 400, "parameter_invalid"),
    "float_overflow": (b'{"app_id": "x", "n": 1e400}', 400, "parameter_invalid"),
    "lone_surrogate": (b'{"app_id": "x\\ud800"}', 400, "parameter_invalid"),
    "oversized": (oversized(), 413, "request_too_large"),
}

CASES: dict[str, Bad] = {}
for _name, _path in MESSENGER.items():
    for _what, (_body, _status, _code) in GENERIC.items():
        CASES[f"{_name}-{_what}"] = Bad("POST", _path, _body, status=_status, code=_code)
    CASES.update({
        f"{_name}-oversized_declared": Bad("POST", _path, b"{}", headers=(("content-length", str(10**9)),),
                                           status=413, code="request_too_large"),
        f"{_name}-no_app_id": Bad("POST", _path, msg(app_id=None), code="parameter_not_found"),
        f"{_name}-app_id_number": Bad("POST", _path, msg(app_id=123), code="parameter_not_found"),
        f"{_name}-app_id_list": Bad("POST", _path, msg(app_id=["x"]), code="parameter_not_found"),
        f"{_name}-unknown_app_id": Bad("POST", _path, msg(app_id="nope1234"), status=404, code="not_found"),
        f"{_name}-app_id_with_lone_surrogate": Bad("POST", _path, raw_msg('{"app_id": "{app_id}\\udfff"}')),
        f"{_name}-get": Bad("GET", _path, status=404, code="not_found"),
        f"{_name}-put": Bad("PUT", _path, msg(), status=404, code="not_found"),
    })

CASES.update({
    # ping: wrong types and forged identities
    "ping-user_list": Bad("POST", PING, msg(user=["42"]), code="parameter_invalid"),
    "ping-user_string": Bad("POST", PING, msg(user="42"), code="parameter_invalid"),
    "ping-forged_user_hash": Bad("POST", PING, msg(user={"user_id": "42", "user_hash": "0" * 64}), status=401,
                                 code="identity_verification_failed"),
    "ping-user_hash_of_another_user": Bad("POST", PING, msg(user=lambda w: {
        "user_id": "42", "user_hash": identity.user_hash("guessed", "42")}), status=401,
        code="identity_verification_failed"),
    "ping-forged_jwt": Bad("POST", PING, msg(user={"intercom_user_jwt": "e30.eyJ1c2VyX2lkIjoiNDIifQ.c2ln"}),
                           status=401, code="identity_verification_failed"),
    # a message's beacon: only its own contact, a real delivery and a known mark
    "mark-unknown_mark": Bad("POST", "/messenger/web/messages/1/opened", msg(), status=404, code="not_found"),
    "mark-id_not_a_number": Bad("POST", "/messenger/web/messages/abc/shown", msg(), status=404, code="not_found"),
    "mark-id_too_long": Bad("POST", "/messenger/web/messages/" + "9" * 16 + "/shown", msg(), status=404,
                            code="not_found"),
    "mark-unknown_delivery": Bad("POST", "/messenger/web/messages/999999/clicked", msg(), status=404,
                                 code="not_found"),
    "mark-no_session": Bad("POST", "/messenger/web/messages/1/dismissed", msg(session=None), status=401,
                           code="invalid_identity"),
    "mark-forged_session": Bad("POST", "/messenger/web/messages/1/shown", msg(session="e30.forged"), status=401,
                               code="invalid_identity"),
    "mark-session_of_another_workspace": Bad("POST", "/messenger/web/messages/1/shown",
                                             msg(session=lambda w: w.other_session), status=401,
                                             code="invalid_identity"),
    # events: wrong top-level types
    "events-no_events": Bad("POST", EVENTS, msg(), code="parameter_invalid"),
    "events-events_object": Bad("POST", EVENTS, msg(events={"id": "e1", "event_name": "x"})),
    "events-events_string": Bad("POST", EVENTS, msg(events="upload-complete")),
    "events-events_empty": Bad("POST", EVENTS, msg(events=[])),
    "events-event_not_object": Bad("POST", EVENTS, msg(events=["upload-complete"])),
    "events-event_null": Bad("POST", EVENTS, msg(events=[None])),
    "events-too_many": Bad("POST", EVENTS, msg(events=[ev(id=f"e{i}") for i in range(101)]), status=413,
                           code="request_too_large"),
    # events: ids, names, times, metadata — one bad event refuses the whole batch
    "events-no_client_id": Bad("POST", EVENTS, msg(events=[ev(id=None)])),
    "events-client_id_number": Bad("POST", EVENTS, msg(events=[ev(id=1)])),
    "events-client_id_too_long": Bad("POST", EVENTS, msg(events=[ev(id="x" * 65)])),
    "events-client_id_repeated": Bad("POST", EVENTS, msg(events=[ev(), ev()])),
    "events-no_event_name": Bad("POST", EVENTS, msg(events=[{"id": "e1"}]), code="parameter_not_found"),
    "events-null_event_name": Bad("POST", EVENTS, msg(events=[ev(event_name=None)]), code="parameter_not_found"),
    "events-second_event_nameless": Bad("POST", EVENTS, msg(events=[ev(), {"id": "e2"}]),
                                        code="parameter_not_found"),
    "events-empty_event_name": Bad("POST", EVENTS, msg(events=[ev(event_name=" ")])),
    "events-numeric_event_name": Bad("POST", EVENTS, msg(events=[ev(event_name=42)])),
    "events-long_event_name": Bad("POST", EVENTS, msg(events=[ev(event_name="e" * 256)])),
    "events-control_char_event_name": Bad("POST", EVENTS, msg(events=[ev(event_name="a\u0000b")])),
    "events-lone_surrogate_event_name": Bad("POST", EVENTS, raw_msg(
        '{"app_id": "{app_id}", "session": "{session}", "events": [{"id": "e1", "event_name": "x\\ud800"}]}')),
    "events-lone_surrogate_metadata_key": Bad("POST", EVENTS, raw_msg(
        '{"app_id": "{app_id}", "session": "{session}", '
        '"events": [{"id": "e1", "event_name": "x", "metadata": {"a.\\udc00": 1}}]}')),
    "events-nan_created_at": Bad("POST", EVENTS, raw_msg(
        '{"app_id": "{app_id}", "session": "{session}", '
        '"events": [{"id": "e1", "event_name": "x", "created_at": NaN}]}')),
    "events-created_at_ms": Bad("POST", EVENTS, msg(events=[ev(created_at=1764380000000)])),
    "events-created_at_future": Bad("POST", EVENTS, msg(events=[ev(created_at=4102444800)])),
    "events-created_at_string": Bad("POST", EVENTS, msg(events=[ev(created_at="2025-01-01")])),
    "events-created_at_negative": Bad("POST", EVENTS, msg(events=[ev(created_at=-5)])),
    "events-metadata_list": Bad("POST", EVENTS, msg(events=[ev(metadata=[1, 2])])),
    "events-metadata_string": Bad("POST", EVENTS, msg(events=[ev(metadata="duration=19")])),
    # events: forged identities
    "events-no_session": Bad("POST", EVENTS, msg(session=None, events=[ev()]), status=401, code="invalid_identity"),
    "events-session_number": Bad("POST", EVENTS, msg(session=5, events=[ev()]), status=401,
                                 code="invalid_identity"),
    "events-forged_session": Bad("POST", EVENTS, msg(
        session=lambda w: identity.sign_session("forged-key", w.user_contact), events=[ev()]), status=401,
        code="invalid_identity"),
    "events-tampered_session": Bad("POST", EVENTS, msg(
        session=lambda w: w.user_contact + w.session[len(w.visitor_contact):], events=[ev()]), status=401,
        code="invalid_identity"),
    "events-device_as_session": Bad("POST", EVENTS, msg(session=lambda w: w.device, events=[ev()]), status=401,
                                    code="invalid_identity"),
    "events-other_workspace_session": Bad("POST", EVENTS, msg(session=lambda w: w.other_session, events=[ev()]),
                                          status=401, code="invalid_identity"),
    "events-session_of_no_contact": Bad("POST", EVENTS, msg(
        session=lambda w: identity.sign_session(w.signing_key, NO_CONTACT), events=[ev()]), status=401,
        code="invalid_identity"),
    # conversations
    "conversations-no_email": Bad("POST", CONV, msg(message="Hi")),
    "conversations-bad_email": Bad("POST", CONV, msg(email="not-an-email", message="Hi")),
    "conversations-email_number": Bad("POST", CONV, msg(email=42, message="Hi")),
    "conversations-no_message": Bad("POST", CONV, msg(email="a@example.com")),
    "conversations-blank_message": Bad("POST", CONV, msg(email="a@example.com", message="   ")),
    "conversations-message_too_long": Bad("POST", CONV, msg(email="a@example.com", message="x" * 5001)),
})

for _what, (_body, _status, _code) in GENERIC.items():
    CASES[f"rest_post-{_what}"] = Bad("POST", "/events", _body, status=_status, code=_code)
CASES.update({
    # POST /events: auth first, then the body
    "rest_post-no_token": Bad("POST", "/events", rest(), auth="none", status=401, code="unauthorized"),
    "rest_post-wrong_token": Bad("POST", "/events", rest(), auth="wrong", status=401, code="unauthorized"),
    "rest_post-malformed_json_no_token": Bad("POST", "/events", b"{", auth="none", status=401, code="unauthorized"),
    "rest_post-bogus_version": Bad("POST", "/events", rest(), headers=(("Intercom-Version", "9.9"),),
                                   code="intercom_version_invalid"),
    "rest_post-no_event_name": Bad("POST", "/events", rest(event_name=None), code="parameter_not_found"),
    "rest_post-no_identifier": Bad("POST", "/events", rest(user_id=None), code="parameter_not_found"),
    "rest_post-event_name_object": Bad("POST", "/events", rest(event_name={"name": "x"})),
    "rest_post-user_id_list": Bad("POST", "/events", rest(user_id=["314159"])),
    "rest_post-metadata_list": Bad("POST", "/events", rest(metadata=["a"])),
    "rest_post-created_at_ms": Bad("POST", "/events", rest(created_at=1764380000000)),
    "rest_post-created_at_string": Bad("POST", "/events", rest(created_at="1764380000")),
    "rest_post-nan_created_at": Bad("POST", "/events",
                                    b'{"user_id": "314159", "event_name": "x", "created_at": NaN}'),
    "rest_post-lone_surrogate_name": Bad("POST", "/events", b'{"user_id": "314159", "event_name": "x\\ud800"}'),
    "rest_post-unknown_user": Bad("POST", "/events", rest(user_id="nobody"), status=404, code="not_found"),
    "rest_post-unknown_email": Bad("POST", "/events", rest(user_id=None, email="no@example.com"), status=404,
                                   code="not_found"),
    "rest_post-unknown_contact_id": Bad("POST", "/events", rest(user_id=None, id=NO_CONTACT), status=404,
                                        code="not_found"),
    # GET /events
    "rest_get-no_token": Bad("GET", "/events?type=user&user_id=314159", auth="none", status=401,
                             code="unauthorized"),
    "rest_get-wrong_token": Bad("GET", "/events?type=user&user_id=314159", auth="wrong", status=401,
                                code="unauthorized"),
    "rest_get-no_type": Bad("GET", "/events?user_id=314159", code="parameter_invalid"),
    "rest_get-no_identifier": Bad("GET", "/events?type=user", code="parameter_not_found"),
    "rest_get-unknown_user": Bad("GET", "/events?type=user&user_id=nobody", status=404, code="not_found"),
    "rest_get-per_page_text": Bad("GET", "/events?type=user&user_id=314159&per_page=x", code="parameter_invalid"),
    "rest_get-before_huge": Bad("GET", "/events?type=user&user_id=314159&before=" + "9" * 30,
                                code="parameter_invalid"),
    "rest_get-bogus_version": Bad("GET", "/events?type=user&user_id=314159",
                                  headers=(("Intercom-Version", "bogus"),), code="intercom_version_invalid"),
    # the lifecycle endpoints of this issue
    "convert-malformed_json": Bad("POST", "/visitors/convert", b"{"),
    "convert-no_token": Bad("POST", "/visitors/convert", {"type": "lead"}, auth="none", status=401,
                            code="unauthorized"),
    "convert-bad_type": Bad("POST", "/visitors/convert",
                            lambda w: {"type": "admin", "visitor": {"id": w.visitor_contact}}),
    "convert-unknown_visitor": Bad("POST", "/visitors/convert", {"type": "lead", "visitor": {"user_id": "nope"}},
                                   status=404, code="not_found"),
    "convert-lone_surrogate_user_id": Bad("POST", "/visitors/convert", lambda w: (
        f'{{"type": "user", "visitor": {{"id": "{w.visitor_contact}"}}, "user": {{"user_id": "u\\ud800"}}}}'
        .encode())),
    "visitors-no_user_id": Bad("GET", "/visitors", code="parameter_not_found"),
    "visitors-unknown": Bad("GET", "/visitors?user_id=nope", status=404, code="not_found"),
    "merge-malformed_json": Bad("POST", "/contacts/merge", b"{"),
    "merge-no_from": Bad("POST", "/contacts/merge", lambda w: {"into": w.user_contact}, code="parameter_not_found"),
    "merge-unknown": Bad("POST", "/contacts/merge", lambda w: {"from": NO_CONTACT, "into": w.user_contact},
                         status=404, code="not_found"),
    "contact-unknown": Bad("GET", f"/contacts/{NO_CONTACT}", status=404, code="not_found"),
    "contact-no_token": Bad("GET", f"/contacts/{NO_CONTACT}", auth="none", status=401, code="unauthorized"),
    # no such endpoint, or not with that method (Intercom answers 404 for both)
    "unknown_path": Bad("GET", "/nope", status=404, code="not_found"),
    "unknown_messenger_path": Bad("POST", "/messenger/web/nope", msg(), status=404, code="not_found"),
    "unknown_path_post": Bad("POST", "/v0/events", rest(), status=404, code="not_found"),
    "delete_events": Bad("DELETE", "/events", status=404, code="not_found"),
    "patch_events": Bad("PATCH", "/events", rest(), status=404, code="not_found"),
    "post_health": Bad("POST", "/health", b"{}", status=404, code="not_found"),
})


# ------------------------------------------------------------------ running a row
async def build_world(h: Any) -> World:
    user = await h.store.create_contact(h.workspace, "user", external_id="314159", email="frodo@example.com")
    me = await h.visitor()
    other = await h.store.create_workspace("Other")
    r = await h.client.post(PING, content=json.dumps({"app_id": other.app_id}))
    assert r.status_code == 200, r.text
    return World(app_id=h.workspace.app_id, token=h.workspace.access_token, session=me["session"],
                 device=me["device"], visitor_id=me["visitor_id"], visitor_contact=me["contact"]["id"],
                 user_contact=user.id, other_session=r.json()["session"], signing_key=h.workspace.signing_key)


async def snapshot(h: Any) -> tuple[int, int, list[str], int]:
    """Everything a bad request could have written: events, contacts (and their last-seen), event names."""
    async with h.store.db.read() as conn:
        contacts = await conn.fetch_one("SELECT COUNT(*) AS n FROM contacts", ())
        events = await conn.fetch_one("SELECT COUNT(*) AS n FROM events", ())
        touched = await conn.fetch_one("SELECT COALESCE(SUM(updated_at), 0) AS n FROM contacts", ())
    names = [n.name for n in await h.store.event_names(h.workspace)]
    return int(events["n"]), int(contacts["n"]), names, int(touched["n"])


async def send(h: Any, w: World, method: str, path: str, body: Body, auth: str,
               headers: tuple[tuple[str, str], ...] = ()) -> httpx.Response:
    hdrs = dict(headers)
    if auth == "bearer":
        hdrs["Authorization"] = f"Bearer {w.token}"
    elif auth == "wrong":
        hdrs["Authorization"] = "Bearer tm_not-a-token"
    content: Any
    if callable(body):
        built = body(w)
        content = built if isinstance(built, bytes) else json.dumps(built).encode()
    elif isinstance(body, dict):
        content = json.dumps(body).encode()
    else:
        content = body
    for key in [k for k in hdrs if k.lower() == "content-length"]:
        # httpx sets its own Content-Length; a declared size is sent raw through a custom request.
        declared = hdrs.pop(key)
        request = h.raw.build_request(method, path, content=content, headers=hdrs)
        request.headers["Content-Length"] = declared
        return await h.raw.send(request)
    return await h.raw.request(method, path, content=content, headers=hdrs)


def assert_error_shape(r: httpx.Response, status: int | None = None, code: str | None = None) -> None:
    assert r.status_code < 500, f"{r.status_code}: {r.text[:300]}"
    assert 400 <= r.status_code < 500, f"{r.status_code}: {r.text[:300]}"
    if status is not None:
        assert r.status_code == status, r.text[:300]
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"type", "request_id", "errors"}, body
    assert body["type"] == "error.list"
    assert isinstance(body["request_id"], str) and body["request_id"]
    assert isinstance(body["errors"], list) and body["errors"]
    for item in body["errors"]:
        assert set(item) <= {"code", "message", "field"}, item
        assert isinstance(item["code"], str) and item["code"]
        assert isinstance(item["message"], str) and item["message"]
        assert item.get("field") is None or isinstance(item["field"], str)
    if code is not None:
        assert body["errors"][0]["code"] == code, body


@pytest.fixture
async def world_harness(harness: Any) -> AsyncIterator[Any]:
    """The harness, its world, and a client that turns an unhandled exception into the 500 a real server
    would send (so a crash fails the row's status assertion instead of escaping the transport)."""
    transport = httpx.ASGITransport(app=harness.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as raw:
        harness.raw = raw
        harness.world = await build_world(harness)
        yield harness


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_bad_request_gets_an_error_list_and_stores_nothing(world_harness: Any, case: Bad) -> None:
    h = world_harness
    before = await snapshot(h)
    r = await send(h, h.world, case.method, case.path, case.body, case.auth, case.headers)
    assert_error_shape(r, case.status, case.code)
    assert await snapshot(h) == before
    assert await h.store.count_events(h.workspace) == 0


async def test_oversized_body_without_content_length_is_refused(world_harness: Any) -> None:
    h = world_harness
    for path, auth in ((PING, "none"), (EVENTS, "none"), ("/events", "bearer")):
        before = await snapshot(h)
        r = await send(h, h.world, "POST", path, oversized_stream(), auth)
        assert_error_shape(r, 413, "request_too_large")
        assert await snapshot(h) == before


async def test_refusal_for_an_allowed_origin_list_is_an_error_list(make_harness: Any) -> None:
    async with make_harness(allowed_origins=["https://shop.example"]) as h:
        for path in (PING, EVENTS, CONV):
            r = await h.client.post(path, content=json.dumps({"app_id": h.workspace.app_id, "email": "a@b.co",
                                                              "message": "hi", "events": [ev()]}),
                                    headers={"origin": "https://evil.example"})
            assert_error_shape(r, 403, "forbidden")
        assert await h.store.count_events(h.workspace) == 0


# ------------------------------------------------------------------ every route that takes a body
def _body_routes() -> list[tuple[str, str]]:
    out = []
    for route in routes():
        if not isinstance(route, Route):  # only Routes answer methods (no Mounts)
            continue
        for method in sorted(route.methods or ()):
            if method in ("POST", "PUT", "PATCH"):
                out.append((method, route.path))
    return out


def _fill(path: str, w: World) -> str:
    return (path.replace("{app_id}", w.app_id).replace("{contact_id}", NO_CONTACT)
            .replace("{kind}", "track").replace("{external_id}", "nobody")
            .replace("{delivery_id}", "1").replace("{what}", "shown"))


SWEEP = {k: v for k, v in GENERIC.items() if k != "oversized"}


@pytest.mark.parametrize(("method", "path"), _body_routes(), ids=[f"{m} {p}" for m, p in _body_routes()])
@pytest.mark.parametrize("auth", ["bearer", "none"])
async def test_every_body_route_refuses_bad_json_with_an_error_list(world_harness: Any, method: str, path: str,
                                                                     auth: str) -> None:
    h = world_harness
    url = _fill(path, h.world)
    failures = []
    for what, (body, _, _) in SWEEP.items():
        before = await snapshot(h)
        r = await send(h, h.world, method, url, body, auth)
        try:
            assert_error_shape(r)
            assert await snapshot(h) == before
        except AssertionError as exc:
            failures.append(f"{what}: {exc}")
    assert not failures, "\n".join(failures)


def test_the_table_covers_every_messenger_and_events_endpoint() -> None:
    """A new browser or events endpoint needs rows in CASES (the sweep only checks generic JSON errors)."""
    sent = {(c.method, c.path.split("?")[0]) for c in CASES.values()}
    for method, path in [*_body_routes(), ("GET", "/events")]:
        if path.startswith("/messenger/web/") or path == "/events":
            template = re.compile(re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", re.escape(path)) + "$")
            assert any(m == method and template.match(p) for m, p in sent), f"no error-shape rows for {method} {path}"
