"""Inputs that once answered 500 with a traceback. Each must now be a 4xx in Intercom's error shape, with
nothing of the request stored, on both stores (the HTTP edge: server/http_edge.py)."""

from __future__ import annotations

import base64
import gzip
import json
import time
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from .test_admin import sign_in
from .test_stripe import SECRET, invoice, signature, stripe_event

DEEP = 100_000  # far past Python's recursion limit


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


async def counts(h: Any) -> tuple[int, int, int]:
    """(events, contacts, unmatched Stripe webhooks) of the workspace."""
    async with h.store.db.read() as conn:
        contacts = await conn.fetch_one("SELECT COUNT(*) AS n FROM contacts WHERE workspace_id = ?",
                                        (h.workspace.id,))
        unmatched = await conn.fetch_one("SELECT COUNT(*) AS n FROM stripe_unmatched WHERE workspace_id = ?",
                                         (h.workspace.id,))
    return await h.event_count(), int(contacts["n"]), int(unmatched["n"])


def assert_refused(r: httpx.Response, status: int = 400, field: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text[:300])
    body = r.json()
    assert body["type"] == "error.list" and body["request_id"], body
    assert body["errors"] and all({"code", "message"} <= set(e) for e in body["errors"]), body
    if field is not None:
        assert body["errors"][0].get("field") == field, body
    return dict(body)


def segment_auth(h: Any) -> dict[str, str]:
    token = base64.b64encode(f"{h.workspace.access_token}:".encode()).decode()
    return {"Authorization": f"Basic {token}", "content-type": "application/json"}


async def segment(h: Any, path: str, body: bytes | dict[str, Any]) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await h.client.post(path, content=content, headers=segment_auth(h))


# ------------------------------------------------------------------------------------------ nesting
async def test_deeply_nested_json_is_a_400_on_every_json_endpoint(harness):
    h = harness
    me = await h.visitor()
    await h.store.create_contact(h.workspace, "user", external_id="u-1")
    before = await counts(h)
    deep = nested(DEEP)
    app_id = h.workspace.app_id
    cases = [
        ("/messenger/web/ping", f'{{"app_id": "{app_id}", "user": {deep}}}', {}),
        ("/messenger/web/events", f'{{"app_id": "{app_id}", "session": "{me["session"]}", "events": {deep}}}', {}),
        ("/messenger/web/conversations", f'{{"app_id": "{app_id}", "message": {deep}}}', {}),
        ("/messenger/web/thread", f'{{"app_id": "{app_id}", "session": {deep}}}', {}),
        ("/events", f'{{"event_name": "x", "user_id": "u-1", "metadata": {deep}}}', h.auth),
        ("/contacts/search", f'{{"query": {deep}}}', h.auth),
        ("/contacts", f'{{"email": "a@b.co", "custom_attributes": {deep}}}', h.auth),
    ]
    for path, body, headers in cases:
        assert_refused(await h.client.post(path, content=body, headers=headers))
    # Segment's own limits are smaller (32 KB a call): still 30 times Python's recursion limit.
    seg = nested(15_000)
    assert_refused(await segment(h, "/v1/track", f'{{"userId": "u", "event": "x", "properties": {seg}}}'.encode()))
    assert_refused(await segment(h, "/v1/batch", f'{{"batch": {nested(DEEP)}}}'.encode()))
    assert_refused(await segment(h, "/v1/batch", f'{{"batch": [{{"type": "track", "properties": {seg}}}]}}'.encode()))
    r = await h.client.post("/v1/batch", content=gzip.compress(f'{{"batch": {nested(DEEP)}}}'.encode()),
                            headers={**segment_auth(h), "content-encoding": "gzip"})
    assert_refused(r)
    assert await counts(h) == before


async def test_deeply_nested_json_in_the_filter_query_parameter_is_a_400(harness):
    h = harness
    r = await h.client.get("/events?type=user&filter=" + quote("[" * 15_000), headers=h.auth)  # httpx: URLs < 64 KB
    assert_refused(r, field="filter")


async def test_json_nested_within_the_limit_still_works(harness):
    h = harness
    await h.store.create_contact(h.workspace, "user", external_id="u-1")
    body = {"event_name": "x", "user_id": "u-1", "metadata": {"a": json.loads(nested(20))}}
    r = await h.client.post("/events", json=body, headers=h.auth)
    assert r.status_code == 202, r.text


