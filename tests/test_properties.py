"""Property-based: whatever bytes, nesting, numbers or unicode a client sends, no endpoint answers 5xx, every
refusal is Intercom's error shape, and a refused request stores nothing (events and contacts counted before
and after). One family of endpoints per test: snippet, REST events, REST contacts (+ search), Segment,
Stripe. SQLite only (the store-specific cases are in test_untrusted_input.py, on both stores).

Bodies are built as JSON *text*, so they can hold what ``json.dumps`` never writes: NaN, 1e400, 5,000-digit
integers, escaped and raw lone surrogates, NUL, deep nesting, and UTF-16 encodings.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import json
import os
import time
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .test_stripe import SECRET, signature

pytestmark = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)

EXAMPLES = int(os.environ.get("TRAILMARK_PROPERTY_EXAMPLES", "60"))  # more locally to hunt
FAST = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])

# ------------------------------------------------------------------------------------------ JSON text
NASTY_ATOMS = ["null", "true", "false", "NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1e308", "-1e308",
               "4.9e-324", "-0", "0", "1" + "0" * 30, "9" * 5000, "-" + "9" * 4301, '"\\ud800"', '"\\udfff"',
               '"a\\u0000b"', '"\\ud83d\\ude00"', '"\u00b2"', '"\u0663"', '""', '" "', "[]", "{}"]
any_char = st.characters(codec=None, categories=None)  # surrogates and control characters included
text_atom = st.one_of(
    st.text(max_size=12).map(json.dumps),
    st.text(any_char, max_size=12).map(json.dumps),  # lone surrogates escaped: "\ud800"
    st.text(any_char, max_size=12).map(lambda s: json.dumps(s, ensure_ascii=False)),  # raw once encoded
)
atom = st.one_of(st.sampled_from(NASTY_ATOMS), st.integers().map(str),
                 st.floats(allow_nan=False, allow_infinity=False).map(json.dumps), text_atom)


def _array(items: list[str]) -> str:
    return "[" + ",".join(items) + "]"


def _object(pairs: dict[str, str]) -> str:
    return "{" + ",".join(f"{json.dumps(k, ensure_ascii=False)}:{v}" for k, v in pairs.items()) + "}"


keys = st.one_of(st.text(max_size=8), st.text(any_char, max_size=8), st.sampled_from(["id", "email", "a.b", ""]))
raw_json = st.recursive(atom, lambda inner: st.one_of(st.lists(inner, max_size=4).map(_array),
                                                      st.dictionaries(keys, inner, max_size=4).map(_object)),
                        max_leaves=12)
deep = st.tuples(st.integers(30, 3000), st.sampled_from("[{")).map(
    lambda d: ("[" * d[0] + "]" * d[0]) if d[1] == "[" else ('{"a":' * d[0] + "1" + "}" * d[0]))
anything = st.one_of(raw_json, deep)


def maybe(valid: Any) -> st.SearchStrategy[str]:
    """A field's JSON text: usually ``valid`` (so requests get past the first check), else anything."""
    strategy = valid if isinstance(valid, st.SearchStrategy) else st.just(json.dumps(valid))
    return st.one_of(strategy, strategy, anything)


def body(**fields: Any) -> st.SearchStrategy[bytes]:
    """A JSON object of these fields (each possibly replaced or left out), in UTF-8 (raw surrogates kept)
    or, now and then, UTF-16."""
    pairs = st.fixed_dictionaries({}, optional={k: maybe(v) for k, v in fields.items()}).map(_object)
    encoding = st.sampled_from(["utf-8"] * 8 + ["utf-16", "utf-16-le"])
    return st.tuples(pairs, encoding).map(lambda p: p[0].encode(p[1], "surrogatepass"))


any_body = st.one_of(st.binary(max_size=300), body())

# ------------------------------------------------------------------------------------------ checks
async def counts(h: Any) -> tuple[int, int]:
    async with h.store.db.read() as conn:
        row = await conn.fetch_one("SELECT COUNT(*) AS n FROM contacts WHERE workspace_id = ?", (h.workspace.id,))
    return await h.event_count(), int(row["n"])


