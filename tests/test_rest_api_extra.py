"""The REST API around the endpoints: ``POST /events/summaries``, ``before``/``since`` paging and the
``filter[...]`` aliases, rate limiting (``X-RateLimit-*``, 429), ``Intercom-Version``, and the error-list
shape (with nothing stored) on every REST endpoint."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from trailmark.ratelimit import RateLimiter
from trailmark.store.models import AppendRequest, NewEvent

DAY = 86400


async def post(h: Any, path: str, body: Any, **headers: str) -> httpx.Response:
    return await h.client.post(path, content=json.dumps(body),
                               headers={**h.auth, "content-type": "application/json", **headers})


async def summary(h: Any, **ident: str) -> dict[str, dict[str, Any]]:
    r = await h.client.get("/events", params={"type": "user", "summary": "true", **ident}, headers=h.auth)
    assert r.status_code == 200, r.text
    assert r.json()["type"] == "event.summary"
    return {e["name"]: e for e in r.json()["events"]}


async def track(h: Any, contact_id: str, name: str, created_at: int, key: str) -> None:
    await h.store.append_events(AppendRequest(h.workspace.id, contact_id, "rest", [NewEvent(
        event_name=name, created_at=created_at, dedupe_key=key, metadata={}, metadata_types={})]))


def iso(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts))


# ---------------------------------------------------------------- POST /events/summaries
async def test_summaries_object_as_the_sdks_send_it(harness):
    h = harness
    await h.store.create_contact(h.workspace, "user", external_id="314159")
    r = await post(h, "/events/summaries", {"user_id": "314159", "event_summaries": {
        "event_name": "Placed.Order", "count": 3, "first": 1_671_028_894, "last": 1_671_128_894}})
    assert r.status_code == 200 and r.content == b""
    s = await summary(h, user_id="314159")
    # No description set: the key is left out (Intercom's description of the summary has no null).
    assert s == {"placed-order": {"name": "placed-order", "count": 3, "first": iso(1_671_028_894),
                                  "last": iso(1_671_128_894)}}


async def test_summaries_merge_with_counted_events_and_each_other(harness):
    h = harness
    user = await h.store.create_contact(h.workspace, "user", external_id="u1", email="u1@example.com")
    now = int(time.time())
    await track(h, user.id, "logged-in", now - 10, "a")
    await track(h, user.id, "logged-in", now - 5, "b")
    r = await post(h, "/events/summaries", {"email": "u1@example.com", "event_summaries": [
        {"event_name": "logged-in", "count": 40, "first": now - 400 * DAY, "last": now - 300 * DAY},
        {"event_name": "exported-csv", "count": 2, "first": now - 50 * DAY, "last": now - 40 * DAY},
        {"event_name": "exported-csv", "first": now - 60 * DAY}]})  # count defaults to 1, last to first
    assert r.status_code == 200, r.text
    again = await post(h, "/events/summaries", {"id": user.id, "event_summaries": {"event_name": "exported-csv",
                                                                                   "count": 1}})
    assert again.status_code == 200
    s = await summary(h, user_id="u1")
    assert s["logged-in"]["count"] == 42
    assert s["logged-in"]["first"] == iso(now - 400 * DAY) and s["logged-in"]["last"] == iso(now - 5)
    assert s["exported-csv"]["count"] == 4  # 2 + 1 + 1: each request adds to the aggregate
    assert s["exported-csv"]["first"] == iso(now - 60 * DAY)
    # Summaries are aggregates, not events: nothing new to list.
    listed = await h.client.get("/events", params={"type": "user", "user_id": "u1"}, headers=h.auth)
    assert [e["event_name"] for e in listed.json()["events"]] == ["logged-in", "logged-in"]


async def test_summaries_follow_a_lead_merged_into_a_user(harness):
    h = harness
    user = await h.store.create_contact(h.workspace, "user", external_id="u2")
    lead = await h.store.create_contact(h.workspace, "lead", email="l@example.com")
    assert (await post(h, "/events/summaries", {"id": lead.id, "event_summaries": {
        "event_name": "read-pricing", "count": 5, "first": 1_600_000_000, "last": 1_600_000_100}})).status_code == 200
    assert (await post(h, "/contacts/merge", {"from": lead.id, "into": user.id})).status_code == 200
    assert (await summary(h, user_id="u2"))["read-pricing"]["count"] == 5


@pytest.mark.parametrize("body, status, code, field", [
    ({"event_summaries": {"event_name": "x"}}, 400, "parameter_not_found", "user_id"),
    ({"user_id": "u3"}, 400, "parameter_not_found", "event_summaries"),
    ({"user_id": "u3", "event_summaries": []}, 400, "parameter_invalid", "event_summaries"),
    ({"user_id": "u3", "event_summaries": "x"}, 400, "parameter_invalid", "event_summaries"),
    ({"user_id": "u3", "event_summaries": {"count": 1}}, 400, "parameter_not_found", "event_summaries.event_name"),
    ({"user_id": "u3", "event_summaries": [{"event_name": "a"}, {"event_name": "b", "count": 0}]}, 400,
     "parameter_invalid", "event_summaries[1].count"),
    ({"user_id": "u3", "event_summaries": {"event_name": "a", "count": "2"}}, 400, "parameter_invalid",
     "event_summaries.count"),
    ({"user_id": "u3", "event_summaries": {"event_name": "a", "first": 20, "last": 10}}, 400, "parameter_invalid",
     "event_summaries.first"),
    ({"user_id": "u3", "event_summaries": {"event_name": "a", "last": 1_700_000_000_000}}, 400, "parameter_invalid",
     "event_summaries.last"),
    ({"user_id": "u3", "event_summaries": {"event_name": ""}}, 400, "parameter_invalid",
     "event_summaries.event_name"),
    ({"user_id": "nobody", "event_summaries": {"event_name": "a"}}, 404, "not_found", None),
])
async def test_summaries_errors_store_nothing(harness, body, status, code, field):
    h = harness
    await h.store.create_contact(h.workspace, "user", external_id="u3")
    r = await post(h, "/events/summaries", body)
    assert r.status_code == status, r.text
    err = r.json()["errors"][0]
    assert r.json()["type"] == "error.list" and err["code"] == code and err.get("field") == field
    assert await summary(h, user_id="u3") == {}


# ---------------------------------------------------------------- GET /events: before/since and aliases
async def test_before_and_since_in_epoch_ms_and_filter_aliases(harness):
    h = harness
    lead = await h.store.create_contact(h.workspace, "lead", email="lead@example.com")
    now = int(time.time())
    for i in range(5):
        await track(h, lead.id, f"step-{i}", now - 100 + i * 10, f"k{i}")  # step-4 newest

    async def names(**params: Any) -> list[str]:
        r = await h.client.get("/events", params={"type": "user", "filter[intercom_user_id]": lead.id, **params},
                               headers=h.auth)
        assert r.status_code == 200, r.text
        return [e["event_name"] for e in r.json()["events"]]

    assert await names() == ["step-4", "step-3", "step-2", "step-1", "step-0"]
    assert await names(before=(now - 80) * 1000) == ["step-1", "step-0"]
    assert await names(since=(now - 70) * 1000) == ["step-4", "step-3"]
    r = await h.client.get("/events", params={"filter[type]": "user", "filter[email]": "lead@example.com"},
                           headers=h.auth)
    assert r.status_code == 404  # email finds users only (leads are listed by intercom_user_id)


# ---------------------------------------------------------------- rate limiting
async def test_rate_limit_headers_and_429(make_harness, monkeypatch):
    monkeypatch.setenv("TRAILMARK_RATE_LIMIT", "3")
    monkeypatch.setenv("TRAILMARK_RATE_LIMIT_WINDOW", "3600")
    async with make_harness() as h:
        other = await h.store.create_workspace("Other")
        answers = [await h.client.get("/contacts", headers=h.auth) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 200]
        assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0"]
        assert {a.headers["X-RateLimit-Limit"] for a in answers} == {"3"}
        reset = int(answers[0].headers["X-RateLimit-Reset"])
        assert time.time() < reset <= time.time() + 3600
        over = await post(h, "/events", {"event_name": "x", "user_id": "nobody"})
        assert over.status_code == 429
        assert over.json()["errors"][0]["code"] == "rate_limit_exceeded"
        assert over.json()["errors"][0]["message"] == "Exceeded rate limit of 3 in 3600_seconds"
        assert 1 <= int(over.headers["Retry-After"]) <= 3600
        assert over.headers["X-RateLimit-Remaining"] == "0"
        # Per workspace: another token has its own budget; no credentials: 401 without the headers.
        mine = await h.client.get("/contacts", headers={"Authorization": f"Bearer {other.access_token}"})
        assert mine.status_code == 200 and mine.headers["X-RateLimit-Remaining"] == "2"
        anon = await h.client.get("/contacts", headers={"Authorization": "Bearer wrong"})
        assert anon.status_code == 401 and "X-RateLimit-Limit" not in anon.headers
        # The browser-facing endpoints are not part of the REST budget.
        assert (await h.ping()).status_code == 200


async def test_rate_limit_off_with_zero(make_harness, monkeypatch):
    monkeypatch.setenv("TRAILMARK_RATE_LIMIT", "0")
    async with make_harness() as h:
        r = await h.client.get("/contacts", headers=h.auth)
        assert r.status_code == 200 and "X-RateLimit-Limit" not in r.headers


def test_rate_limiter_windows_reset():
    now = [1000.0]
    limiter = RateLimiter(limit=2, window=10, clock=lambda: now[0])
    assert [limiter.hit("k").allowed for _ in range(3)] == [True, True, False]
    assert limiter.hit("k").reset == 1010
    now[0] = 1010.0
    d = limiter.hit("k")
    assert d.allowed and d.remaining == 1 and d.reset == 1020


# ---------------------------------------------------------------- the error shape on every endpoint
REST_ENDPOINTS: list[tuple[str, str, Any]] = [
    ("POST", "/events", {"event_name": "x", "user_id": "u"}),
    ("GET", "/events?type=user&user_id=u", None),
    ("POST", "/events/summaries", {"user_id": "u", "event_summaries": {"event_name": "x"}}),
    ("POST", "/contacts", {"external_id": "new"}),
    ("GET", "/contacts", None),
    ("POST", "/contacts/search", {"query": {"field": "role", "operator": "=", "value": "user"}}),
    ("POST", "/contacts/merge", {"from": "a", "into": "b"}),
    ("GET", "/contacts/find_by_external_id/u", None),
    ("GET", "/contacts/CID", None),
    ("PUT", "/contacts/CID", {"name": "x"}),
    ("DELETE", "/contacts/CID", None),
    ("GET", "/visitors?user_id=v", None),
    ("PUT", "/visitors", {"user_id": "v", "name": "x"}),
    ("POST", "/visitors/convert", {"type": "lead", "visitor": {"user_id": "v"}}),
]


async def _state(h: Any) -> tuple[Any, ...]:
    async with h.store.db.read() as conn:
        contacts = await conn.fetch_all("SELECT id, name, role, external_id FROM contacts ORDER BY id")
        summaries = await conn.fetch_one("SELECT COUNT(*) AS n FROM event_summaries")
    return (await h.event_count(), [tuple(r) for r in contacts], summaries["n"] if summaries else 0)


async def _send(h: Any, method: str, path: str, body: Any, headers: dict[str, str], raw: bytes | None = None):
    content = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    return await h.client.request(method, path, content=content, headers=headers)


@pytest.mark.parametrize("method, path, body", REST_ENDPOINTS, ids=[f"{m} {p}" for m, p, _ in REST_ENDPOINTS])
async def test_error_shape_and_nothing_stored(harness, method, path, body):
    h = harness
    user = await h.store.create_contact(h.workspace, "user", external_id="u")
    path = path.replace("CID", user.id)
    before = await _state(h)
    cases: list[tuple[dict[str, str], bytes | None, int, str]] = [
        ({}, None, 401, "unauthorized"),
        ({"Authorization": "Bearer nope"}, None, 401, "unauthorized"),
        ({"Authorization": h.workspace.access_token}, None, 401, "unauthorized"),  # no scheme
        ({**h.auth, "Intercom-Version": "9.9"}, None, 400, "intercom_version_invalid"),
    ]
    if body is not None:
        cases += [(h.auth, b"{not json", 400, "parameter_invalid"),
                  (h.auth, b"[1, 2]", 400, "parameter_invalid"),
                  (h.auth, b"", 400, "parameter_invalid")]
    for headers, raw, status, code in cases:
        r = await _send(h, method, path, body, {"content-type": "application/json", **headers}, raw)
        assert r.status_code == status, (headers, raw, r.text)
        assert r.headers["content-type"].startswith("application/json")
        data = r.json()
        assert data["type"] == "error.list" and isinstance(data["request_id"], str)
        assert data["errors"] and data["errors"][0]["code"] == code and data["errors"][0]["message"]
        assert ("X-RateLimit-Limit" in r.headers) == (status != 401)
    assert await _state(h) == before


@pytest.mark.parametrize("version", [None, "1.0", "2.14", "2.17", "Unstable", "Preview"])
async def test_any_valid_intercom_version_or_none(harness, version):
    headers = {**harness.auth, **({"Intercom-Version": version} if version else {})}
    r = await harness.client.get("/contacts", headers=headers)
    assert r.status_code == 200 and r.headers["X-RateLimit-Limit"] == "1000"


@pytest.mark.parametrize("method, path", [("PATCH", "/contacts"), ("DELETE", "/events"), ("GET", "/contacts/search"),
                                          ("GET", "/nowhere")])
async def test_unknown_route_or_method_is_a_404_error_list(harness, method, path):
    r = await harness.client.request(method, path, headers=harness.auth)
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "not_found"
