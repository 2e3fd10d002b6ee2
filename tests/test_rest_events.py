"""REST data events in Intercom's shapes: ``POST /events`` (202, empty body) and ``GET /events`` (list,
pagination, summary). See docs/api.md"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

DAY = 86400
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$")


async def make_user(h: Any, user_id: str = "314159", email: str = "frodo@example.com") -> Any:
    return await h.store.create_contact(h.workspace, "user", external_id=user_id, email=email)


async def send(h: Any, body: Any, **headers: str) -> httpx.Response:
    return await h.client.post("/events", content=json.dumps(body),
                               headers={**h.auth, "content-type": "application/json", **headers})


async def list_events(h: Any, **params: Any) -> httpx.Response:
    return await h.client.get("/events", params={"type": "user", **params}, headers=h.auth)


def assert_error(r: httpx.Response, status: int, code: str, field: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["type"] == "error.list" and body["request_id"]
    assert body["errors"][0]["code"] == code, body
    assert body["errors"][0]["message"]
    if field is not None:
        assert body["errors"][0].get("field") == field, body
    return dict(body)


def iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


# ------------------------------------------------------------------ POST /events
async def test_post_event_answers_202_with_an_empty_body_and_stores_it(harness):
    h = harness
    user = await make_user(h)
    created = int(time.time()) - 60
    r = await send(h, {"event_name": "invited-friend", "created_at": created, "user_id": "314159",
                       "metadata": {"invitee_email": "pi@example.org", "invite_code": "ADDAFRIEND"}})
    assert r.status_code == 202
    assert r.content == b""
    assert r.headers["x-trailmark-event-status"] == "accepted"
    assert "x-trailmark-dropped-metadata" not in r.headers
    [ev] = await h.store.events_for(h.workspace, user, limit=10)
    assert (ev.event_name, ev.created_at, ev.source) == ("invited-friend", created, "rest")
    assert ev.metadata == {"invitee_email": "pi@example.org", "invite_code": "ADDAFRIEND"}
    assert ev.metadata_types == {"invitee_email": "string", "invite_code": "string"}


@pytest.mark.parametrize("ident", [{"user_id": "314159"}, {"user_id": 314159}, {"email": "FRODO@example.com"},
                                   "id"], ids=["user_id", "numeric-user_id", "email", "contact-id"])
async def test_post_event_finds_the_contact_by_any_identifier(harness, ident):
    h = harness
    user = await make_user(h)
    ident = {"id": user.id} if ident == "id" else ident
    r = await send(h, {"event_name": "placed-order", **ident})
    assert r.status_code == 202, r.text
    assert len(await h.store.events_for(h.workspace, user, limit=10)) == 1


async def test_post_event_for_a_lead_by_its_id(harness):
    h = harness
    lead = await h.store.create_contact(h.workspace, "lead", email="lead@example.com")
    r = await send(h, {"event_name": "asked-question", "id": lead.id})
    assert r.status_code == 202
    [ev] = await h.store.events_for(h.workspace, lead, limit=10)
    assert ev.role == "lead"


async def test_created_at_back_fills_and_defaults_to_now(harness):
    h = harness
    user = await make_user(h)
    old = int(time.time()) - 30 * DAY
    before = int(time.time())
    assert (await send(h, {"event_name": "signed-up", "user_id": "314159", "created_at": old})).status_code == 202
    assert (await send(h, {"event_name": "logged-in", "user_id": "314159"})).status_code == 202
    after = int(time.time())
    events = {e.event_name: e.created_at for e in await h.store.events_for(h.workspace, user, limit=10)}
    assert events["signed-up"] == old
    assert before <= events["logged-in"] <= after


async def test_same_contact_name_and_created_at_is_stored_once(harness):
    h = harness
    user = await make_user(h)
    body = {"event_name": "invited-friend", "created_at": 1700000000, "user_id": "314159"}
    first, second = await send(h, body), await send(h, {**body, "event_name": "Invited.Friend"})
    assert first.status_code == second.status_code == 202
    assert second.content == b""
    assert (first.headers["x-trailmark-event-status"], second.headers["x-trailmark-event-status"]) == \
        ("accepted", "duplicate")
    # Another second or another contact is another event.
    await send(h, {**body, "created_at": 1700000001})
    other = await make_user(h, "271828", "sam@example.com")
    await send(h, {**body, "user_id": "271828"})
    assert len(await h.store.events_for(h.workspace, user, limit=10)) == 2
    assert len(await h.store.events_for(h.workspace, other, limit=10)) == 1
    assert (await h.store.event_name(h.workspace, "invited-friend")).event_count == 3


async def test_dropped_metadata_is_reported_in_a_header_and_counted(harness):
    h = harness
    await make_user(h)
    r = await send(h, {"event_name": "placed-order", "user_id": "314159",
                       "metadata": {"price": {"amount": 34999, "currency": "eur"}, "a.b": 1, "flag": True}})
    assert r.status_code == 202 and r.content == b""
    dropped = json.loads(r.headers["x-trailmark-dropped-metadata"])
    assert [d["key"] for d in dropped] == ["a.b", "flag"]
    name = await h.store.event_name(h.workspace, "placed-order")
    assert name.dropped_metadata_count == 1
    assert {d["key"] for d in await h.store.metadata_drops(h.workspace, name.id)} == {"a.b", "flag"}


async def test_strict_workspace_refuses_bad_metadata_over_rest(make_harness):
    async with make_harness(strict_metadata=True) as h:
        await make_user(h)
        r = await send(h, {"event_name": "placed-order", "user_id": "314159", "metadata": {"a.b": 1}})
        assert_error(r, 422, "data_invalid", "metadata.a.b")
        assert await h.event_count() == 0


async def test_unknown_contact_is_404_user_not_found(harness):
    h = harness
    await make_user(h)
    for ident in ({"user_id": "nobody"}, {"email": "nobody@example.com"}, {"id": "000000000000000000000000"}):
        r = await send(h, {"event_name": "invited-friend", **ident})
        body = assert_error(r, 404, "not_found")
        assert body["errors"][0]["message"] == "User Not Found"
    assert await h.event_count() == 0
    assert await h.store.event_names(h.workspace) == []  # events never create contacts, nor names


async def test_a_user_of_another_workspace_is_not_found(harness):
    h = harness
    other = await h.store.create_workspace("Other")
    await h.store.create_contact(other, "user", external_id="314159")
    assert_error(await send(h, {"event_name": "x", "user_id": "314159"}), 404, "not_found")
    assert await h.store.count_events(other) == 0


BAD_BODIES = [
    ("no_identifier", {"event_name": "x"}, "parameter_not_found", "user_id"),
    ("null_identifiers", {"event_name": "x", "user_id": None, "email": None}, "parameter_not_found", "user_id"),
    ("no_event_name", {"user_id": "314159"}, "parameter_not_found", "event_name"),
    ("null_event_name", {"user_id": "314159", "event_name": None}, "parameter_not_found", "event_name"),
    ("empty_event_name", {"user_id": "314159", "event_name": "  "}, "parameter_invalid", "event_name"),
    ("numeric_event_name", {"user_id": "314159", "event_name": 42}, "parameter_invalid", "event_name"),
    ("list_event_name", {"user_id": "314159", "event_name": ["x"]}, "parameter_invalid", "event_name"),
    ("long_event_name", {"user_id": "314159", "event_name": "e" * 256}, "parameter_invalid", "event_name"),
    ("user_id_list", {"event_name": "x", "user_id": ["314159"]}, "parameter_invalid", "user_id"),
    ("user_id_bool", {"event_name": "x", "user_id": True}, "parameter_invalid", "user_id"),
    ("user_id_empty", {"event_name": "x", "user_id": "  "}, "parameter_invalid", "user_id"),
    ("email_object", {"event_name": "x", "email": {"a": 1}}, "parameter_invalid", "email"),
    ("metadata_list", {"event_name": "x", "user_id": "314159", "metadata": [1]}, "parameter_invalid", "metadata"),
    ("metadata_string", {"event_name": "x", "user_id": "314159", "metadata": "{}"}, "parameter_invalid", "metadata"),
    ("created_at_ms", {"event_name": "x", "user_id": "314159", "created_at": int(time.time()) * 1000},
     "parameter_invalid", "created_at"),
    ("created_at_future", {"event_name": "x", "user_id": "314159", "created_at": int(time.time()) + 7 * DAY},
     "parameter_invalid", "created_at"),
    ("created_at_string", {"event_name": "x", "user_id": "314159", "created_at": "2024-01-01T00:00:00Z"},
     "parameter_invalid", "created_at"),
    ("created_at_numeric_string", {"event_name": "x", "user_id": "314159", "created_at": "1700000000"},
     "parameter_invalid", "created_at"),
    ("created_at_bool", {"event_name": "x", "user_id": "314159", "created_at": True},
     "parameter_invalid", "created_at"),
    ("created_at_negative", {"event_name": "x", "user_id": "314159", "created_at": -1},
     "parameter_invalid", "created_at"),
]


@pytest.mark.parametrize(("body", "code", "field"), [b[1:] for b in BAD_BODIES], ids=[b[0] for b in BAD_BODIES])
async def test_bad_post_is_400_and_stores_nothing(harness, body, code, field):
    h = harness
    await make_user(h)
    assert_error(await send(h, body), 400, code, field)
    assert await h.event_count() == 0
    assert await h.store.event_names(h.workspace) == []


async def test_created_at_in_milliseconds_says_so(harness):
    h = harness
    await make_user(h)
    r = await send(h, {"event_name": "x", "user_id": "314159", "created_at": int(time.time()) * 1000})
    assert "milliseconds" in r.json()["errors"][0]["message"]


@pytest.mark.parametrize("authorization", [None, "", "Bearer", "Bearer ", "Bearer wrong-token", "Basic dXNlcjpwYXNz",
                                           "Token {token}", "{token}"],
                         ids=["absent", "empty", "scheme-only", "blank-token", "wrong-token", "basic", "token-scheme",
                              "bare-token"])
async def test_missing_or_bad_token_is_401(harness, authorization):
    h = harness
    await make_user(h)
    headers = {} if authorization is None else {
        "Authorization": authorization.format(token=h.workspace.access_token)}
    body = json.dumps({"event_name": "x", "user_id": "314159"})
    r = await h.client.post("/events", content=body, headers=headers)
    err = assert_error(r, 401, "unauthorized")
    assert err["errors"][0]["message"] == "Access Token Invalid"
    assert_error(await h.client.get("/events", params={"type": "user", "user_id": "314159"}, headers=headers),
                 401, "unauthorized")
    assert await h.event_count() == 0


async def test_another_workspaces_token_cannot_write_here(harness):
    h = harness
    await make_user(h)
    other = await h.store.create_workspace("Other")
    r = await h.client.post("/events", content=json.dumps({"event_name": "x", "user_id": "314159"}),
                            headers={"Authorization": f"Bearer {other.access_token}"})
    assert_error(r, 404, "not_found")  # the user does not exist in the token's workspace
    assert await h.event_count() == 0


@pytest.mark.parametrize("version", [None, "2.14", "Unstable", "Preview", "1.4", "2.0", "2.17"])
async def test_intercom_version_header_is_accepted(harness, version):
    h = harness
    await make_user(h)
    headers = {} if version is None else {"Intercom-Version": version}
    assert (await send(h, {"event_name": "x", "user_id": "314159"}, **headers)).status_code == 202
    assert (await h.client.get("/events", params={"type": "user", "user_id": "314159"},
                               headers={**h.auth, **headers})).status_code == 200


@pytest.mark.parametrize("version", ["bogus", "3.0", "2.18", "1.5", "", "unstable-ish"])
async def test_bogus_intercom_version_is_400(harness, version):
    h = harness
    await make_user(h)
    r = await send(h, {"event_name": "x", "user_id": "314159"}, **{"Intercom-Version": version})
    assert_error(r, 400, "intercom_version_invalid", "Intercom-Version")
    assert await h.event_count() == 0


# ------------------------------------------------------------------ GET /events
async def test_list_shape_newest_first(harness):
    h = harness
    user = await make_user(h)
    now = int(time.time())
    for name, age in (("first", 300), ("second", 200), ("third", 100)):
        await send(h, {"event_name": name, "user_id": "314159", "created_at": now - age, "metadata": {"n": age}})
    r = await list_events(h, user_id="314159")
    assert r.status_code == 200
    body = r.json()
    assert body["type"] == "event.list"
    assert [e["event_name"] for e in body["events"]] == ["third", "second", "first"]
    ev = body["events"][0]
    assert ev == {"type": "event", "id": ev["id"], "event_name": "third", "created_at": now - 100,
                  "user_id": "314159", "intercom_user_id": user.id, "email": "frodo@example.com",
                  "metadata": {"n": 100}}
    assert isinstance(ev["id"], str) and ev["id"]
    assert len({e["id"] for e in body["events"]}) == 3
    assert "next" not in body["pages"]  # one page only
    assert body["pages"]["since"].startswith("http://testserver/events?")


async def test_pagination_follows_next_until_exhausted_without_gaps_or_duplicates(harness):
    h = harness
    await make_user(h)
    now = int(time.time())
    # Seven events, four of them in the same second and two in another: ties are broken by id.
    ages = [500, 400, 400, 400, 400, 100, 100]
    for i, age in enumerate(ages):
        r = await send(h, {"event_name": f"ev-{i}", "user_id": "314159", "created_at": now - age})
        assert r.status_code == 202
    expected = [f"ev-{i}" for i in (6, 5, 4, 3, 2, 1, 0)]  # newest first; same second: last stored first

    r = await list_events(h, user_id="314159", per_page=3)
    pages, seen = 0, []
    while True:
        assert r.status_code == 200, r.text
        body = r.json()
        pages += 1
        assert len(body["events"]) <= 3
        seen += [e["event_name"] for e in body["events"]]
        nxt = body["pages"].get("next")
        if nxt is None:
            break
        assert nxt.startswith("http://testserver/events?") and "before=" in nxt and "user_id=314159" in nxt
        r = await h.client.get(nxt, headers=h.auth)
        assert pages < 10
    assert seen == expected
    assert pages == 3


async def test_per_page_equal_to_the_count_gives_no_next_page(harness):
    h = harness
    await make_user(h)
    now = int(time.time())
    for i in range(3):
        await send(h, {"event_name": f"ev-{i}", "user_id": "314159", "created_at": now - i})
    body = (await list_events(h, user_id="314159", per_page=3)).json()
    assert len(body["events"]) == 3 and "next" not in body["pages"]


async def test_since_link_lists_only_newer_events(harness):
    h = harness
    await make_user(h)
    now = int(time.time())
    await send(h, {"event_name": "old", "user_id": "314159", "created_at": now - 100})
    body = (await list_events(h, user_id="314159")).json()
    since = body["pages"]["since"]
    assert f"since={(now - 100) * 1000 + 1}" in since

    assert (await h.client.get(since, headers=h.auth)).json()["events"] == []
    await send(h, {"event_name": "new", "user_id": "314159", "created_at": now - 50})
    newer = (await h.client.get(since, headers=h.auth)).json()
    assert [e["event_name"] for e in newer["events"]] == ["new"]


@pytest.mark.parametrize("param", ["user_id", "filter[user_id]"])
async def test_user_id_and_its_filter_alias(harness, param):
    h = harness
    await make_user(h)
    await send(h, {"event_name": "x", "user_id": "314159"})
    r = await h.client.get("/events", params={"type": "user", param: "314159"}, headers=h.auth)
    assert [e["event_name"] for e in r.json()["events"]] == ["x"]


async def test_filter_as_a_json_object_as_the_node_sdk_sends_it(harness):
    """intercom-client 7.x (Node) ``unstable.dataEvents.lisDataEvents({filter: {user_id}, type: "user"})``
    sends ``GET /events?filter={"user_id":"…"}&type=user`` (tests/test_node_sdks.py runs the SDK itself)."""
    h = harness
    user = await make_user(h, email="a+b@example.com")
    await send(h, {"event_name": "x", "user_id": "314159"})
    for ident in ({"user_id": "314159"}, {"user_id": 314159}, {"email": "a+b@example.com"},
                  {"intercom_user_id": user.id}):
        r = await h.client.get("/events", params={"filter": json.dumps(ident), "type": "user"}, headers=h.auth)
        assert r.status_code == 200, (ident, r.text)
        assert [(e["event_name"], e["intercom_user_id"]) for e in r.json()["events"]] == [("x", user.id)]
    r = await h.client.get("/events", params={"filter": json.dumps({"user_id": "314159"}), "type": "user",
                                              "summary": "true"}, headers=h.auth)
    assert r.json()["type"] == "event.summary" and r.json()["events"][0]["count"] == 1
    # Its pages links name the contact with plain parameters.
    r = await h.client.get("/events", params={"filter": '{"user_id": "314159"}', "type": "user"}, headers=h.auth)
    assert "user_id=314159" in r.json()["pages"]["since"] and "filter" not in r.json()["pages"]["since"]
    # A plain parameter wins over the filter; a filter that is not a JSON object is a 400, not a 500.
    r = await h.client.get("/events", params={"user_id": "314159", "filter": '{"user_id": "nobody"}',
                                              "type": "user"}, headers=h.auth)
    assert r.status_code == 200, r.text
    for bad in ("{not json", "[1]", '"314159"', "null"):
        assert_error(await list_events(h, filter=bad), 400, "parameter_invalid", "filter")
    assert_error(await list_events(h, filter='{"user_id": {"a": 1}}'), 400, "parameter_invalid", "filter.user_id")
    assert_error(await list_events(h, filter='{"user_id": true}'), 400, "parameter_invalid", "filter.user_id")
    assert_error(await list_events(h, filter="{}"), 400, "parameter_not_found", "user_id")
    assert_error(await list_events(h, filter='{"user_id": "nobody"}'), 404, "not_found")
    assert_error(await list_events(h, filter='{"user_id": "a\\u0000b"}'), 400, "parameter_invalid")


@pytest.mark.parametrize("param", ["email", "filter[email]"])
async def test_email_lookup(harness, param):
    h = harness
    await make_user(h, email="a+b@example.com")
    await send(h, {"event_name": "x", "email": "a+b@example.com"})
    r = await h.client.get("/events", params={"type": "user", param: "a+b@example.com"}, headers=h.auth)
    assert r.status_code == 200, r.text
    assert [e["email"] for e in r.json()["events"]] == ["a+b@example.com"]


async def test_a_visitors_events_by_intercom_user_id_and_by_visitor_id(harness):
    h = harness
    me = await h.visitor()
    r = await h.track(me["session"], {"id": "v1", "event_name": "viewed-pricing"})
    assert r.json()["results"][0]["status"] == "accepted"
    for params in ({"intercom_user_id": me["contact"]["id"]}, {"filter[intercom_user_id]": me["contact"]["id"]},
                   {"user_id": me["visitor_id"]}):
        r = await list_events(h, **params)
        assert r.status_code == 200, (params, r.text)
        [ev] = r.json()["events"]
        assert ev["event_name"] == "viewed-pricing"
        assert ev["intercom_user_id"] == me["contact"]["id"]
        assert ev["user_id"] == me["visitor_id"]  # Intercom's visitor objects carry the visitor id as user_id
        assert ev["email"] is None


async def test_rest_events_can_target_a_visitor_by_its_visitor_id(harness):
    h = harness
    me = await h.visitor()
    assert (await send(h, {"event_name": "server-side", "user_id": me["visitor_id"]})).status_code == 202
    [ev] = (await list_events(h, intercom_user_id=me["contact"]["id"])).json()["events"]
    assert ev["event_name"] == "server-side"


async def test_listing_shows_90_days_but_the_summary_counts_everything(harness):
    h = harness
    await make_user(h, email="frodo@example.com")
    now = int(time.time())
    ancient, recent, newest = now - 100 * DAY, now - 10 * DAY, now - 60
    for name, t in (("placed-order", ancient), ("placed-order", recent), ("viewed-pricing", newest)):
        assert (await send(h, {"event_name": name, "user_id": "314159", "created_at": t})).status_code == 202

    listed = (await list_events(h, user_id="314159")).json()["events"]
    assert [(e["event_name"], e["created_at"]) for e in listed] == [("viewed-pricing", newest),
                                                                     ("placed-order", recent)]

    r = await list_events(h, user_id="314159", summary="true")
    assert r.status_code == 200
    summary = r.json()
    assert summary["type"] == "event.summary"
    assert (summary["user_id"], summary["email"]) == ("314159", "frodo@example.com")
    assert summary["intercom_user_id"] == (await h.store.find_contact(h.workspace, user_id="314159")).id
    by_name = {e["name"]: e for e in summary["events"]}
    assert by_name["placed-order"] == {"name": "placed-order", "first": iso(ancient), "last": iso(recent),
                                       "count": 2}  # no description: left out (Intercom types it a string)
    assert by_name["viewed-pricing"]["count"] == 1
    assert [e["name"] for e in summary["events"]] == ["viewed-pricing", "placed-order"]  # most recent first
    assert all(ISO.match(e["first"]) and ISO.match(e["last"]) for e in summary["events"])


async def test_summary_false_is_a_list(harness):
    h = harness
    await make_user(h)
    assert (await list_events(h, user_id="314159", summary="false")).json()["type"] == "event.list"


async def test_summary_carries_the_event_description(harness):
    h = harness
    await make_user(h)
    await send(h, {"event_name": "placed-order", "user_id": "314159"})
    await h.store.set_event_description(h.workspace, "placed-order", "A customer placed an order")
    [ev] = (await list_events(h, user_id="314159", summary="true")).json()["events"]
    assert ev["description"] == "A customer placed an order"


BAD_LISTS = [
    ("no_type", {"user_id": "314159", "type": None}, 400, "parameter_invalid"),
    ("type_company", {"user_id": "314159", "type": "company"}, 400, "parameter_invalid"),
    ("no_identifier", {}, 400, "parameter_not_found"),
    ("empty_identifier", {"user_id": ""}, 400, "parameter_not_found"),
    ("unknown_user", {"user_id": "nobody"}, 404, "not_found"),
    ("unknown_email", {"email": "nobody@example.com"}, 404, "not_found"),
    ("unknown_contact_id", {"intercom_user_id": "nope"}, 404, "not_found"),
    ("per_page_zero", {"user_id": "314159", "per_page": 0}, 400, "parameter_invalid"),
    ("per_page_too_big", {"user_id": "314159", "per_page": 251}, 400, "parameter_invalid"),
    ("per_page_text", {"user_id": "314159", "per_page": "ten"}, 400, "parameter_invalid"),
    ("before_text", {"user_id": "314159", "before": "yesterday"}, 400, "parameter_invalid"),
    ("since_text", {"user_id": "314159", "since": "1.5"}, 400, "parameter_invalid"),
    ("before_beyond_bigint", {"user_id": "314159", "before": 10**30}, 400, "parameter_invalid"),
    ("since_beyond_bigint", {"user_id": "314159", "since": 10**30}, 400, "parameter_invalid"),
    ("before_id_beyond_bigint", {"user_id": "314159", "before": 1, "before_id": 10**30}, 400, "parameter_invalid"),
]


@pytest.mark.parametrize(("params", "status", "code"), [b[1:] for b in BAD_LISTS], ids=[b[0] for b in BAD_LISTS])
async def test_bad_list_requests(harness, params, status, code):
    h = harness
    await make_user(h)
    query = {"type": "user", **params}
    query = {k: v for k, v in query.items() if v is not None}
    r = await h.client.get("/events", params=query, headers=h.auth)
    assert_error(r, status, code)
