"""The Segment-compatible source (server/sources/segment.py): Segment's HTTP tracking API shapes, write-key
auth, messageId dedupe, anonymousId → visitor, userId → user, metadata rules, batch reporting."""

from __future__ import annotations

import base64
import gzip
import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from .live_server import in_store, running_server


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat().replace("+00:00", "Z")


async def post(h: Any, path: str, body: Any, key: str | None = None, **headers: str) -> httpx.Response:
    auth = basic(key if key is not None else h.workspace.access_token)
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await h.client.post(path, content=content, headers={**auth, "content-type": "application/json", **headers})


def assert_error(r: httpx.Response, status: int, code: str, field: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["type"] == "error.list" and body["request_id"], body
    assert body["errors"][0]["code"] == code, body
    if field is not None:
        assert body["errors"][0].get("field") == field, body
    return dict(body)


async def history(h: Any, contact: Any) -> list[Any]:
    return list(reversed(await h.store.events_for(h.workspace, contact, limit=1000)))


async def contact_count(h: Any) -> int:
    async with h.store.db.read() as conn:
        row = await conn.fetch_one("SELECT COUNT(*) AS n FROM contacts WHERE workspace_id = ?", (h.workspace.id,))
    return int(row["n"])


# ------------------------------------------------------------------ track
async def test_track_creates_the_user_and_stores_the_event_at_its_timestamp(harness):
    h = harness
    at = int(time.time()) - 3600
    r = await post(h, "/v1/track", {
        "userId": "u-42", "event": "Order Completed", "messageId": "m-1", "timestamp": iso(at),
        "properties": {"order_id": "A-17", "total": 30, "coupon_url": "https://shop.example/c/SAVE"},
        "context": {"library": {"name": "analytics-node", "version": "2.0.0"}}})
    assert r.status_code == 200, r.text
    assert r.json() == {"success": True, "status": "accepted", "dropped": []}
    user = await h.store.find_contact(h.workspace, user_id="u-42")
    assert user is not None and user.role == "user"
    [ev] = await history(h, user)
    assert (ev.event_name, ev.created_at, ev.source) == ("order completed", at, "segment")
    assert ev.metadata == {"order_id": "A-17", "total": 30, "coupon_url": "https://shop.example/c/SAVE"}
    assert ev.metadata_types["coupon_url"] == "link"
    # Visible through the REST API like any other event.
    listed = await h.client.get("/events", params={"type": "user", "user_id": "u-42"}, headers=h.auth)
    assert [e["event_name"] for e in listed.json()["events"]] == ["order completed"]


async def test_retries_of_the_same_message_id_count_once(harness):
    h = harness
    body = {"userId": "u-1", "event": "Signed Up", "messageId": "retry-me", "timestamp": iso(int(time.time()) - 5)}
    statuses = [(await post(h, "/v1/track", body)).json()["status"] for _ in range(3)]
    assert statuses == ["accepted", "duplicate", "duplicate"]
    # Even when the retry arrives inside a batch.
    r = await post(h, "/v1/batch", {"batch": [{**body, "type": "track"}]})
    assert r.json()["duplicate"] == 1 and r.json()["accepted"] == 0
    assert await h.event_count() == 1
    [name] = await h.store.event_names(h.workspace)
    assert name.event_count == 1


async def test_without_a_message_id_an_identical_retry_still_counts_once(harness):
    h = harness
    body = {"userId": "u-1", "event": "Clicked", "timestamp": iso(int(time.time()) - 5), "properties": {"n": 1}}
    assert (await post(h, "/v1/track", body)).json()["status"] == "accepted"
    assert (await post(h, "/v1/track", body)).json()["status"] == "duplicate"
    assert (await post(h, "/v1/track", {**body, "properties": {"n": 2}})).json()["status"] == "accepted"


async def test_dropped_properties_are_reported_and_the_event_kept(harness):
    h = harness
    props = {"plan": "pro", "is_trial": True, "tags": ["a", "b"], "address": {"city": "Oslo"}, "bad.key": 1,
             **{f"k{i}": i for i in range(25)}}
    r = await post(h, "/v1/track", {"userId": "u-1", "event": "Upgraded", "properties": props})
    assert r.status_code == 200, r.text
    dropped = {d["key"]: d["reason"] for d in r.json()["dropped"]}
    assert "boolean" in dropped["is_trial"] and "list" in dropped["tags"]
    assert "nested" in dropped["address"] and "not allowed" in dropped["bad.key"]
    assert sum("more than 20" in reason for reason in dropped.values()) == 6  # plan + k0..k18 kept: 20
    [ev] = await history(h, await h.store.find_contact(h.workspace, user_id="u-1"))
    assert len(ev.metadata) == 20 and ev.metadata["plan"] == "pro"


async def test_revenue_is_also_kept_as_a_monetary_price(harness):
    h = harness
    await post(h, "/v1/track", {"userId": "u-1", "event": "Order Completed",
                                "properties": {"revenue": 19.99, "currency": "EUR"}})
    [ev] = await history(h, await h.store.find_contact(h.workspace, user_id="u-1"))
    assert ev.metadata["price"] == {"amount": 1999, "currency": "eur"}
    assert ev.metadata_types["price"] == "money" and ev.metadata["revenue"] == 19.99


async def test_strict_workspace_refuses_a_message_with_bad_properties(make_harness):
    async with make_harness(strict_metadata=True) as h:
        r = await post(h, "/v1/track", {"userId": "u-1", "event": "X", "properties": {"nested": {"a": 1}}})
        assert_error(r, 422, "data_invalid", "properties.nested")
        assert await h.event_count() == 0


# ------------------------------------------------------------------ identity
async def test_anonymous_track_then_identify_turns_the_visitor_into_the_user(harness):
    h = harness
    now = int(time.time())
    await post(h, "/v1/page", {"anonymousId": "anon-1", "name": "Pricing", "timestamp": iso(now - 60),
                               "properties": {"url": "https://example.com/pricing?x=1", "path": "/pricing",
                                              "title": "Pricing", "referrer": "https://google.com/"}})
    visitor = await h.store.find_contact(h.workspace, visitor_id="anon-1")
    assert visitor is not None and visitor.role == "visitor"
    r = await post(h, "/v1/identify", {"anonymousId": "anon-1", "userId": "u-9",
                                       "traits": {"email": "ada@example.com", "firstName": "Ada",
                                                  "lastName": "Lovelace", "plan": "pro",
                                                  "address": {"city": "London"}}})
    assert r.status_code == 200 and r.json()["status"] == "identified"
    assert r.json()["dropped"] == [{"key": "address", "reason": "custom attributes must be strings, numbers, "
                                                                "booleans or null"}]
    user = await h.store.find_contact(h.workspace, user_id="u-9")
    assert user is not None and user.id == visitor.id and user.role == "user"
    assert (user.email, user.name, user.custom_attributes) == ("ada@example.com", "Ada Lovelace", {"plan": "pro"})
    # Later anonymous events (same device) land on the user too.
    await post(h, "/v1/track", {"anonymousId": "anon-1", "event": "Clicked Buy"})
    events = await history(h, user)
    assert [e.event_name for e in events] == ["viewed-page", "clicked buy"]
    page = events[0]
    assert page.metadata == {"name": "Pricing", "url": "https://example.com/pricing?x=1", "title": "Pricing",
                             "path": "/pricing", "referrer": "https://google.com/"}
    assert page.metadata_types["url"] == "link"


async def test_identify_merges_a_new_device_into_an_existing_user(harness):
    h = harness
    await post(h, "/v1/identify", {"userId": "u-1", "traits": {"email": "bo@example.com"}})
    await post(h, "/v1/track", {"anonymousId": "phone", "event": "Opened App"})
    phone = await h.store.find_contact(h.workspace, visitor_id="phone")
    await post(h, "/v1/identify", {"anonymousId": "phone", "userId": "u-1"})
    user = await h.store.find_contact(h.workspace, user_id="u-1")
    assert user.id != phone.id
    assert (await h.store.find_contact(h.workspace, visitor_id="phone")).id == user.id
    assert [e.event_name for e in await history(h, user)] == ["opened app"]
    assert [m.kind for m in await h.store.merges_for(h.workspace, user.id)] == ["merge"]


async def test_anonymous_identify_with_an_email_makes_a_lead(harness):
    h = harness
    await post(h, "/v1/identify", {"anonymousId": "anon-7", "traits": {"email": "lead@example.com"}})
    lead = await h.store.find_contact(h.workspace, visitor_id="anon-7")
    assert (lead.role, lead.email) == ("lead", "lead@example.com")


async def test_page_takes_url_title_path_from_context_and_screen_is_viewed_screen(harness):
    h = harness
    await post(h, "/v1/page", {"userId": "u-1", "context": {"page": {"url": "https://a.example/docs",
                                                                     "title": "Docs", "path": "/docs"}}})
    await post(h, "/v1/screen", {"userId": "u-1", "name": "Home", "properties": {"tab": 2}})
    events = await history(h, await h.store.find_contact(h.workspace, user_id="u-1"))
    assert [(e.event_name, e.metadata) for e in events] == [
        ("viewed-page", {"url": "https://a.example/docs", "title": "Docs", "path": "/docs"}),
        ("viewed-screen", {"name": "Home", "tab": 2})]


async def test_group_is_accepted_and_ignored_alias_links_a_visitor(harness):
    h = harness
    r = await post(h, "/v1/group", {"userId": "u-1", "groupId": "acme", "traits": {"name": "Acme"}})
    assert r.json()["status"] == "ignored"
    await post(h, "/v1/track", {"anonymousId": "old-anon", "event": "Visited"})
    r = await post(h, "/v1/alias", {"previousId": "old-anon", "userId": "u-5"})
    assert r.json()["status"] == "identified"
    user = await h.store.find_contact(h.workspace, user_id="u-5")
    assert [e.event_name for e in await history(h, user)] == ["visited"]


# ------------------------------------------------------------------ batch
async def test_batch_stores_the_valid_messages_and_reports_the_bad_ones_by_index(harness):
    h = harness
    now = int(time.time())
    batch = {"batch": [
        {"type": "identify", "anonymousId": "a-1", "userId": "u-1", "messageId": "b0"},
        {"type": "track", "anonymousId": "a-1", "event": "Step 1", "messageId": "b1", "timestamp": iso(now - 30)},
        {"type": "track", "userId": "u-1", "messageId": "b2"},  # no event
        {"type": "page", "userId": "u-2", "messageId": "b3", "properties": {"url": "https://x.example/"}},
        {"type": "track", "event": "No One", "messageId": "b4"},  # no id
        {"type": "shout", "userId": "u-1"},
        {"type": "track", "userId": "u-1", "event": "Step 2", "messageId": "b6",
         "timestamp": "yesterday-ish"},
        {"type": "track", "userId": "u-1", "event": "Step 3", "messageId": "b7", "properties": {"ok": [1]}},
    ], "sentAt": iso(now)}
    r = await post(h, "/v1/batch", batch)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["accepted"], body["duplicate"], body["identified"]) == (3, 0, 1)
    rejected = {x["index"]: x["errors"][0] for x in body["rejected"]}
    assert set(rejected) == {2, 4, 5, 6}
    assert rejected[2]["field"] == "batch[2].event" and rejected[4]["field"] == "batch[4].userId"
    assert rejected[5]["field"] == "batch[5].type" and rejected[6]["field"] == "batch[6].timestamp"
    assert body["dropped"] == [{"index": 7, "key": "ok", "reason": "lists are not supported (metadata is flat)"}]
    u1 = await h.store.find_contact(h.workspace, user_id="u-1")
    assert [e.event_name for e in await history(h, u1)] == ["step 1", "step 3"]
    assert await h.event_count() == 3

    again = (await post(h, "/v1/batch", batch)).json()
    assert (again["accepted"], again["duplicate"]) == (0, 3)
    assert await h.event_count() == 3


