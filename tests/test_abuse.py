"""Limits that can't be abused (the trust issue): new visitors per client address, new event names from
unverified browsers, per-event refusals in a browser batch.

Every test runs on each store backend (the ``store_url`` fixture behind ``harness``)."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx

from trailmark import cli, identity
from trailmark.admin import auth
from trailmark.visitor_limit import NewVisitorLimit


def from_address(h: Any, address: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=h.app, client=(address, 40000)),
                             base_url="http://testserver")


async def ping_from(client: httpx.AsyncClient, h: Any, **body: Any) -> httpx.Response:
    return await client.post("/messenger/web/ping", content=json.dumps({"app_id": h.workspace.app_id, **body}),
                             headers={"origin": "https://shop.example"})


# ------------------------------------------------------------------------------------------ new visitors
async def test_token_less_pings_create_a_bounded_number_of_visitors_per_address(harness: Any) -> None:
    """Trust finding: 934 contacts in 8 s from one client. New visitors are now counted per client address."""
    h = harness
    h.app.state.new_visitor_limit = NewVisitorLimit(5)
    async with from_address(h, "203.0.113.5") as flood, from_address(h, "198.51.100.7") as other:
        answers = [await ping_from(flood, h) for _ in range(8)]
        assert [r.status_code for r in answers] == [200] * 5 + [429] * 3
        refused = answers[-1]
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert refused.headers["access-control-allow-origin"] == "*"  # the shim can read the refusal
        body = refused.json()
        assert body["type"] == "error.list" and body["errors"][0]["code"] == "rate_limit_exceeded"
        # A visitor the address already has keeps working: only *new* visitors are limited.
        known = answers[0].json()
        again = await ping_from(flood, h, device=known["device"], session=known["session"])
        assert again.status_code == 200 and again.json()["visitor_id"] == known["visitor_id"]
        # Another address has its own budget.
        assert (await ping_from(other, h)).status_code == 200
    # The contact form (first contact) creates visitors too: the same budget applies.
    async with from_address(h, "203.0.113.5") as flood:
        r = await flood.post("/messenger/web/conversations", content=json.dumps(
            {"app_id": h.workspace.app_id, "email": "a@b.example", "message": "hi"}))
        assert r.status_code == 429
    assert sum((await h.store.admin_role_counts(h.workspace)).values()) == 6


# ------------------------------------------------------------------------------------------ new event names
def ev(key: str, name: str) -> dict[str, Any]:
    return {"id": key, "event_name": name}


async def track_from(client: httpx.AsyncClient, h: Any, session: str, *events: dict[str, Any]) -> dict[str, Any]:
    r = await client.post("/messenger/web/events", content=json.dumps(
        {"app_id": h.workspace.app_id, "session": session, "events": list(events)}))
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_anonymous_visitors_cannot_use_up_the_event_names(harness: Any) -> None:
    """Trust finding: with the public app_id alone, made-up names used up the 120 names and legitimate new
    names were refused from then on. New names from unverified browsers now have daily budgets per visitor
    (10) and per client address (30)."""
    h = harness
    made_up = iter(f"junk-{i:03d}" for i in range(1000))
    statuses: list[str] = []
    async with from_address(h, "203.0.113.66") as attacker:
        for _ in range(12):  # a fresh visitor for each 10 names: the address's budget still holds
            session = (await ping_from(attacker, h)).json()["session"]
            answer = await track_from(attacker, h, session, *(ev(f"k{name}", name) for name in
                                                               [next(made_up) for _ in range(12)]))
            statuses += [r["status"] for r in answer["results"]]
        refusal = answer["results"][0]
    assert statuses.count("accepted") == 30 and statuses.count("refused") == 12 * 12 - 30
    assert refusal["reason"] == "new event name 'junk-132' refused: at most 30 new names per address per day"
    assert len(await h.store.event_names(h.workspace)) == 30
    async with from_address(h, "198.51.100.20") as shopper:
        session = (await ping_from(shopper, h)).json()["session"]
        answer = await track_from(shopper, h, session, ev("c1", "checkout-complete"))
        assert answer["results"] == [{"id": "c1", "status": "accepted"}]


async def test_one_visitor_gets_ten_new_names_a_day_and_known_names_always_pass(harness: Any) -> None:
    h = harness
    me = await h.visitor()
    first = await h.track(me["session"], *(ev(f"a{i}", f"name-{i:02d}") for i in range(12)))
    assert [r["status"] for r in first.json()["results"]] == ["accepted"] * 10 + ["refused"] * 2
    assert first.json()["results"][10]["reason"] == ("new event name 'name-10' refused: at most 10 new names per "
                                                    "visitor per day")
    again = await h.track(me["session"], ev("b1", "name-00"), ev("b2", "brand-new"), ev("b3", "name-09"))
    assert [r["status"] for r in again.json()["results"]] == ["accepted", "refused", "accepted"]


async def test_verified_users_are_not_budgeted(make_harness: Any) -> None:
    async with make_harness(enforce_identity_verification=True) as h:
        proof = identity.user_hash(h.workspace.identity_secret, "u-1")
        me = await h.visitor(user={"user_id": "u-1", "user_hash": proof})
        r = await h.track(me["session"], *(ev(f"a{i}", f"feature-{i:02d}") for i in range(15)))
        assert {x["status"] for x in r.json()["results"]} == {"accepted"}
        # An anonymous visitor of the same workspace is budgeted.
        anon = await h.visitor()
        r = await h.track(anon["session"], *(ev(f"b{i}", f"anon-{i:02d}") for i in range(15)))
        assert [x["status"] for x in r.json()["results"]].count("accepted") == 10


async def test_the_names_browsers_may_create_can_be_listed(make_harness: Any) -> None:
    async with make_harness(browser_event_names=["signed-up", "upload-complete"]) as h:
        me = await h.visitor()
        r = await h.track(me["session"], ev("a", "signed-up"), ev("b", "made-up"))
        assert r.json()["results"] == [
            {"id": "a", "status": "accepted"},
            {"id": "b", "status": "refused",
             "reason": "event name 'made-up' is new and not among the names this workspace lets browsers create"}]
        # Your server (REST) creates any name; once it exists, browsers may track it.
        created = await h.client.post("/events", headers=h.auth, json={
            "event_name": "made-up", "created_at": 1_700_000_000, "id": me["contact"]["id"]})
        assert created.status_code == 202, created.text
        r = await h.track(me["session"], ev("c", "made-up"))
        assert r.json()["results"][0]["status"] == "accepted"


async def test_the_admin_lists_refused_names_with_counts_and_reasons(harness: Any) -> None:
    h = harness
    await h.store.update_workspace(h.workspace.id, browser_new_names_per_contact=1)
    me = await h.visitor()
    await h.track(me["session"], ev("a", "first-name"), ev("b", "second-name"))
    await h.track(me["session"], ev("c", "second-name"), ev("d", "<script>x</script>"))
    await h.store.create_teammate("ada@example.com", auth.hash_password("correct horse battery"))
    form = await h.client.get("/admin/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token
    await h.client.post("/admin/login", data={"csrf": token.group(1), "email": "ada@example.com",
                                               "password": "correct horse battery"})
    page = (await h.client.get("/admin/events")).text
    assert "Refused event names" in page
    rows = re.findall(r"<tr>\s*<td><code>(.*?)</code></td>\s*<td class=\"num\">(\d+)</td>.*?<td>(.*?)</td>\s*</tr>",
                      page.split('id="refused"')[1], re.S)
    assert {(name, count) for name, count, _ in rows} == {("second-name", "2"), ("&lt;script&gt;x&lt;/script&gt;", "1")}
    assert all("daily budget of new names" in why for _, _, why in rows)


async def test_cli_sets_the_budgets_and_the_names_browsers_may_create(store_url: str, tmp_path: Any,
                                                                       capsys: Any) -> None:
    made = await asyncio.to_thread(cli.main, ["workspace", "create", "--name", "Shop", "--database", store_url,
                                              "--json"])
    assert made == 0
    capsys.readouterr()
    names = tmp_path / "names.txt"
    names.write_text("# what the site tracks\nSigned-Up\nupload.complete  # dots become dashes\n\n")
    assert await asyncio.to_thread(cli.main, [
        "workspace", "set", "--database", store_url, "--browser-new-names-per-contact", "3",
        "--browser-new-names-per-address", "7", "--browser-event-names", "placed-order",
        "--browser-event-names-file", str(names), "--json"]) == 0
    settings = json.loads(capsys.readouterr().out)
    assert settings["browser_new_names_per_contact"] == 3 and settings["browser_new_names_per_address"] == 7
    assert settings["browser_event_names"] == ["placed-order", "signed-up", "upload-complete"]
    assert await asyncio.to_thread(cli.main, ["workspace", "set", "--database", store_url,
                                              "--browser-event-names", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["browser_event_names"] == []
