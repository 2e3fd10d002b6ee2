"""The browser endpoints (docs/protocol.md): ``/widget/{app_id}``, ``ping`` and ``events``.

Identity comes only from tokens the server signed for this workspace; anything else gets a fresh visitor
and nothing is attached to the identity a forged token names.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from trailmark import identity
from trailmark.store.models import Contact

DAY = 86400


def event(client_id: str, name: str = "upload-complete", **metadata: Any) -> dict[str, Any]:
    return {"id": client_id, "event_name": name, "metadata": metadata}


async def count_contacts(h: Any) -> int:
    async with h.store.db.read() as conn:
        row = await conn.fetch_one("SELECT COUNT(*) AS n FROM contacts WHERE workspace_id = ?", (h.workspace.id,))
    return int(row["n"])


async def events_of(h: Any, contact_id: str) -> list[Any]:
    contact = await h.store.get_contact(h.workspace, contact_id)
    assert contact is not None
    return list(await h.store.events_for(h.workspace, contact, limit=1000))


async def post(h: Any, path: str, body: Any, **headers: str) -> httpx.Response:
    return await h.client.post(f"/messenger/web/{path}", content=json.dumps(body),
                               headers={"content-type": "text/plain", **headers})


def assert_error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["type"] == "error.list"
    assert isinstance(body["request_id"], str) and body["request_id"]
    assert body["errors"][0]["code"] == code, body
    assert isinstance(body["errors"][0]["message"], str) and body["errors"][0]["message"]
    return dict(body)


def forged_session(contact_id: str) -> str:
    """A session token naming a real contact, signed with a key that is not the workspace's."""
    return identity.sign_session("not-the-workspace-key", contact_id)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(secret: str, claims: dict[str, Any]) -> str:
    head, body = b64(b'{"alg":"HS256","typ":"JWT"}'), b64(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


# ------------------------------------------------------------------ the shim
async def test_widget_serves_the_shim_as_javascript(harness):
    r = await harness.client.get(f"/widget/{harness.workspace.app_id}")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/javascript")
    assert "/messenger/web/" in r.text and "trackEvent" in r.text


async def test_widget_for_an_unknown_app_is_404(harness):
    r = await harness.client.get("/widget/nope1234")
    assert r.status_code == 404
    assert "trackEvent" not in r.text


# ------------------------------------------------------------------ ping: visitors and tokens
async def test_ping_without_tokens_creates_a_visitor_and_signs_its_tokens(harness):
    h = harness
    me = await h.visitor()
    assert me["type"] == "ping"
    assert me["contact"]["role"] == "visitor"
    assert me["warnings"] == []
    key = h.workspace.signing_key
    assert identity.read_device(key, me["device"]) == me["visitor_id"]
    assert identity.read_session(key, me["session"]) == me["contact"]["id"]
    assert me["device"].split(".")[0] == me["visitor_id"]
    contact = await h.store.find_contact(h.workspace, visitor_id=me["visitor_id"])
    assert contact is not None and contact.id == me["contact"]["id"] and contact.role == "visitor"
    assert await count_contacts(h) == 1


async def test_same_device_token_is_the_same_visitor(harness):
    h = harness
    first = await h.visitor()
    again = await h.visitor(device=first["device"], session=first["session"])
    device_only = await h.visitor(device=first["device"])
    assert again["visitor_id"] == device_only["visitor_id"] == first["visitor_id"]
    assert again["contact"] == device_only["contact"] == first["contact"]
    assert await count_contacts(h) == 1


async def test_tampered_device_token_gets_a_fresh_visitor(harness):
    h = harness
    victim = await h.visitor()
    forged = identity.sign_device("not-the-workspace-key", victim["visitor_id"])
    # The second-to-last character: the last one's low bits are base64 padding and may not change the bytes.
    device = victim["device"]
    tampered = device[:-2] + ("A" if device[-2] != "A" else "B") + device[-1]
    for token in (forged, tampered):
        me = await h.visitor(device=token)
        assert me["visitor_id"] != victim["visitor_id"]
        assert me["contact"]["id"] != victim["contact"]["id"]
    assert await count_contacts(h) == 3


async def test_forged_session_attaches_nothing_to_the_contact_it_names(harness):
    h = harness
    victim = await h.visitor()
    forged = forged_session(victim["contact"]["id"])

    me = await h.visitor(session=forged)
    assert me["contact"]["id"] != victim["contact"]["id"]

    # Sending events with the forged token is refused as a whole...
    r = await h.track(forged, event("e1"))
    assert_error(r, 401, "invalid_identity")
    # ...and identifying a user with it converts the fresh visitor, not the victim.
    user = await h.visitor(session=forged, user={"user_id": "mallory"})
    assert user["contact"]["id"] != victim["contact"]["id"]
    assert user["contact"]["role"] == "user"
    still = await h.store.get_contact(h.workspace, victim["contact"]["id"])
    assert still.role == "visitor" and still.external_id is None
    assert await events_of(h, victim["contact"]["id"]) == []
    assert await h.event_count() == 0


async def test_device_token_used_as_session_is_refused(harness):
    h = harness
    me = await h.visitor()
    r = await h.track(me["device"], event("e1"))
    assert_error(r, 401, "invalid_identity")
    assert await h.event_count() == 0


async def test_tokens_from_another_workspace_are_refused(harness):
    h = harness
    other_ws = await h.store.create_workspace("Other")
    r = await post(h, "ping", {"app_id": other_ws.app_id})
    assert r.status_code == 200, r.text
    foreign = r.json()

    # Events with the other workspace's session: 401, nothing stored in either workspace.
    r = await h.track(foreign["session"], event("e1"))
    body = assert_error(r, 401, "invalid_identity")
    assert body["errors"][0]["field"] == "session"
    assert await h.event_count() == 0
    assert await h.store.count_events(other_ws) == 0

    # Pinging with them gives a fresh visitor of this workspace.
    me = await h.visitor(device=foreign["device"], session=foreign["session"])
    assert me["visitor_id"] != foreign["visitor_id"]
    assert me["contact"]["id"] != foreign["contact"]["id"]
    assert await h.store.find_contact(h.workspace, visitor_id=foreign["visitor_id"]) is None


async def test_shutdown_then_ping_without_tokens_starts_a_new_visitor(harness):
    h = harness
    me = await h.visitor(user={"user_id": "42"})
    r = await h.track(me["session"], event("e1", "logged-in"))
    assert r.json()["results"][0]["status"] == "accepted"

    # Intercom('shutdown') clears both cookies; the next boot pings with no tokens.
    after = await h.visitor()
    assert after["visitor_id"] != me["visitor_id"]
    assert after["contact"]["id"] != me["contact"]["id"]
    assert after["contact"]["role"] == "visitor"
    r = await h.track(after["session"], event("e2", "viewed-pricing"))
    assert r.json()["results"][0]["status"] == "accepted"
    assert [e.event_name for e in await events_of(h, me["contact"]["id"])] == ["logged-in"]
    assert [e.event_name for e in await events_of(h, after["contact"]["id"])] == ["viewed-pricing"]


# ------------------------------------------------------------------ ping: users and identity verification
async def test_boot_with_user_id_lands_events_on_that_user(harness):
    h = harness
    me = await h.visitor(user={"user_id": "42", "email": "ada@example.com", "name": "Ada", "plan": "pro"})
    assert me["contact"]["role"] == "user"
    r = await h.track(me["session"], event("e1", "upload-complete", duration=19, type="JPEG"))
    assert r.status_code == 200 and r.json()["results"][0]["status"] == "accepted"

    listed = await h.client.get("/events", params={"type": "user", "user_id": "42"}, headers=h.auth)
    assert listed.status_code == 200, listed.text
    [ev] = listed.json()["events"]
    assert ev["event_name"] == "upload-complete"
    assert ev["user_id"] == "42"
    assert ev["email"] == "ada@example.com"
    assert ev["intercom_user_id"] == me["contact"]["id"]
    assert ev["metadata"] == {"duration": 19, "type": "JPEG"}
    contact = await h.store.find_contact(h.workspace, user_id="42")
    assert contact.name == "Ada" and contact.custom_attributes == {"plan": "pro"}


async def test_placeholder_user_id_is_refused_and_attaches_nothing(harness):
    h = harness
    r = await h.ping(user={"user_id": "undefined"})
    body = assert_error(r, 401, "invalid_identity")
    assert body["errors"][0]["field"] == "user_id" and "placeholder" in body["errors"][0]["message"]
    assert await h.store.find_contact(h.workspace, user_id="undefined") is None
    assert await count_contacts(h) == 0


async def test_enforced_verification_refuses_a_missing_user_hash_and_creates_nobody(make_harness):
    async with make_harness(enforce_identity_verification=True) as h:
        r = await h.ping(user={"user_id": "42"})
        body = assert_error(r, 401, "identity_verification_failed")
        assert body["errors"][0]["field"] == "user_hash"
        assert await h.store.find_contact(h.workspace, user_id="42") is None
        assert await count_contacts(h) == 0


async def test_forged_user_hash_is_refused_and_creates_nobody(make_harness):
    async with make_harness(enforce_identity_verification=True) as h:
        for forged in ("0" * 64, identity.user_hash("guessed-secret", "42"),
                       identity.user_hash(h.workspace.identity_secret, "43")):
            r = await h.ping(user={"user_id": "42", "user_hash": forged})
            assert_error(r, 401, "identity_verification_failed")
        assert await h.store.find_contact(h.workspace, user_id="42") is None
        assert await count_contacts(h) == 0


async def test_wrong_user_hash_is_refused_even_when_verification_is_not_enforced(harness):
    r = await harness.ping(user={"user_id": "42", "user_hash": "0" * 64})
    assert_error(r, 401, "identity_verification_failed")
    assert await harness.store.find_contact(harness.workspace, user_id="42") is None


async def test_correct_user_hash_identifies_the_user(make_harness):
    async with make_harness(enforce_identity_verification=True) as h:
        anon = await h.visitor()  # anonymous visitors need no proof
        assert anon["contact"]["role"] == "visitor"
        good = identity.user_hash(h.workspace.identity_secret, "42")
        me = await h.visitor(device=anon["device"], session=anon["session"],
                             user={"user_id": "42", "user_hash": good})
        assert me["contact"] == {"id": anon["contact"]["id"], "role": "user"}
        contact = await h.store.find_contact(h.workspace, user_id="42")
        assert contact.id == anon["contact"]["id"]


async def test_user_hash_of_the_email_identifies_an_email_only_user(make_harness):
    async with make_harness(enforce_identity_verification=True) as h:
        good = identity.user_hash(h.workspace.identity_secret, "ada@example.com")
        me = await h.visitor(user={"email": "ada@example.com", "user_hash": good})
        assert me["contact"]["role"] == "user"
        assert (await h.store.find_contact(h.workspace, email="ada@example.com")).id == me["contact"]["id"]


async def test_user_hash_from_the_previous_secret_verifies_during_rotation(make_harness):
    async with make_harness(enforce_identity_verification=True) as h:
        old = identity.user_hash(h.workspace.identity_secret, "42")
        new_secret = await h.store.rotate_identity_secret(h.workspace)
        assert (await h.ping(user={"user_id": "42", "user_hash": old})).status_code == 200
        new_hash = identity.user_hash(new_secret, "43")
        assert (await h.ping(user={"user_id": "43", "user_hash": new_hash})).status_code == 200


async def test_jwt_identifies_the_user_its_claims_name(make_harness):
    async with make_harness(enforce_identity_verification=True) as h:
        token = make_jwt(h.workspace.identity_secret, {"user_id": "42", "email": "ada@example.com"})
        # The signed claims win over an unsigned user_id sent beside them.
        me = await h.visitor(user={"user_id": "999", "intercom_user_jwt": token})
        assert me["contact"]["role"] == "user"
        contact = await h.store.find_contact(h.workspace, user_id="42")
        assert contact.id == me["contact"]["id"] and contact.email == "ada@example.com"
        assert await h.store.find_contact(h.workspace, user_id="999") is None


async def test_bad_jwt_is_refused_and_creates_nobody(make_harness):
    async with make_harness(enforce_identity_verification=True) as h:
        for token in (make_jwt("guessed-secret", {"user_id": "42"}),
                      make_jwt(h.workspace.identity_secret, {"user_id": "42", "exp": 1}),
                      make_jwt(h.workspace.identity_secret, {"email": "a@b.c"}),
                      "not-a-jwt"):
            r = await h.ping(user={"intercom_user_jwt": token})
            body = assert_error(r, 401, "identity_verification_failed")
            assert body["errors"][0]["field"] == "intercom_user_jwt"
        assert await count_contacts(h) == 0


# ------------------------------------------------------------------ events
async def test_events_are_accepted_once_and_a_retry_is_a_duplicate(harness):
    h = harness
    me = await h.visitor()
    batch = [event("a1", "upload-complete", duration=19), event("a2", "viewed-pricing")]
    r = await h.track(me["session"], *batch)
    assert r.status_code == 200
    assert r.json() == {"type": "event.batch", "results": [{"id": "a1", "status": "accepted"},
                                                           {"id": "a2", "status": "accepted"}]}
    # The shim resends the same batch (say the answer was lost), plus one new event.
    r = await h.track(me["session"], *batch, event("a3", "viewed-pricing"))
    assert [x["status"] for x in r.json()["results"]] == ["duplicate", "duplicate", "accepted"]
    assert await h.event_count() == 3
    names = {n.name: n.event_count for n in await h.store.event_names(h.workspace)}
    assert names == {"upload-complete": 1, "viewed-pricing": 2}


async def test_event_name_is_normalised_and_metadata_typed_at_ingest(harness):
    h = harness
    me = await h.visitor()
    r = await h.track(me["session"], {"id": "n1", "event_name": "  Completed.Order ", "metadata": {
        "Order_Number": {"url": "https://shop.example/o/1", "value": "TX186373"},
        "price": {"amount": 34999, "currency": "EUR"}, "paid_at": 1392036272, "invoice": "in_1MtHbELkdIwHu7ix"}})
    # The rename is reported like a dropped entry: one reason text for every rename, the stored name apart.
    assert r.json()["results"] == [{"id": "n1", "status": "accepted", "dropped_metadata": [
        {"key": "event_name", "reason": "'.' and '$' are not allowed in event names: stored renamed (see stored_as)",
         "stored_as": "completed-order"}]}]
    [stored] = await events_of(h, me["contact"]["id"])
    assert stored.event_name == "completed-order"
    assert stored.metadata == {"order_number": {"url": "https://shop.example/o/1", "value": "TX186373"},
                               "price": {"amount": 34999, "currency": "eur"}, "paid_at": 1392036272,
                               "invoice": "in_1MtHbELkdIwHu7ix"}
    assert stored.metadata_types == {"order_number": "rich_link", "price": "money", "paid_at": "date",
                                     "invoice": "stripe"}


async def test_dropped_metadata_is_reported_and_counted_per_event_name(harness):
    h = harness
    me = await h.visitor()
    r = await h.track(me["session"], event("d1", "upload-complete", duration=19, **{"a.b": 1, "flag": True}),
                      event("d2", "upload-complete", duration=3),
                      event("d3", "viewed-pricing", **{"a.b": 2}))
    assert r.status_code == 200
    results = r.json()["results"]
    assert results[0]["status"] == "accepted"
    assert [d["key"] for d in results[0]["dropped_metadata"]] == ["a.b", "flag"]
    assert all(d["reason"] for d in results[0]["dropped_metadata"])
    assert "dropped_metadata" not in results[1]
    assert [d["key"] for d in results[2]["dropped_metadata"]] == ["a.b"]

    [stored_first] = [e for e in await events_of(h, me["contact"]["id"]) if e.metadata.get("duration") == 19]
    assert stored_first.metadata == {"duration": 19}  # the event was kept without the bad entries

    # A retry of the same events is a duplicate and does not count its drops again.
    await h.track(me["session"], event("d1", "upload-complete", duration=19, **{"a.b": 1, "flag": True}))
    names = {n.name: n for n in await h.store.event_names(h.workspace)}
    assert names["upload-complete"].event_count == 2
    assert names["upload-complete"].dropped_metadata_count == 1  # events that had drops
    assert names["viewed-pricing"].dropped_metadata_count == 1
    drops = await h.store.metadata_drops(h.workspace, names["upload-complete"].id)
    assert sorted((d["key"], d["count"]) for d in drops) == [("a.b", 1), ("flag", 1)]
    drops = await h.store.metadata_drops(h.workspace, names["viewed-pricing"].id)
    assert [(d["key"], d["count"]) for d in drops] == [("a.b", 1)]


async def test_strict_workspace_refuses_events_with_bad_metadata_and_stores_nothing(make_harness):
    async with make_harness(strict_metadata=True) as h:
        me = await h.visitor()
        r = await h.track(me["session"], event("ok", "fine-event", duration=1),
                          event("bad", "upload-complete", duration=19, **{"a.b": 1, "flag": True}))
        body = assert_error(r, 422, "data_invalid")
        assert [e["field"] for e in body["errors"]] == ["events[1].metadata.a.b", "events[1].metadata.flag"]
        assert await h.event_count() == 0
        assert await h.store.event_names(h.workspace) == []  # no event name created either
        # Clean events are stored as usual.
        r = await h.track(me["session"], event("ok", "fine-event", duration=1))
        assert r.json()["results"] == [{"id": "ok", "status": "accepted"}]
        assert await h.event_count() == 1


async def test_archived_event_name_is_dropped_and_counted(harness):
    h = harness
    me = await h.visitor()
    await h.track(me["session"], event("x1", "old-thing"))
    await h.store.set_event_archived(h.workspace, "old-thing", True)

    r = await h.track(me["session"], event("x2", "Old-Thing"), event("x3", "new-thing"))
    assert r.status_code == 200
    assert r.json()["results"] == [
        {"id": "x2", "status": "dropped", "reason": "event 'old-thing' is archived"},
        {"id": "x3", "status": "accepted"}]
    assert await h.event_count() == 2
    old = await h.store.event_name(h.workspace, "old-thing")
    assert old.archived and old.event_count == 1 and old.dropped_count == 1
    # Archived names are not recreated by tracking them again.
    assert [n.name for n in await h.store.event_names(h.workspace)] == ["new-thing", "old-thing"]


async def fill_event_names(h: Any, session: str, count: int) -> None:
    names = [f"name-{i:03d}" for i in range(count)]
    for start in range(0, count, 100):
        r = await h.track(session, *(event(f"fill-{n}", n) for n in names[start:start + 100]))
        assert r.status_code == 200, r.text


@pytest.fixture
async def roomy(make_harness: Any) -> AsyncIterator[Any]:
    """A workspace whose browsers may create many new names a day (the default budget is 10 per visitor)."""
    async with make_harness(browser_new_names_per_contact=1000, browser_new_names_per_address=1000) as h:
        yield h


async def test_at_the_120_name_limit_only_the_event_with_a_new_name_is_refused(roomy):
    """Trust finding: [known, brand-new, known] at the limit was refused as a whole (422, nothing stored) and
    the shim dropped the batch. Now each event has its answer."""
    h = roomy
    me = await h.visitor()
    await fill_event_names(h, me["session"], 120)
    assert await h.event_count() == 120

    r = await h.track(me["session"], event("k1", "name-000"), event("k2", "one-too-many"), event("k3", "name-001"))
    assert r.status_code == 200, r.text
    assert r.json()["results"] == [
        {"id": "k1", "status": "accepted"},
        {"id": "k2", "status": "refused", "reason": "Cannot have more than 120 active event names"},
        {"id": "k3", "status": "accepted"}]
    assert await h.event_count() == 122
    assert await h.store.event_name(h.workspace, "one-too-many") is None

    # Archiving one name frees a slot.
    await h.store.set_event_archived(h.workspace, "name-001", True)
    r = await h.track(me["session"], event("k4", "one-too-many"))
    assert r.json()["results"] == [{"id": "k4", "status": "accepted"}]
    r = await h.track(me["session"], event("k5", "and-another"))
    assert r.json()["results"][0]["status"] == "refused"
    assert await h.event_count() == 123


async def test_new_names_in_one_request_count_together_against_the_limit(roomy):
    h = roomy
    me = await h.visitor()
    await fill_event_names(h, me["session"], 119)
    r = await h.track(me["session"], event("n1", "new-a"), event("n2", "new-b"))
    assert [x["status"] for x in r.json()["results"]] == ["accepted", "refused"]
    assert await h.event_count() == 120
    assert await h.store.event_name(h.workspace, "new-b") is None


async def test_events_after_ping_without_session_are_refused(harness):
    h = harness
    r = await h.client.post("/messenger/web/events", content=json.dumps(
        {"app_id": h.workspace.app_id, "events": [event("e1")]}))
    assert_error(r, 401, "invalid_identity")
    assert await h.event_count() == 0


async def test_events_for_a_session_whose_contact_is_gone_are_refused(harness):
    h = harness
    ghost = identity.sign_session(h.workspace.signing_key, "000000000000000000000000")
    r = await h.track(ghost, event("e1"))
    assert_error(r, 401, "invalid_identity")
    assert await h.event_count() == 0
    assert await h.store.event_names(h.workspace) == []


# ------------------------------------------------------------------ allowed origins
async def test_listed_origin_gets_cors_and_other_origins_get_403(make_harness):
    async with make_harness(allowed_origins=["https://shop.example"]) as h:
        app = h.workspace.app_id
        r = await post(h, "ping", {"app_id": app}, origin="https://shop.example")
        assert r.status_code == 200, r.text
        assert r.headers["access-control-allow-origin"] == "https://shop.example"
        me = r.json()

        r = await post(h, "events", {"app_id": app, "session": me["session"], "events": [event("o1")]},
                       origin="https://shop.example")
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://shop.example"

        contacts = await count_contacts(h)
        for path, body in (("ping", {"app_id": app}),
                           ("events", {"app_id": app, "session": me["session"], "events": [event("o2")]})):
            r = await post(h, path, body, origin="https://evil.example")
            err = assert_error(r, 403, "forbidden")
            assert "https://evil.example" in err["errors"][0]["message"]
            assert r.headers["access-control-allow-origin"] == "https://evil.example"  # the shim can read why
        assert await count_contacts(h) == contacts
        assert await h.event_count() == 1


async def test_origin_check_is_exact(make_harness):
    async with make_harness(allowed_origins=["https://shop.example"]) as h:
        for origin in ("http://shop.example", "https://shop.example.evil.example", "https://sub.shop.example",
                       "https://shop.example:8443", "null"):
            r = await post(h, "ping", {"app_id": h.workspace.app_id}, origin=origin)
            assert_error(r, 403, "forbidden")
        assert await count_contacts(h) == 0


async def test_without_allowed_origins_any_site_gets_a_wildcard(harness):
    r = await post(harness, "ping", {"app_id": harness.workspace.app_id}, origin="https://anywhere.example")
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.headers["access-control-expose-headers"] == "Retry-After"


async def test_requests_without_origin_pass_an_origin_list(make_harness):
    async with make_harness(allowed_origins=["https://shop.example"]) as h:
        me = await h.visitor()
        assert "access-control-allow-origin" not in (await h.ping()).headers
        assert me["contact"]["role"] == "visitor"


async def test_preflight_answers_cors(harness):
    r = await harness.client.options("/messenger/web/events", headers={
        "origin": "https://shop.example", "access-control-request-method": "POST"})
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == "https://shop.example"
    assert "POST" in r.headers["access-control-allow-methods"]


async def test_ping_contact_matches_the_store(harness):
    """The ``contact`` in the answer is the one the store holds for the session it signs."""
    h = harness
    me = await h.visitor(user={"email": "lead@example.com"})
    contact: Contact = await h.store.get_contact(h.workspace, me["contact"]["id"])
    assert contact.role == me["contact"]["role"] == "lead"
    assert contact.email == "lead@example.com"


async def test_numeric_user_id_is_taken_as_a_string_however_large(harness):
    h = harness
    me = await h.visitor(user={"user_id": 314159})
    assert (await h.store.find_contact(h.workspace, user_id="314159")).id == me["contact"]["id"]
    huge = 10**200  # float() of it overflows; the id must still be read as its digits
    r = await h.client.post("/messenger/web/ping", content=json.dumps({"app_id": h.workspace.app_id,
                                                                       "user": {"user_id": huge}}))
    assert r.status_code == 200, r.text
    assert r.json()["contact"]["role"] == "user"
    assert await h.store.find_contact(h.workspace, user_id=str(huge)) is not None


async def test_overlong_user_id_is_refused_not_shortened(harness):
    h = harness
    r = await h.ping(user={"user_id": "x" * 256})
    assert r.status_code == 400
    assert r.json()["errors"][0]["field"] == "user_id"
    assert await h.store.find_contact(h.workspace, user_id="x" * 255) is None


async def test_escaped_emoji_survive_and_lone_surrogates_are_refused(harness):
    h = harness
    me = await h.visitor()
    # json.dumps escapes non-ASCII as surrogate pairs by default, as many non-browser clients do.
    r = await h.track(me["session"], event("u1", "\U0001F600-clicked", mood="\U0001F389 party"))
    assert r.status_code == 200, r.text
    [stored] = await events_of(h, me["contact"]["id"])
    assert stored.event_name == "\U0001F600-clicked"
    assert stored.metadata == {"mood": "\U0001F389 party"}

    # A lone surrogate cannot be produced by json.dumps: written by hand.
    body = (f'{{"app_id": "{h.workspace.app_id}", "session": "{me["session"]}", '
            '"events": [{"id": "u2", "event_name": "x\\ud83d"}]}')
    r = await h.client.post("/messenger/web/events", content=body)
    assert_error(r, 400, "parameter_invalid")
    assert await h.event_count() == 1


async def test_nul_in_a_metadata_key_is_dropped_and_counted(harness):
    h = harness
    me = await h.visitor()
    r = await h.track(me["session"], event("z1", "upload-complete", **{"ty\u0000pe": "JPEG", "duration": 19}))
    assert r.status_code == 200, r.text
    [result] = r.json()["results"]
    assert result["status"] == "accepted"
    assert result["dropped_metadata"][0]["key"] == "ty\\u0000pe"
    assert "NUL" in result["dropped_metadata"][0]["reason"]
    [stored] = await events_of(h, me["contact"]["id"])
    assert stored.metadata == {"duration": 19}
    name = await h.store.event_name(h.workspace, "upload-complete")
    assert [d["key"] for d in await h.store.metadata_drops(h.workspace, name.id)] == ["ty\\u0000pe"]