async def test_batch_with_no_valid_message_is_a_400_and_stores_nothing(harness):
    h = harness
    r = await post(h, "/v1/batch", {"batch": [{"type": "track", "event": "x"}, {"type": "track", "userId": "u"}]})
    body = assert_error(r, 400, "parameter_not_found", "batch[0].userId")
    assert [e["field"] for e in body["errors"]] == ["batch[0].userId", "batch[1].event"]
    assert await h.event_count() == 0 and await contact_count(h) == 0


async def test_gzipped_batch_and_write_key_in_the_body(harness):
    h = harness
    key = await h.store.segment_write_key(h.workspace)
    assert key.startswith("wk_") and await h.store.segment_write_key(h.workspace) == key
    body = gzip.compress(json.dumps({"batch": [{"type": "track", "userId": "u", "event": "Zipped"}]}).encode())
    r = await post(h, "/v1/batch", body, key=key, **{"content-encoding": "gzip"})
    assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
    r = await h.client.post("/v1/track", json={"writeKey": key, "userId": "u", "event": "Body Key"})
    assert r.status_code == 200 and r.json()["status"] == "accepted", r.text
    # A rotated key stops working.
    await h.store.segment_write_key(h.workspace, rotate=True)
    assert_error(await post(h, "/v1/track", {"userId": "u", "event": "Old"}, key=key), 401, "unauthorized")


