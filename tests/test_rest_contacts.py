"""REST contacts and visitors in Intercom's shapes (docs/api.md): create, get,
update, delete, list, search, find by external id, merge; visitors get, update, convert."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from trailmark.store.models import AppendRequest, NewEvent

DAY = 86400


async def call(h: Any, method: str, path: str, body: Any = None, **params: Any) -> httpx.Response:
    content = None if body is None else json.dumps(body)
    return await h.client.request(method, path, content=content, params=params or None,
                                  headers={**h.auth, "content-type": "application/json"})


async def create(h: Any, **body: Any) -> dict[str, Any]:
    r = await call(h, "POST", "/contacts", body)
    assert r.status_code == 200, r.text
    return dict(r.json())


def assert_error(r: httpx.Response, status: int, code: str, field: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["type"] == "error.list" and body["request_id"]
    assert body["errors"][0]["code"] == code, body
    if field is not None:
        assert body["errors"][0].get("field") == field, body
    return dict(body)


async def search(h: Any, query: Any, **pagination: Any) -> httpx.Response:
    body: dict[str, Any] = {"query": query}
    if pagination:
        body["pagination"] = pagination
    return await call(h, "POST", "/contacts/search", body)


def ids(r: httpx.Response) -> list[str]:
    assert r.status_code == 200, r.text
    return [c["external_id"] or c["email"] for c in r.json()["data"]]


async def backdate(h: Any, contact_id: str, **columns: int) -> None:
    """Set timestamps directly (the API stamps created_at itself)."""
    async def job(conn: Any) -> None:
        sets = ", ".join(f"{k} = ?" for k in columns)
        await conn.execute(f"UPDATE contacts SET {sets} WHERE id = ?", (*columns.values(), contact_id))
    await h.store.db.write(job)


# ---------------------------------------------------------------- create / get
async def test_create_user_returns_intercoms_contact_object(harness):
    c = await create(harness, external_id="u-1", email="Ada@Example.com", name="Ada", phone="+44 1",
                     avatar="https://example.com/a.png", signed_up_at=1_700_000_000, owner_id=7,
                     unsubscribed_from_emails=True, custom_attributes={"plan": "pro", "seats": 3, "vip": True})
    assert c["type"] == "contact" and c["role"] == "user" and len(c["id"]) == 24
    assert (c["external_id"], c["email"], c["name"]) == ("u-1", "Ada@Example.com", "Ada")
    assert c["email_domain"] == "Example.com"
    # Intercom renders the avatar as an object (it is set as a URL string).
    assert c["avatar"] == {"type": "avatar", "image_url": "https://example.com/a.png"}
    assert (c["owner_id"], c["unsubscribed_from_emails"]) == (7, True)
    assert c["signed_up_at"] == 1_700_000_000 and c["custom_attributes"] == {"plan": "pro", "seats": 3, "vip": True}
    assert c["tags"]["type"] == "list" and c["location"]["type"] == "location"
    got = await call(harness, "GET", f"/contacts/{c['id']}")
    assert got.status_code == 200 and got.json() == c


@pytest.mark.parametrize("body", [{"email": "lead@example.com", "role": "lead"}, {"role": "lead"}])
async def test_create_lead(harness, body):
    c = await create(harness, **body)
    assert c["role"] == "lead" and c["signed_up_at"] is None


async def test_create_with_email_only_is_a_user(harness):
    c = await create(harness, email="joebloggs@intercom.io")
    assert c["role"] == "user" and c["external_id"] is None


@pytest.mark.parametrize("body, status, code, field", [
    ({}, 400, "parameter_not_found", "email"),
    ({"name": "No identifier"}, 400, "parameter_not_found", "email"),
    ({"role": "visitor"}, 400, "parameter_invalid", "role"),
    ({"email": "not-an-email"}, 400, "parameter_invalid", "email"),
    ({"external_id": "undefined"}, 400, "parameter_invalid", "external_id"),
    ({"external_id": ""}, 400, "parameter_invalid", "external_id"),
    ({"external_id": ["a"]}, 400, "parameter_invalid", "external_id"),
    ({"email": "a@b.co", "signed_up_at": "yesterday"}, 400, "parameter_invalid", "signed_up_at"),
    ({"email": "a@b.co", "owner_id": "7"}, 400, "parameter_invalid", "owner_id"),
    ({"email": "a@b.co", "unsubscribed_from_emails": "yes"}, 400, "parameter_invalid", "unsubscribed_from_emails"),
    ({"email": "a@b.co", "custom_attributes": {"nested": {"a": 1}}}, 400, "parameter_invalid",
     "custom_attributes.nested"),
    ({"email": "a@b.co", "custom_attributes": ["x"]}, 400, "parameter_invalid", "custom_attributes"),
    ({"email": "a@b.co", "name": "x" * 256}, 400, "parameter_invalid", "name"),
])
async def test_create_validation(harness, body, status, code, field):
    r = await call(harness, "POST", "/contacts", body)
    assert_error(r, status, code, field)
    assert (await call(harness, "GET", "/contacts")).json()["total_count"] == 0


async def test_duplicate_external_id_or_user_email_is_409(harness):
    first = await create(harness, external_id="dup", email="dup@example.com")
    r = await call(harness, "POST", "/contacts", {"external_id": "dup"})
    body = assert_error(r, 409, "conflict", "external_id")
    assert first["id"] in body["errors"][0]["message"]
    assert_error(await call(harness, "POST", "/contacts", {"email": "DUP@example.com"}), 409, "conflict", "email")
    # A lead may share a user's email: that is what a merge later resolves.
    lead = await create(harness, role="lead", email="dup@example.com")
    assert lead["role"] == "lead"
    assert (await call(harness, "GET", "/contacts")).json()["total_count"] == 2


async def test_get_unknown_visitor_or_merged_contact_is_404(harness):
    h = harness
    assert_error(await call(h, "GET", "/contacts/nope"), 404, "not_found")
    me = await h.visitor()
    assert_error(await call(h, "GET", f"/contacts/{me['contact']['id']}"), 404, "not_found")


async def test_find_by_external_id_users_only(harness):
    user = await create(harness, external_id="ext-9")
    r = await call(harness, "GET", "/contacts/find_by_external_id/ext-9")
    assert r.status_code == 200 and r.json()["id"] == user["id"]
    await create(harness, role="lead", external_id="lead-ext")
    assert_error(await call(harness, "GET", "/contacts/find_by_external_id/lead-ext"), 404, "not_found")
    assert_error(await call(harness, "GET", "/contacts/find_by_external_id/missing"), 404, "not_found")


# ---------------------------------------------------------------- update
async def test_update_sets_clears_and_merges_custom_attributes(harness):
    c = await create(harness, external_id="u-2", name="Old", phone="1", custom_attributes={"a": 1, "b": "x"})
    r = await call(harness, "PUT", f"/contacts/{c['id']}",
                   {"name": "New", "phone": None, "email": "new@example.com",
                    "custom_attributes": {"b": "y", "c": None}})
    assert r.status_code == 200, r.text
    u = r.json()
    assert (u["name"], u["phone"], u["email"]) == ("New", None, "new@example.com")
    assert u["custom_attributes"] == {"a": 1, "b": "y", "c": None}
    assert u["external_id"] == "u-2" and u["updated_at"] >= c["updated_at"]
    again = await call(harness, "GET", f"/contacts/{c['id']}")
    assert again.json() == u


async def test_update_lead_to_user_but_never_back(harness):
    lead = await create(harness, role="lead", email="l@example.com")
    r = await call(harness, "PUT", f"/contacts/{lead['id']}", {"role": "user", "external_id": "promoted"})
    assert r.status_code == 200 and r.json()["role"] == "user" and r.json()["signed_up_at"]
    back = await call(harness, "PUT", f"/contacts/{lead['id']}", {"role": "lead"})
    assert_error(back, 400, "parameter_invalid", "role")


async def test_update_conflicts_and_errors(harness):
    a = await create(harness, external_id="a", email="a@example.com")
    b = await create(harness, external_id="b", email="b@example.com")
    path = f"/contacts/{b['id']}"
    assert_error(await call(harness, "PUT", path, {"external_id": "a"}), 409, "conflict", "external_id")
    assert_error(await call(harness, "PUT", path, {"email": "A@example.com"}), 409, "conflict", "email")
    # Sending its own values back is no conflict.
    same = await call(harness, "PUT", f"/contacts/{a['id']}", {"external_id": "a", "email": "a@example.com"})
    assert same.status_code == 200
    assert_error(await call(harness, "PUT", "/contacts/nope", {"name": "x"}), 404, "not_found")
    assert_error(await call(harness, "PUT", f"/contacts/{a['id']}", {"last_seen_at": -5}), 400, "parameter_invalid",
                 "last_seen_at")
    assert_error(await call(harness, "PUT", f"/contacts/{a['id']}", [1, 2]), 400, "parameter_invalid")


# ---------------------------------------------------------------- delete
async def test_delete_removes_contact_events_and_merged_leads(harness):
    h = harness
    user = await create(h, external_id="gone", email="gone@example.com")
    lead = await create(h, role="lead", email="lead@example.com")
    for cid, key in ((user["id"], "u"), (lead["id"], "l")):
        await h.store.append_events(AppendRequest(h.workspace.id, cid, "rest", [NewEvent(
            event_name="did-thing", created_at=int(time.time()), dedupe_key=key, metadata={}, metadata_types={})]))
    assert (await call(h, "POST", "/contacts/merge", {"from": lead["id"], "into": user["id"]})).status_code == 200
    assert (await h.store.event_name(h.workspace, "did-thing")).event_count == 2
    r = await call(h, "DELETE", f"/contacts/{user['id']}")
    assert r.status_code == 200
    assert r.json() == {"type": "contact", "id": user["id"], "external_id": "gone", "deleted": True}
    assert await h.event_count() == 0
    assert await h.store.get_contact(h.workspace, lead["id"]) is None  # not revived by ON DELETE SET NULL
    assert (await h.store.event_name(h.workspace, "did-thing")).event_count == 0
    assert_error(await call(h, "GET", f"/contacts/{user['id']}"), 404, "not_found")
    assert_error(await call(h, "DELETE", f"/contacts/{user['id']}"), 404, "not_found")
    # The external id is free again.
    assert (await create(h, external_id="gone"))["external_id"] == "gone"


# ---------------------------------------------------------------- list
async def test_list_pages_with_starting_after_until_exhausted(harness):
    h = harness
    made = [await create(h, external_id=f"p{i}") for i in range(7)]
    for i, c in enumerate(made):  # distinct created_at, plus a tie between p5 and p6
        await backdate(h, c["id"], created_at=1_700_000_000 + min(i, 5) * 10)
    await h.visitor()  # visitors are not contacts
    seen: list[str] = []
    cursor = None
    pages = []
    while True:
        params = {"per_page": 3, **({"starting_after": cursor} if cursor else {})}
        r = await call(h, "GET", "/contacts", **params)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["type"] == "list" and body["total_count"] == 7
        pages.append(body["pages"])
        seen += [c["external_id"] for c in body["data"]]
        nxt = body["pages"].get("next")
        if not nxt:
            break
        assert nxt["per_page"] == 3
        cursor = nxt["starting_after"]
    assert sorted(seen) == sorted(c["external_id"] for c in made) and len(seen) == 7
    assert seen[0] in ("p5", "p6") and seen[-1] == "p0"  # newest first
    assert [p["page"] for p in pages] == [1, 2, 3] and pages[0]["total_pages"] == 3
    assert pages[0]["type"] == "pages"


@pytest.mark.parametrize("params, field", [({"per_page": 0}, "per_page"), ({"per_page": 151}, "per_page"),
                                           ({"per_page": "ten"}, "per_page"),
                                           ({"starting_after": "not-a-cursor"}, "starting_after")])
async def test_list_bad_paging_is_400(harness, params, field):
    assert_error(await call(harness, "GET", "/contacts", **params), 400, "parameter_invalid", field)


async def test_list_and_get_hide_merged_away_leads(harness):
    h = harness
    user = await create(h, external_id="keeper")
    lead = await create(h, role="lead", email="x@example.com")
    r = await call(h, "POST", "/contacts/merge", {"from": lead["id"], "into": user["id"]})
    assert r.status_code == 200 and r.json()["id"] == user["id"] and r.json()["role"] == "user"
    assert [c["id"] for c in (await call(h, "GET", "/contacts")).json()["data"]] == [user["id"]]
    assert_error(await call(h, "GET", f"/contacts/{lead['id']}"), 404, "not_found")
    assert_error(await call(h, "PUT", f"/contacts/{lead['id']}", {"name": "x"}), 404, "not_found")


@pytest.mark.parametrize("body, status, code, field", [
    ({"from": "a"}, 400, "parameter_not_found", "into"),
    ({"from": 1, "into": "b"}, 400, "parameter_invalid", "from"),
    ({"from": "nope", "into": "nada"}, 404, "not_found", "from"),
])
async def test_merge_errors(harness, body, status, code, field):
    assert_error(await call(harness, "POST", "/contacts/merge", body), status, code, field)


async def test_merge_user_into_lead_is_invalid(harness):
    user = await create(harness, external_id="u")
    lead = await create(harness, role="lead")
    assert_error(await call(harness, "POST", "/contacts/merge", {"from": user["id"], "into": lead["id"]}),
                 400, "invalid_merge")


# ---------------------------------------------------------------- search
@pytest.fixture
async def people(harness):
    h = harness
    base = 1_700_000_000 // DAY * DAY  # a UTC midnight
    rows = [
        ("alice", "user", "alice@acme.com", base + 3600, {"plan": "pro", "seats": 10, "vip": True}),
        ("bob", "user", "bob@ACME.com", base + DAY + 60, {"plan": "free", "seats": 1}),
        ("carol", "lead", "carol@other.org", base + 2 * DAY, {"plan": "pro_max", "vip": False}),
        ("dave", "user", None, base + 3 * DAY, {}),
    ]
    out = {}
    for ext, role, email, created, attrs in rows:
        body = {"role": role, "custom_attributes": attrs, **({"email": email} if email else {})}
        if role == "user":
            body["external_id"] = ext
        c = await create(h, **body)
        await backdate(h, c["id"], created_at=created, last_seen_at=created + 600)
        out[ext] = {**c, "created": created}
    return h, base, out


def names(r: httpx.Response, people: dict[str, Any]) -> set[str]:
    assert r.status_code == 200, r.text
    by_id = {v["id"]: k for k, v in people.items()}
    return {by_id[c["id"]] for c in r.json()["data"]}


@pytest.mark.parametrize("query, expected", [
    ({"field": "role", "operator": "=", "value": "lead"}, {"carol"}),
    ({"field": "role", "operator": "!=", "value": "lead"}, {"alice", "bob", "dave"}),
    ({"field": "external_id", "operator": "=", "value": "bob"}, {"bob"}),
    ({"field": "external_id", "operator": "IN", "value": ["alice", "dave", "zed"]}, {"alice", "dave"}),
    ({"field": "external_id", "operator": "NIN", "value": ["alice"]}, {"bob", "carol", "dave"}),
    ({"field": "email", "operator": "=", "value": "BOB@acme.com"}, {"bob"}),
    ({"field": "email", "operator": "~", "value": "acme"}, {"alice", "bob"}),
    ({"field": "email", "operator": "!~", "value": "acme"}, {"carol", "dave"}),
    ({"field": "email", "operator": "^", "value": "car"}, {"carol"}),
    ({"field": "email", "operator": "$", "value": ".org"}, {"carol"}),
    ({"field": "email", "operator": "=", "value": None}, {"dave"}),
    ({"field": "email", "operator": "!=", "value": None}, {"alice", "bob", "carol"}),
    ({"field": "email_domain", "operator": "=", "value": "acme.com"}, {"alice", "bob"}),
    ({"field": "custom_attributes.plan", "operator": "=", "value": "pro"}, {"alice"}),
    ({"field": "custom_attributes.plan", "operator": "^", "value": "pro"}, {"alice", "carol"}),
    ({"field": "custom_attributes.plan", "operator": "~", "value": "_"}, {"carol"}),  # LIKE wildcards escaped
    ({"field": "custom_attributes.seats", "operator": ">", "value": 5}, {"alice"}),
    ({"field": "custom_attributes.seats", "operator": "<", "value": 5}, {"bob"}),
    ({"field": "custom_attributes.seats", "operator": "IN", "value": [1, 10]}, {"alice", "bob"}),
    ({"field": "custom_attributes.vip", "operator": "=", "value": True}, {"alice"}),
    ({"field": "custom_attributes.vip", "operator": "!=", "value": True}, {"bob", "carol", "dave"}),
    ({"field": "custom_attributes.seats", "operator": "=", "value": None}, {"carol", "dave"}),
    ({"field": "custom_attributes.plan", "operator": "!=", "value": "pro"}, {"bob", "carol", "dave"}),
    ({"operator": "AND", "value": [{"field": "role", "operator": "=", "value": "user"},
                                   {"field": "email", "operator": "~", "value": "acme"}]}, {"alice", "bob"}),
    ({"operator": "OR", "value": [{"field": "external_id", "operator": "=", "value": "dave"},
                                  {"operator": "AND", "value": [
                                      {"field": "role", "operator": "=", "value": "lead"},
                                      {"field": "custom_attributes.vip", "operator": "=", "value": False}]}]},
     {"dave", "carol"}),
])
async def test_search_operators(people, query, expected):
    h, _, ppl = people
    assert names(await search(h, query), ppl) == expected


async def test_search_timestamps_match_by_day(people):
    h, base, ppl = people
    alice_time = ppl["alice"]["created"]  # day 0, 01:00
    # "> t" means from the day after t's day on; "< t" before t's day; "=" anywhere in t's day.
    assert names(await search(h, {"field": "created_at", "operator": ">", "value": alice_time}), ppl) == {
        "bob", "carol", "dave"}
    assert names(await search(h, {"field": "created_at", "operator": "<", "value": base + DAY + 5000}), ppl) == {
        "alice"}
    assert names(await search(h, {"field": "created_at", "operator": "=", "value": base + DAY + 99}), ppl) == {"bob"}
    assert names(await search(h, {"field": "created_at", "operator": "!=", "value": base}), ppl) == {
        "bob", "carol", "dave"}
    assert names(await search(h, {"field": "last_seen_at", "operator": "IN", "value": [base, base + 3 * DAY]}),
                 ppl) == {"alice", "dave"}
    ranged = {"operator": "AND", "value": [{"field": "created_at", "operator": ">", "value": base},
                                           {"field": "created_at", "operator": "<", "value": base + 3 * DAY}]}
    assert names(await search(h, ranged), ppl) == {"bob", "carol"}
    assert names(await search(h, {"field": "updated_at", "operator": ">", "value": base}), ppl) == set(ppl)
    assert names(await search(h, {"field": "id", "operator": "=", "value": ppl["carol"]["id"]}), ppl) == {"carol"}


async def test_search_paginates_with_the_same_cursor_shape(people):
    h, _, ppl = people
    query = {"field": "external_id", "operator": "!=", "value": "nobody"}
    first = await search(h, query, per_page=3)
    body = first.json()
    assert body["total_count"] == 4 and len(body["data"]) == 3 and body["pages"]["total_pages"] == 2
    second = await search(h, query, per_page=3, starting_after=body["pages"]["next"]["starting_after"])
    assert len(second.json()["data"]) == 1 and "next" not in second.json()["pages"]
    assert second.json()["pages"]["page"] == 2
    assert names(first, ppl) | names(second, ppl) == set(ppl)


async def test_search_survives_a_nul_in_another_contacts_attributes(people):
    h, _, ppl = people
    # The Messenger stores attributes as JSON text, where a NUL is the escape "\u0000" (jsonb refuses it).
    await h.visitor(user={"email": "odd@example.com", "plan": "pro\u0000x", "note": "\\u0000"})
    r = await search(h, {"field": "custom_attributes.plan", "operator": "^", "value": "pro"})
    assert r.status_code == 200 and len(r.json()["data"]) == 3  # alice, carol and the odd lead
    r = await search(h, {"field": "custom_attributes.plan", "operator": "=", "value": "pro"})
    # (SQLite's json_extract ends a string at its NUL, so there the odd lead matches too.)
    assert r.status_code == 200 and ppl["alice"]["id"] in {c["id"] for c in r.json()["data"]}


def _filters(n: int) -> list[dict[str, Any]]:
    return [{"field": "external_id", "operator": "=", "value": str(i)} for i in range(n)]


@pytest.mark.parametrize("body, field", [
    ({}, "query"),
    ({"query": "role = user"}, "query"),
    ({"query": {"field": "nickname", "operator": "=", "value": "x"}}, "query.field"),
    ({"query": {"field": "email", "operator": "LIKE", "value": "x"}}, "query.operator"),
    ({"query": {"field": "email", "operator": "="}}, "query.value"),
    ({"query": {"field": "email", "operator": ">", "value": "a"}}, "query.value"),
    ({"query": {"field": "created_at", "operator": "~", "value": 5}}, "query.value"),
    ({"query": {"field": "created_at", "operator": "=", "value": "yesterday"}}, "query.value"),
    ({"query": {"field": "role", "operator": "=", "value": "admin"}}, "query.value"),
    ({"query": {"field": "email", "operator": "IN", "value": "a@b.c"}}, "query.value"),
    ({"query": {"field": "email", "operator": "IN", "value": []}}, "query.value"),
    ({"query": {"field": "custom_attributes.x", "operator": "~", "value": 5}}, "query.value"),
    ({"query": {"field": "custom_attributes.x", "operator": "IN", "value": [1, "a"]}}, "query.value"),
    ({"query": {"field": "unsubscribed_from_emails", "operator": "=", "value": "yes"}}, "query.value"),
    ({"query": {"operator": "AND", "value": []}}, "query.value"),
    ({"query": {"operator": "AND", "value": _filters(16)}}, "query.value"),
    ({"query": {"operator": "OR", "value": [{"operator": "AND", "value": [
        {"operator": "OR", "value": _filters(2)}]}]}}, "query.value[0].value[0]"),
    ({"query": {"operator": "XOR", "value": _filters(2)}}, "query.field"),
    ({"query": _filters(1)[0], "pagination": {"per_page": 500}}, "pagination.per_page"),
    ({"query": _filters(1)[0], "pagination": {"starting_after": "???"}}, "pagination.starting_after"),
    ({"query": _filters(1)[0], "pagination": "next"}, "pagination"),
])
async def test_search_refuses_bad_queries_with_400(harness, body, field):
    r = await call(harness, "POST", "/contacts/search", body)
    assert r.status_code == 400, r.text
    assert r.json()["type"] == "error.list" and r.json()["errors"][0]["field"] == field, r.json()


async def test_search_accepts_15_filters_and_two_levels(harness):
    await create(harness, external_id="3")
    q = {"operator": "AND", "value": [{"operator": "OR", "value": _filters(15)}]}
    r = await search(harness, q)
    assert r.status_code == 200 and [c["external_id"] for c in r.json()["data"]] == ["3"]


# ---------------------------------------------------------------- visitors
async def test_get_visitor_by_user_id(harness):
    h = harness
    me = await h.visitor()
    r = await call(h, "GET", "/visitors", user_id=me["visitor_id"])
    assert r.status_code == 200
    v = r.json()
    assert (v["type"], v["id"], v["user_id"]) == ("visitor", me["contact"]["id"], me["visitor_id"])
    assert v["anonymous"] is True
    assert v["app_id"] == h.workspace.app_id and v["tags"] == {"type": "tag.list", "tags": []}
    assert_error(await call(h, "GET", "/visitors", user_id="nobody"), 404, "not_found", "user_id")
    assert_error(await call(h, "GET", "/visitors"), 400, "parameter_not_found", "user_id")


async def test_update_visitor_by_id_or_user_id(harness):
    h = harness
    me = await h.visitor()
    r = await call(h, "PUT", "/visitors", {"user_id": me["visitor_id"], "name": "Curious Cat",
                                             "custom_attributes": {"came_from": "ad"}})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Curious Cat" and r.json()["custom_attributes"] == {"came_from": "ad"}
    r = await call(h, "PUT", "/visitors", {"id": me["contact"]["id"], "custom_attributes": {"step": 2}})
    assert r.json()["custom_attributes"] == {"came_from": "ad", "step": 2} and r.json()["name"] == "Curious Cat"
    got = await call(h, "GET", "/visitors", user_id=me["visitor_id"])
    assert got.json()["custom_attributes"] == {"came_from": "ad", "step": 2}


@pytest.mark.parametrize("body, status, code, field", [
    ({"name": "x"}, 400, "parameter_not_found", "id"),
    ({"user_id": "nobody"}, 404, "not_found", "user_id"),
    ({"id": "nope"}, 404, "not_found", "id"),
    ({"user_id": {"a": 1}}, 400, "parameter_invalid", "user_id"),
    ({"user_id": "x", "custom_attributes": {"deep": [1]}}, 400, "parameter_invalid", "custom_attributes.deep"),
])
async def test_update_visitor_errors(harness, body, status, code, field):
    assert_error(await call(harness, "PUT", "/visitors", body), status, code, field)


async def test_a_lead_is_no_longer_a_visitor(harness):
    h = harness
    me = await h.visitor()
    r = await call(h, "POST", "/visitors/convert", {"type": "lead", "visitor": {"user_id": me["visitor_id"]}})
    assert r.status_code == 200 and r.json()["role"] == "lead" and r.json()["type"] == "contact"
    assert_error(await call(h, "PUT", "/visitors", {"user_id": me["visitor_id"], "name": "x"}), 404, "not_found")
    assert (await call(h, "GET", f"/contacts/{me['contact']['id']}")).json()["role"] == "lead"


@pytest.mark.parametrize("body, status, code, field", [
    ({"type": "customer", "visitor": {"user_id": "x"}}, 400, "parameter_invalid", "type"),
    ({"type": "lead"}, 400, "parameter_not_found", "visitor"),
    ({"type": "lead", "visitor": {"email": "a@b.co"}}, 400, "parameter_not_found", "visitor"),
    ({"type": "lead", "visitor": "abc"}, 400, "parameter_invalid", "visitor"),
    ({"type": "lead", "visitor": {"user_id": "nobody"}}, 404, "not_found", "visitor"),
    ({"type": "user", "visitor": {"user_id": "nobody"}}, 400, "parameter_not_found", "user"),
])
async def test_convert_visitor_errors(harness, body, status, code, field):
    assert_error(await call(harness, "POST", "/visitors/convert", body), status, code, field)