async def check(h: Any, send: Any) -> httpx.Response:
    """Send; never a 5xx; a refusal is an error list and leaves the counts as they were."""
    before = await counts(h)
    r = await send()
    assert r.status_code < 500, r.text[:500]
    if r.status_code >= 400:
        err = r.json()
        assert err["type"] == "error.list" and err["request_id"] and err["errors"], err
        assert all(isinstance(e["code"], str) and isinstance(e["message"], str) for e in err["errors"]), err
        assert await counts(h) == before, r.text[:500]
    return r


@pytest.fixture
async def world(harness: Any) -> dict[str, Any]:
    h = harness
    me = await h.visitor()
    user = await h.store.create_contact(h.workspace, "user", external_id="u-1", email="u1@example.com")
    await h.store.add_stripe_secret(h.workspace, SECRET)
    return {"h": h, "me": me, "user": user}


# ------------------------------------------------------------------------------------------ snippet
event = st.fixed_dictionaries({}, optional={"id": maybe(st.uuids().map(lambda u: json.dumps(str(u)))),
                                            "event_name": maybe("signed-up"), "created_at": maybe(int(time.time())),
                                            "metadata": maybe({"plan": "pro", "n": 3})}).map(_object)


@FAST
@given(data=st.data(), path=st.sampled_from(["ping", "events", "conversations", "thread"]), raw=st.booleans())
async def test_snippet_endpoints_never_fail(world, data, path, raw):
    h, me = world["h"], world["me"]
    if raw:
        content = data.draw(any_body)
    else:
        content = data.draw(body(
            app_id=h.workspace.app_id, device=me["device"], session=me["session"],
            user=st.fixed_dictionaries({}, optional={"user_id": maybe("u-9"), "email": maybe("a@b.co"),
                                                     "name": maybe("Ann"), "plan": anything}).map(_object),
            events=st.lists(event, max_size=3).map(_array), email="lead@example.com", message="hi",
            client_id="c-1"))
    await check(h, lambda: h.client.post(f"/messenger/web/{path}", content=content,
                                         headers={"content-type": "text/plain"}))


# ------------------------------------------------------------------------------------------ REST events
@FAST
@given(data=st.data(), raw=st.booleans())
async def test_rest_event_creation_never_fails(world, data, raw):
    h = world["h"]
    content = data.draw(any_body if raw else body(event_name="paid", user_id="u-1", email="u1@example.com",
                                                  created_at=int(time.time()) - 60, metadata={"a": 1}))
    await check(h, lambda: h.client.post("/events", content=content, headers=h.auth))


query_text = st.one_of(st.text(max_size=30), st.sampled_from(["\u00b2", "9" * 5000, "-1", "1e3", " 5"]),
                       st.integers().map(str))


@FAST
@given(params=st.fixed_dictionaries({"type": st.just("user")}, optional={
    "user_id": st.one_of(st.just("u-1"), query_text), "filter": st.one_of(raw_json, deep),
    "per_page": query_text, "before": query_text, "before_id": query_text, "since": query_text,
    "summary": st.sampled_from(["true", "false"])}))
async def test_rest_event_listing_never_fails(world, params):
    h = world["h"]
    params = {k: v.encode("utf-8", "surrogatepass").decode("utf-8", "replace") for k, v in params.items()}
    await check(h, lambda: h.client.get("/events", params=params, headers=h.auth))


# ------------------------------------------------------------------------------------------ REST contacts
search_filter = st.fixed_dictionaries({}, optional={
    "field": maybe(st.sampled_from(["email", "created_at", "custom_attributes.plan", "role", "owner_id"])
                   .map(json.dumps)),
    "operator": maybe(st.sampled_from(["=", "!=", "IN", ">", "<", "~", "AND", "OR"]).map(json.dumps)),
    "value": anything}).map(_object)


@FAST
@given(data=st.data(), which=st.sampled_from(["create", "update", "search", "list"]), raw=st.booleans())
async def test_rest_contacts_never_fail(world, data, which, raw):
    h, user = world["h"], world["user"]
    fields = dict(email="new@example.com", external_id="ext-1", name="N", phone="1", role="user",
                  signed_up_at=1_700_000_000, owner_id=1, custom_attributes={"plan": "pro"})
    if which == "list":
        params = data.draw(st.fixed_dictionaries({}, optional={"per_page": query_text, "starting_after": query_text}))
        await check(h, lambda: h.client.get("/contacts", params=params, headers=h.auth))
        return
    if which == "search":
        content = data.draw(any_body if raw else body(query=search_filter, pagination=st.fixed_dictionaries(
            {}, optional={"per_page": anything, "starting_after": anything}).map(_object)))
        await check(h, lambda: h.client.post("/contacts/search", content=content, headers=h.auth))
        return
    content = data.draw(any_body if raw else body(**fields))
    if which == "create":
        await check(h, lambda: h.client.post("/contacts", content=content, headers=h.auth))
    else:
        await check(h, lambda: h.client.put(f"/contacts/{user.id}", content=content, headers=h.auth))