# ------------------------------------------------------------------ errors: auth and malformed payloads
async def test_bad_auth_is_401_in_the_error_shape_and_stores_nothing(harness):
    h = harness
    msg = {"userId": "u-1", "event": "Sneaky"}
    assert_error(await h.client.post("/v1/track", json=msg), 401, "unauthorized")
    assert_error(await post(h, "/v1/track", msg, key="wrong-key"), 401, "unauthorized")
    assert_error(await post(h, "/v1/batch", {"batch": [msg]}, key=""), 401, "unauthorized")
    r = await h.client.post("/v1/track", json=msg, headers={"Authorization": f"Bearer {h.workspace.access_token}"})
    assert_error(r, 401, "unauthorized")
    r = await h.client.post("/v1/track", json=msg, headers={"Authorization": "Basic !!!not-base64"})
    assert_error(r, 401, "unauthorized")
    assert await h.event_count() == 0 and await contact_count(h) == 0


async def test_malformed_payloads_are_400_in_the_error_shape_and_store_nothing(harness):
    h = harness
    cases = [
        (b"{not json", None),
        (b"[1, 2]", None),
        (b"", None),
        (json.dumps({"event": "x"}).encode(), "userId"),
        (json.dumps({"userId": "u", "properties": {}}).encode(), "event"),
        (json.dumps({"userId": "u", "event": "x", "properties": [1]}).encode(), "properties"),
        (json.dumps({"userId": "u", "event": "x", "timestamp": "not a date"}).encode(), "timestamp"),
        (json.dumps({"userId": "u", "event": "x", "timestamp": "2999-01-01T00:00:00Z"}).encode(), "timestamp"),
        (json.dumps({"userId": {"id": 1}, "event": "x"}).encode(), "userId"),
        (json.dumps({"userId": "u", "event": 17}).encode(), "event"),
        (json.dumps({"userId": "u", "event": "   "}).encode(), "event"),
        (json.dumps({"userId": "u", "event": "x", "messageId": "m" * 500}).encode(), "messageId"),
        (json.dumps({"userId": "u\u0000", "event": "x"}).encode(), "userId"),
        (json.dumps({"anonymousId": "a", "event": "x", "messageId": "m\u0000"}).encode(), "messageId"),
    ]
    for body, field in cases:
        r = await post(h, "/v1/track", body)
        assert r.status_code == 400, (body, r.text)
        err = r.json()
        assert err["type"] == "error.list" and err["errors"][0]["code"].startswith("parameter_"), err
        assert err["errors"][0].get("field") == field, (body, err)
    bad_batches: list[dict[str, Any]] = [{"batch": "nope"}, {"batch": []}, {}]
    for batch in bad_batches:
        assert_error(await post(h, "/v1/batch", batch), 400, "parameter_invalid", "batch")
    assert_error(await post(h, "/v1/track", b"x" * (33 * 1024)), 413, "request_too_large")
    r = await post(h, "/v1/identify", {"userId": "u-nul", "traits": {"name": "a\u0000b", "email": "x\u0000@y.co"}})
    assert r.status_code == 200 and {d["key"] for d in r.json()["dropped"]} == {"name", "email"}
    await h.store.delete_contact(h.workspace, (await h.store.find_contact(h.workspace, user_id="u-nul")).id)
    assert_error(await post(h, "/v1/unknown", {"userId": "u"}), 404, "not_found")
    assert await h.event_count() == 0 and await contact_count(h) == 0