# ------------------------------------------------------------------------------------------ numbers
async def test_stripe_signature_timestamp_of_4301_digits_is_a_400(harness):
    h = harness
    await h.store.add_stripe_secret(h.workspace, SECRET)
    payload = json.dumps(stripe_event("invoice.paid", invoice()))
    r = await h.client.post(f"/integrations/stripe/webhook/{h.workspace.app_id}", content=payload,
                            headers={"Stripe-Signature": "t=" + "9" * 4301 + ",v1=00"})
    assert_refused(r, field="Stripe-Signature")
    assert await counts(h) == (0, 0, 0)


@pytest.mark.parametrize("where", ["timestamp", "revenue", "price"])
async def test_segment_numbers_out_of_range_are_a_400(harness, where):
    h = harness
    if where == "timestamp":
        raw = b'{"userId": "u", "event": "x", "timestamp": 1e400}'
    elif where == "revenue":
        raw = b'{"userId": "u", "event": "x", "properties": {"revenue": 1e400}}'
    else:  # finite, but revenue * 100 overflows to infinity
        raw = b'{"userId": "u", "event": "x", "messageId": "m-1", "properties": {"revenue": 1e308}}'
    for path, body in (("/v1/track", raw), ("/v1/batch", b'{"batch": [' + raw[:-1] + b', "type": "track"}]}')):
        r = await segment(h, path, body)
        if where == "price":  # the event is kept, without a price
            assert r.status_code == 200 and "price" not in json.dumps(r.json()), r.text
        else:
            assert_refused(r)
    assert (await counts(h))[0] == (1 if where == "price" else 0)  # one messageId: the batch is a duplicate


@pytest.mark.parametrize("value", ["\u00b2", "\u0663", "1" * 5000, "-1", " 5", "5 "])
async def test_per_page_accepts_only_ascii_digits(harness, value):
    h = harness
    r = await h.client.get("/contacts", params={"per_page": value}, headers=h.auth)
    assert_refused(r, field="per_page")
    r = await h.client.post("/contacts/search", json={"query": {"field": "role", "operator": "=", "value": "user"},
                                                      "pagination": {"per_page": value}}, headers=h.auth)
    assert_refused(r, field="pagination.per_page")


@pytest.mark.parametrize("name", ["per_page", "before", "since", "before_id"])
@pytest.mark.parametrize("value", ["\u00b2", "9" * 5000, "1e3"])
async def test_event_list_integers_accept_only_ascii_digits(harness, name, value):
    h = harness
    await h.store.create_contact(h.workspace, "user", external_id="u-1")
    r = await h.client.get("/events", params={"type": "user", "user_id": "u-1", name: value}, headers=h.auth)
    assert_refused(r, field=name)


@pytest.mark.parametrize("value", ["\u00b2", "\u0663", "9" * 5000, "99999999999999999999"])
async def test_admin_contact_filters_and_cursors_never_fail(harness, value):
    h = harness
    assert (await sign_in(h)).status_code == 303
    for query in (f"e0=signed-up&op0=count_gt&n0={quote(value)}", f"after={quote(value)}:abc",
                  f"role=user&after={quote(value)}:{quote(value)}"):
        r = await h.client.get("/admin/contacts?" + query)
        assert r.status_code == 200, (query, r.text[:300])
    contact = await h.store.create_contact(h.workspace, "user", external_id="u-1")
    r = await h.client.get(f"/admin/contacts/{contact.id}?before={quote(value)}:{quote(value)}")
    assert r.status_code < 500, r.text[:300]
    r = await h.client.get(f"/admin/events?before={quote(value)}:{quote(value)}")
    assert r.status_code < 500, r.text[:300]


@pytest.mark.parametrize("value", ["\u00b2", "9" * 5000])
async def test_stripe_unmatched_limit_accepts_only_ascii_digits(harness, value):
    h = harness
    assert_refused(await h.client.get("/integrations/stripe/unmatched", params={"limit": value}, headers=h.auth),
                   field="limit")


# ------------------------------------------------------------------------------------------ text
@pytest.mark.parametrize("raw", [b'"\\ud800"', b'"\xed\xa0\x80"', b'"\\udfff x"', b'"\xff"'])
@pytest.mark.parametrize("path", ["/v1/track", "/v1/identify", "/v1/batch"])
async def test_lone_surrogates_and_invalid_utf8_on_segment_are_a_400(harness, raw, path):
    h = harness
    message = b'{"userId": "u-1", "event": "x", "properties": {"p": ' + raw + b'}, "traits": {"name": ' + raw + b"}"
    body = b'{"batch": [' + message + b', "type": "track"}]}' if path == "/v1/batch" else message + b"}"
    assert_refused(await segment(h, path, body))
    assert await counts(h) == (0, 0, 0)