# ------------------------------------------------------------------------------------------ Segment
def segment_message(kind: str | None = None) -> st.SearchStrategy[str]:
    extra = {"type": maybe(kind or "track")} if kind is None else {}
    return st.fixed_dictionaries({}, optional={
        **extra, "userId": maybe("u-1"), "anonymousId": maybe("anon-1"), "event": maybe("Order Completed"),
        "messageId": maybe("m-1"), "timestamp": maybe("2024-01-01T00:00:00Z"),
        "originalTimestamp": maybe(1_700_000_000), "sentAt": maybe(1_700_000_100),
        "properties": maybe(st.dictionaries(keys, anything, max_size=3).map(_object)),
        "traits": maybe(st.dictionaries(st.sampled_from(["email", "name", "firstName", "plan"]), anything,
                                        max_size=3).map(_object))}).map(_object)


@FAST
@given(data=st.data(), path=st.sampled_from(["track", "identify", "page", "screen", "alias", "batch"]),
       raw=st.booleans(), gzipped=st.booleans())
async def test_segment_endpoints_never_fail(world, data, path, raw, gzipped):
    h = world["h"]
    if raw:
        content = data.draw(any_body)
    elif path == "batch":
        content = data.draw(st.one_of(
            st.lists(segment_message(None), max_size=3).map(lambda ms: ('{"batch":' + _array(ms) + "}")
                                                             .encode("utf-8", "surrogatepass")),
            body(batch=anything)))
    else:
        content = data.draw(segment_message(path).map(lambda s: s.encode("utf-8", "surrogatepass")))
    headers = {"Authorization": "Basic " + base64.b64encode(f"{h.workspace.access_token}:".encode()).decode(),
               "content-type": "application/json"}
    if gzipped:
        content, headers["content-encoding"] = gzip.compress(content), "gzip"
    await check(h, lambda: h.client.post(f"/v1/{path}", content=content, headers=headers))


# ------------------------------------------------------------------------------------------ Stripe
stripe_object = st.fixed_dictionaries({}, optional={
    "id": maybe("in_1"), "object": maybe("invoice"), "customer": maybe("cus_1"),
    "customer_email": maybe(st.sampled_from(["u1@example.com", "nobody@example.com"]).map(json.dumps)),
    "amount_paid": maybe(4900), "currency": maybe("usd"), "created": maybe(1_700_000_000),
    "items": anything}).map(_object)


@FAST
@given(data=st.data(), raw=st.booleans(), signed=st.booleans())
async def test_stripe_webhook_never_fails(world, data, raw, signed):
    h = world["h"]
    if raw:
        payload = data.draw(any_body)
    else:
        payload = data.draw(body(
            id=st.uuids().map(lambda u: json.dumps(f"evt_{u.hex}")),
            type=st.sampled_from(["invoice.paid", "charge.failed", "customer.created", "x.y"]).map(json.dumps),
            created=int(time.time()) - 10,
            data=st.fixed_dictionaries({"object": maybe(stripe_object)}).map(_object)))
    if signed:
        now = int(time.time())
        mac = hmac.new(SECRET.encode(), f"{now}.".encode() + payload, hashlib.sha256).hexdigest()
        header: str | bytes = f"t={now},v1={mac}"
    else:
        drawn: str = data.draw(st.one_of(st.text(max_size=40), st.just("t=" + "9" * 4301 + ",v1=00"),
                                         st.just(signature("{}", SECRET))))
        header = drawn.encode("utf-8", "surrogatepass").replace(b"\r", b"").replace(b"\n", b"")  # raw bytes
    r = await check(h, lambda: h.client.post(f"/integrations/stripe/webhook/{h.workspace.app_id}",
                                             content=payload, headers={"Stripe-Signature": header}))
    if r.status_code < 300:  # what was recorded can always be listed again
        listed = await h.client.get("/integrations/stripe/unmatched?include_resolved=true", headers=h.auth)
        assert listed.status_code == 200, listed.text[:500]