# ------------------------------------------------------------------ Segment's own library, over HTTP
def test_segments_python_library_sends_to_a_real_server(store_url, tmp_path):
    """``segment-analytics-python`` pointed at Trailmark with ``host`` (it posts gzipped batches to
    /v1/batch with Basic auth); the server is uvicorn on a free port, in a thread."""
    analytics = pytest.importorskip("segment.analytics")

    def in_loop(fn: Any) -> Any:
        return in_store(store_url, fn)

    async def setup(store: Any) -> tuple[Any, str]:
        # A server-side library: the access token as its write key (the browser-safe write key may not
        # identify users in a workspace that enforces identity verification, the default).
        ws = await store.create_workspace("Segment")
        return ws, ws.access_token

    ws, key = in_loop(setup)
    with running_server(store_url) as (base_url, _stop):
        port = base_url.rsplit(":", 1)[1]
        client = analytics.Client(key, host=f"http://127.0.0.1:{port}", sync_mode=True, gzip=True, max_retries=0)
        client.page(anonymous_id="device-1", name="Home", properties={"url": "https://example.com/", "title": "Home"})
        client.identify(user_id="u-1", anonymous_id="device-1", traits={"email": "sdk@example.com", "plan": "pro"})
        for _ in range(2):  # a retry with the same message id
            client.track(user_id="u-1", event="Order Completed", properties={"revenue": 12.5, "items": 2},
                         message_id="order-1")
        bad = analytics.Client("not-the-key", host=f"http://127.0.0.1:{port}", sync_mode=True, max_retries=0)
        with pytest.raises(Exception, match=r"401|Write key"):
            bad.track(user_id="u-1", event="Nope")

    async def check(store: Any) -> tuple[Any, list[Any]]:
        user = await store.find_contact(ws, user_id="u-1")
        return user, list(reversed(await store.events_for(ws, user, limit=10)))

    user, events = in_loop(check)
    assert (user.email, user.custom_attributes, user.visitor_id) == ("sdk@example.com", {"plan": "pro"}, "device-1")
    assert [e.event_name for e in events] == ["viewed-page", "order completed"]
    assert events[1].metadata == {"revenue": 12.5, "items": 2, "price": {"amount": 1250, "currency": "usd"}}