async def test_a_signed_stripe_payload_holding_nan_is_refused_and_the_unmatched_list_still_works(harness):
    h = harness
    await h.store.add_stripe_secret(h.workspace, SECRET)
    payload = json.dumps(stripe_event("invoice.paid", invoice(customer="cus_nobody", customer_email="no@x.co",
                                                              amount_paid=float("nan"))))
    assert "NaN" in payload
    r = await h.client.post(f"/integrations/stripe/webhook/{h.workspace.app_id}", content=payload,
                            headers={"Stripe-Signature": signature(payload, SECRET)})
    assert_refused(r)
    assert await counts(h) == (0, 0, 0)
    r = await h.client.get("/integrations/stripe/unmatched", headers=h.auth)
    assert r.status_code == 200 and r.json()["data"] == []


async def test_an_unmatched_stripe_payload_recorded_with_nan_before_the_fix_is_listed_as_null(harness):
    h = harness
    event = stripe_event("invoice.paid", invoice(customer="cus_old", amount_paid=float("nan")), event_id="evt_old")
    await h.store.record_unmatched_stripe_event(h.workspace, event_id="evt_old", event_type="invoice.paid",
                                                customer_id="cus_old", email=None, reason="old",
                                                payload=json.dumps(event))
    r = await h.client.get("/integrations/stripe/unmatched", headers=h.auth)
    assert r.status_code == 200, r.text
    assert [(d["stripe_event_id"], d["event"]) for d in r.json()["data"]] == [("evt_old", None)]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
async def test_a_utf16_stripe_payload_is_a_400(harness, encoding):
    h = harness
    await h.store.add_stripe_secret(h.workspace, SECRET)
    text = json.dumps(stripe_event("invoice.paid", invoice(customer="cus_nobody")))
    payload = text.encode(encoding)
    now = int(time.time())
    import hashlib
    import hmac
    mac = hmac.new(SECRET.encode(), f"{now}.".encode() + payload, hashlib.sha256).hexdigest()
    r = await h.client.post(f"/integrations/stripe/webhook/{h.workspace.app_id}", content=payload,
                            headers={"Stripe-Signature": f"t={now},v1={mac}"})
    assert_refused(r)
    assert await counts(h) == (0, 0, 0)


# NUL: PostgreSQL's text cannot hold it, SQLite's can. The one rule for both stores: text that goes into a
# text column (ids, names, emails, messages) with a NUL is refused with a 400 naming the field, before
# anything is written. (JSON-held values, metadata and custom attributes, keep it as the escape \u0000.)
async def test_nul_in_a_client_event_id_is_a_400_naming_it(harness):
    h = harness
    me = await h.visitor()
    before = await counts(h)
    r = await h.track(me["session"], {"id": "a\u0000b", "event_name": "x"})
    assert_refused(r, field="events[0].id")
    assert await counts(h) == before


@pytest.mark.parametrize("field", ["name", "user_id", "email", "phone"])
async def test_nul_in_a_ping_identity_field_is_a_400_naming_it(harness, field):
    h = harness
    value = "a\u0000b@example.com" if field == "email" else "a\u0000b"
    user = {"user_id": "u-nul", field: value}
    r = await h.ping(user=user)
    assert_refused(r, field=f"user.{field}")
    assert await counts(h) == (0, 0, 0)


@pytest.mark.parametrize("field", ["message", "email"])
async def test_nul_in_a_contact_form_is_a_400_naming_it(harness, field):
    h = harness
    me = await h.visitor()
    before = await counts(h)
    body = {"app_id": h.workspace.app_id, "device": me["device"], "session": me["session"],
            "email": "lead@example.com", "message": "hello", field: "a\u0000b@example.com"}
    r = await h.client.post("/messenger/web/conversations", content=json.dumps(body))
    assert_refused(r, field=field)
    assert await counts(h) == before


async def test_nul_in_the_app_id_is_a_400_naming_it(harness):
    h = harness
    r = await h.client.post("/messenger/web/ping", content=json.dumps({"app_id": "a\u0000b"}))
    assert_refused(r, field="app_id")