# ------------------------------------------------------------------ Segment's browser library (analytics.js)
SITE = "https://shop.example"
BROWSER_HEADERS = {"origin": SITE, "content-type": "text/plain"}


def ajs_body(key: str, kind: str, **fields: Any) -> bytes:
    """What analytics-next's fetch dispatcher posts: the event's JSON as text/plain, with writeKey, sentAt,
    a messageId, context, integrations and _metadata (tests/browser/test_segment_browser.py runs the real one)."""
    now = datetime.now(tz=UTC).isoformat().replace("+00:00", "Z")
    return json.dumps({"type": kind, "writeKey": key, "anonymousId": "ajs-anon-1", "timestamp": now, "sentAt": now,
                       "messageId": f"ajs-next-{kind}-{time.time_ns()}", "integrations": {},
                       "context": {"library": {"name": "analytics.js", "version": "next-1.84.3"},
                                   "page": {"url": "https://shop.example/pricing", "path": "/pricing"}},
                       "_metadata": {"bundled": ["Segment.io"], "unbundled": [], "bundledIds": []},
                       **fields}).encode()


async def test_analytics_js_short_paths_with_text_plain_bodies_and_the_key_in_the_body(harness):
    h = harness
    key = await h.store.segment_write_key(h.workspace)
    for path, kind, fields in (("/v1/p", "page", {"properties": {"url": "https://shop.example/pricing",
                                                                  "title": "Pricing"}}),
                               ("/v1/t", "track", {"event": "Clicked Buy", "properties": {"plan": "pro"}}),
                               ("/v1/s", "screen", {"name": "Home"}),
                               ("/v1/i", "identify", {"userId": "u-7", "traits": {"email": "ajs@example.com"}}),
                               ("/v1/g", "group", {"userId": "u-7", "groupId": "acme"}),
                               ("/v1/a", "alias", {"userId": "u-8", "previousId": "someone-else"})):
        r = await h.client.post(path, content=ajs_body(key, kind, **fields), headers={"content-type": "text/plain"})
        assert r.status_code == 200, (path, r.text)
        assert r.json()["success"] is True and r.json()["dropped"] == [], (path, r.text)
    user = await h.store.find_contact(h.workspace, user_id="u-7")
    assert (user.visitor_id, user.email) == ("ajs-anon-1", "ajs@example.com")
    assert [e.event_name for e in await history(h, user)] == ["viewed-page", "clicked buy", "viewed-screen"]
    # The batching mode ("deliveryStrategy: batching") posts {writeKey, batch, sentAt} to /v1/b, with Basic
    # auth as well; its messages carry no sentAt of their own.
    at = int(time.time()) - 30
    item = {k: v for k, v in json.loads(ajs_body(key, "track", event="Batched", userId="u-7")).items() if k != "sentAt"}
    batch = {"writeKey": key, "sentAt": iso(at + 30), "batch": [{**item, "timestamp": iso(at)},
                                                               {"type": "track", "userId": "u-7"}]}
    r = await h.client.post("/v1/b", content=json.dumps(batch).encode(),
                            headers={**basic(key), "content-type": "text/plain"})
    assert r.status_code == 200, r.text
    assert (r.json()["accepted"], [x["index"] for x in r.json()["rejected"]]) == (1, [1])
    [batched] = [e for e in await history(h, user) if e.event_name == "batched"]
    assert batched.created_at == at
    assert_error(await h.client.post("/v1/x", content=ajs_body(key, "track", event="x")), 404, "not_found")


async def test_preflight_and_cors_on_success_and_error_answers(harness):
    h = harness
    key = await h.store.segment_write_key(h.workspace)
    for path in ("/v1/t", "/v1/b", "/v1/track", "/v1/batch", "/v1/anything/else"):
        r = await h.client.options(path, headers={"origin": SITE, "access-control-request-method": "POST",
                                                  "access-control-request-headers": "authorization,content-type"})
        assert r.status_code == 204, (path, r.text)
        assert r.headers["access-control-allow-origin"] == SITE
        assert "POST" in r.headers["access-control-allow-methods"]
        allowed = {x.strip().lower() for x in r.headers["access-control-allow-headers"].split(",")}
        assert {"authorization", "content-type", "x-retry-count"} <= allowed
    # Success: the workspace lists no origins, so any site may send.
    r = await h.client.post("/v1/t", content=ajs_body(key, "track", event="Hello"), headers=BROWSER_HEADERS)
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] in (SITE, "*"), r.headers
    r = await h.client.post("/v1/b", content=json.dumps({"writeKey": key, "batch": [
        json.loads(ajs_body(key, "track", event="Hello Again"))]}).encode(), headers=BROWSER_HEADERS)
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] in (SITE, "*"), r.headers
    # Errors, before and after the workspace is known, are readable by the page.
    for path, body, status, code in (
            ("/v1/t", ajs_body("wk_wrong", "track", event="x"), 401, "unauthorized"),
            ("/v1/t", b"{not json", 400, "parameter_invalid"),
            ("/v1/t", ajs_body(key, "track"), 400, "parameter_not_found"),
            ("/v1/b", json.dumps({"writeKey": key, "batch": []}).encode(), 400, "parameter_invalid"),
            ("/v1/t", b"x" * (33 * 1024), 413, "request_too_large"),
            ("/v1/zz", ajs_body(key, "track", event="x"), 404, "not_found")):
        r = await h.client.post(path, content=body, headers=BROWSER_HEADERS)
        assert_error(r, status, code)
        assert r.headers["access-control-allow-origin"] in (SITE, "*"), (path, status, r.headers)
    # A server-side client (no Origin) gets no CORS headers.
    r = await post(h, "/v1/track", {"userId": "u-1", "event": "Server"})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


async def test_the_workspaces_allowed_origins_are_enforced_once_the_key_names_it(make_harness):
    async with make_harness(allowed_origins=[SITE]) as h:
        key = await h.store.segment_write_key(h.workspace)
        # The preflight cannot know the workspace yet: it is answered for any origin.
        r = await h.client.options("/v1/t", headers={"origin": "https://evil.example",
                                                     "access-control-request-method": "POST"})
        assert r.status_code == 204 and r.headers["access-control-allow-origin"] == "https://evil.example"
        for path, body in (("/v1/t", ajs_body(key, "track", event="Sneaky")),
                           ("/v1/b", json.dumps({"writeKey": key, "batch": [
                               json.loads(ajs_body(key, "track", event="Sneaky"))]}).encode())):
            r = await h.client.post(path, content=body, headers={**BROWSER_HEADERS, "origin": "https://evil.example"})
            assert_error(r, 403, "forbidden", "origin")
            assert r.headers["access-control-allow-origin"] == "https://evil.example"  # the refusal is readable
        assert await h.event_count() == 0 and await contact_count(h) == 0
        r = await h.client.post("/v1/t", content=ajs_body(key, "track", event="Welcome"),
                                headers={**BROWSER_HEADERS, "origin": SITE + "/"})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == SITE + "/", r.text
        # Server-side clients send no Origin: not concerned.
        assert (await post(h, "/v1/track", {"userId": "u-1", "event": "Server"})).status_code == 200
        assert await h.event_count() == 2


async def test_in_an_enforcing_workspace_analytics_js_identify_cannot_make_a_user(make_harness):
    """analytics.js always sends the anonymousId; after identify(userId) every call carries the userId too.
    With the write key in a workspace that enforces identity verification, the userId is ignored: the data
    stays with the anonymousId's visitor (a lead once an email trait is given)."""
    async with make_harness(enforce_identity_verification=True) as h:
        key = await h.store.segment_write_key(h.workspace)
        r = await h.client.post("/v1/i", content=ajs_body(key, "identify", userId="victim",
                                                          traits={"email": "me@example.com", "plan": "pro"}),
                                headers=BROWSER_HEADERS)
        assert r.status_code == 200 and r.json()["status"] == "identified", r.text
        assert r.json()["warning"].startswith("userId ignored")
        r = await h.client.post("/v1/t", content=ajs_body(key, "track", userId="victim", event="Bought"),
                                headers=BROWSER_HEADERS)
        assert r.status_code == 200 and r.json()["status"] == "accepted" and "warning" in r.json(), r.text
        assert await h.store.find_contact(h.workspace, user_id="victim") is None
        lead = await h.store.find_contact(h.workspace, visitor_id="ajs-anon-1")
        assert (lead.role, lead.email, lead.external_id) == ("lead", "me@example.com", None)
        assert [e.event_name for e in await history(h, lead)] == ["bought"]
