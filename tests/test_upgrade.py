"""Upgrades keep everything: databases written by v0.1.0, opened by the current code.

``tests/fixtures/v0.1.0/`` holds a SQLite file and a PostgreSQL dump made by v0.1.0's own code
(``tests/fixtures/make_v0_1_0_fixtures.py``, run once with a v0.1.0 checkout), and ``manifest.json``:
what v0.1.0 answered over HTTP for that data. Each test opens a copy (SQLite) or a restore into a fresh
schema (PostgreSQL) with the current code, which applies its migrations, and checks through public surfaces
only (REST with the stored access token, the Messenger with the stored signed tokens, Segment, Stripe, the
admin sign-in, the CLI): never internal columns, so schema changes and hashed tokens keep it valid.

The clock: the fixture's signed session token lives 7 days and ``GET /events`` lists 90 days of events, so
the tests run with ``time.time`` moved to an hour after the fixture was made (it still advances).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from trailmark.app import create_app
from trailmark.settings import Settings
from trailmark.store import SQLStore, open_store

from .backends import BACKENDS, POSTGRES_SKIP, POSTGRES_URL, fresh_postgres_url

FIXTURES = Path(__file__).parent / "fixtures" / "v0.1.0"
MANIFEST: dict[str, Any] = json.loads((FIXTURES / "manifest.json").read_text())
HOUR = 3600


# ------------------------------------------------------------------------------------------ restoring
async def restore_postgres_dump(url: str, dump: str, fixture_schema: str) -> None:
    """Load the plain-SQL dump into the (empty, existing) schema named in ``url``'s search_path."""
    import asyncpg

    schema = url.rsplit("search_path=", 1)[1]
    lines = [line for line in dump.splitlines()
             if not line.startswith("\\")  # psql meta-commands (\restrict): not SQL
             and line.strip() != f"CREATE SCHEMA {fixture_schema};"]  # fresh_postgres_url made it
    sql = re.sub(rf"\b{re.escape(fixture_schema)}\b", schema, "\n".join(lines))
    conn = await asyncpg.connect(POSTGRES_URL, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def v010_database(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of a fresh copy of the v0.1.0 fixture database of ``backend``."""
    if backend == "sqlite":
        path = tmp_path / "trailmark.db"
        shutil.copyfile(FIXTURES / "trailmark.db", path)
        yield str(path)
        return
    if POSTGRES_SKIP:
        pytest.skip(POSTGRES_SKIP)
    async with fresh_postgres_url() as url:
        await restore_postgres_dump(url, (FIXTURES / "postgres.sql").read_text(), MANIFEST["postgres"]["schema"])
        yield url


# ------------------------------------------------------------------------------------------ the harness
@dataclass
class Upgraded:
    """The current app on an upgraded v0.1.0 database, and what v0.1.0 answered for it."""

    manifest: dict[str, Any]
    store: SQLStore
    client: httpx.AsyncClient

    @property
    def acme(self) -> dict[str, Any]:
        return dict(self.manifest["workspaces"][0])

    @property
    def beta(self) -> dict[str, Any]:
        return dict(self.manifest["workspaces"][1])

    def auth(self, ws: dict[str, Any]) -> dict[str, str]:
        return {"Authorization": f"Bearer {ws['access_token']}"}

    async def listed(self, ws: dict[str, Any], path: str, **params: Any) -> list[dict[str, Any]]:
        """Every page of ``GET /contacts`` or of a ``GET /events`` list, as a REST client pages them."""
        items: list[dict[str, Any]] = []
        url: str | None = path
        query: dict[str, Any] | None = params
        while url is not None:
            r = await self.client.get(url, headers=self.auth(ws), params=query)
            assert r.status_code == 200, r.text
            body = r.json()
            if path == "/contacts":
                items += body["data"]
                nxt = body["pages"].get("next")
                url, query = (path, {**params, "starting_after": nxt["starting_after"]}) if nxt else (None, None)
            else:
                items += body["events"]
                url, query = body["pages"].get("next"), None
        return items

    async def timeline(self, ws: dict[str, Any], contact_id: str) -> list[dict[str, Any]]:
        events = await self.listed(ws, "/events", type="user", intercom_user_id=contact_id, per_page=4)
        return [{k: e[k] for k in ("id", "event_name", "created_at", "metadata", "intercom_user_id")} for e in events]

    async def ping(self, ws: dict[str, Any], body: dict[str, Any], origin: str | None = None) -> httpx.Response:
        headers = {"content-type": "text/plain"}
        origin = origin or ws["origin"]
        if origin:
            headers["Origin"] = origin
        return await self.client.post("/messenger/web/ping", content=json.dumps({"app_id": ws["app_id"], **body}),
                                      headers=headers)

    async def track(self, ws: dict[str, Any], session: str, *events: dict[str, Any]) -> httpx.Response:
        headers = {"content-type": "text/plain", **({"Origin": ws["origin"]} if ws["origin"] else {})}
        return await self.client.post("/messenger/web/events", headers=headers, content=json.dumps(
            {"app_id": ws["app_id"], "session": session, "events": list(events)}))


@pytest.fixture(params=BACKENDS)
async def upgraded(request: pytest.FixtureRequest, tmp_path: Path,
                   monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Upgraded]:
    manifest = MANIFEST[request.param]
    real_time = time.time
    offset = manifest["generated_at"] + HOUR - real_time()
    monkeypatch.setattr(time, "time", lambda: real_time() + offset)
    async with v010_database(request.param, tmp_path) as url:
        store = open_store(url)
        app = create_app(Settings(database_url=url, purge_interval_seconds=0), store=store)
        async with app.router.lifespan_context(app):  # opening the store applies the pending migrations
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                yield Upgraded(manifest, store, client)


def label(ws: dict[str, Any], name: str) -> str:
    return str(ws["labels"][name])


def user_hash(secret: str, identity: str) -> str:
    return hmac.new(secret.encode(), identity.encode(), hashlib.sha256).hexdigest()


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "no CSRF field on the page"
    return found.group(1)


# ------------------------------------------------------------------------------------------ contacts and events
async def test_every_contact_event_summary_and_merge_is_still_there(upgraded: Upgraded) -> None:
    u = upgraded
    for ws in u.manifest["workspaces"]:
        # GET /contacts with the stored access token: the same users and leads, page after page.
        listing = await u.listed(ws, "/contacts", per_page=5)
        assert [{k: c.get(k) for k in ("id", "role", "external_id", "email")} for c in listing] == \
            ws["contacts_listing"]
        live = {cid: c for cid, c in ws["contacts"].items() if c["merged_into"] is None}
        for role in ("user", "lead"):
            assert sum(1 for c in listing if c["role"] == role) == ws["live_roles"][role], role
        visitors = [c for c in live.values() if c["role"] == "visitor"]
        assert len(visitors) == ws["live_roles"]["visitor"] > 0
        for visitor in visitors:  # anonymous visitors are found by the id getVisitorId() returned
            r = await u.client.get("/visitors", params={"user_id": visitor["visitor_id"]}, headers=u.auth(ws))
            assert r.status_code == 200, r.text

        # Each contact's timeline and summary, as v0.1.0 listed them; a merged-away lead's id reads the
        # user's merged timeline.
        for cid, contact in ws["contacts"].items():
            assert await u.timeline(ws, cid) == ws["timelines"][cid], contact["label"]
            r = await u.client.get("/events", headers=u.auth(ws),
                                   params={"type": "user", "intercom_user_id": cid, "summary": "true"})
            # Since v0.1.0 an event without a description leaves the key out (Intercom's description has no null).
            then = [{k: v for k, v in e.items() if not (k == "description" and v is None)}
                    for e in ws["summaries"][cid]]
            assert r.status_code == 200 and r.json()["events"] == then, contact["label"]
        merged = {cid: c for cid, c in ws["contacts"].items() if c["merged_into"]}
        assert merged, "the fixture has a lead merged into a user"
        for lead_id, lead in merged.items():
            survivor = ws["timelines"][lead["merged_into"]]
            assert ws["timelines"][lead_id] == survivor
            assert {e["intercom_user_id"] for e in survivor} == {lead["merged_into"]}
            lookup = await u.listed(ws, "/events", type="user", user_id=lead["visitor_id"], per_page=50)
            assert [e["id"] for e in lookup] == [e["id"] for e in survivor]

        # Merges and their undo state.
        workspace = await u.store.workspace_by_app_id(ws["app_id"], cached=False)
        assert workspace is not None
        seen: dict[int, dict[str, Any]] = {}
        for cid in ws["contacts"]:
            for m in await u.store.merges_for(workspace, cid):
                seen[m.id] = {"id": m.id, "kind": m.kind, "from": m.from_contact, "into": m.into_contact,
                              "undone": m.undone_at is not None}
        assert sorted(seen.values(), key=lambda m: m["id"]) == ws["merges"]
    assert any(m["undone"] for m in u.acme["merges"]) and any(not m["undone"] and m["kind"] == "merge"
                                                              for m in u.acme["merges"])


async def test_an_archived_event_name_keeps_its_description_and_stays_archived(upgraded: Upgraded) -> None:
    u, ws = upgraded, upgraded.acme
    archived = ws["archived_event"]
    user = label(ws, "user-1")
    assert any(s["name"] == archived["name"] and s["description"] == archived["description"]
               for s in ws["summaries"][user])
    r = await u.client.post("/events", headers=u.auth(ws), json={
        "user_id": "acme-u1", "event_name": archived["name"], "created_at": int(time.time()) - 60})
    assert r.status_code == 202 and r.headers.get("X-Trailmark-Event-Status") == "dropped"
    assert await u.timeline(ws, user) == ws["timelines"][user]
    # Other names are still accepted over REST.
    r = await u.client.post("/events", headers=u.auth(ws), json={
        "user_id": "acme-u1", "event_name": "after-upgrade", "created_at": int(time.time()) - 60,
        "metadata": {"price": {"amount": 100, "currency": "usd"}}})
    assert r.status_code == 202 and r.headers.get("X-Trailmark-Event-Status") == "accepted"
    assert (await u.timeline(ws, user))[0]["event_name"] == "after-upgrade"


# ------------------------------------------------------------------------------------------ identity
async def test_the_visitors_signed_tokens_are_still_accepted(upgraded: Upgraded) -> None:
    u, ws = upgraded, upgraded.acme
    tokens = ws["visitor_tokens"]
    before = ws["timelines"][tokens["contact_id"]]
    # The session token names the visitor: new events attach to it; a retried client id counts once.
    r = await u.track(ws, tokens["session"],
                      {"id": "after-upgrade-1", "event_name": "viewed-pricing", "metadata": {"plan": "team"}},
                      {"id": tokens["replayed_client_id"], "event_name": "viewed-pricing"})
    assert r.status_code == 200, r.text
    assert [x["status"] for x in r.json()["results"]] == ["accepted", "duplicate"]
    after = await u.timeline(ws, tokens["contact_id"])
    assert after[1:] == before and after[0]["event_name"] == "viewed-pricing"
    assert after[0]["intercom_user_id"] == tokens["contact_id"]
    # The device token still names the same visitor (same getVisitorId()).
    r = await u.ping(ws, {"device": tokens["device"], "session": tokens["session"]})
    assert r.status_code == 200, r.text
    assert (r.json()["visitor_id"], r.json()["contact"]["id"]) == (tokens["visitor_id"], tokens["contact_id"])
    # A forged session is still refused.
    r = await u.track(ws, tokens["session"][:-2] + "xx", {"id": "forged", "event_name": "viewed-pricing"})
    assert r.status_code == 401


async def test_workspace_settings_identity_secret_and_origins_still_apply(upgraded: Upgraded) -> None:
    u, acme, beta = upgraded, upgraded.acme, upgraded.beta
    assert acme["enforce_identity_verification"] and acme["allowed_origins"] and not beta["allowed_origins"]
    # Acme: only its origin, and identified boots need user_hash made with the stored identity secret.
    r = await u.ping(acme, {}, origin="https://elsewhere.example")
    assert r.status_code == 403, r.text
    r = await u.ping(acme, {"user": {"user_id": "acme-u1"}})
    assert r.status_code == 401, r.text
    r = await u.ping(acme, {"user": {"user_id": "acme-u1", "user_hash": user_hash(acme["identity_secret"], "acme-u1")}})
    assert r.status_code == 200 and r.json()["contact"]["id"] == label(acme, "user-1"), r.text
    # Beta: any origin, identification without user_hash.
    r = await u.ping(beta, {"user": {"user_id": "beta-u2"}}, origin="https://anywhere.example")
    assert r.status_code == 200 and r.json()["contact"]["id"] == label(beta, "user-2"), r.text
    # Each workspace's token reads its own contacts only.
    r = await u.client.get("/contacts/" + label(acme, "user-1"), headers=u.auth(beta))
    assert r.status_code == 404
    r = await u.client.get("/contacts/" + label(acme, "user-1"), headers=u.auth(acme))
    assert r.status_code == 200 and r.json()["external_id"] == "acme-u1"


# ------------------------------------------------------------------------------------------ sources
async def test_segment_write_key_and_stripe_secret_still_work(upgraded: Upgraded) -> None:
    u, ws = upgraded, upgraded.acme
    seg = ws["segment"]
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))

    async def segment(key: str, message_id: str, **who: str) -> httpx.Response:
        basic = {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
        return await u.client.post("/v1/track", headers=basic, json={
            **who, "event": "Plan Upgraded", "messageId": message_id, "timestamp": at})

    # The write key still names the workspace: anonymous messages are stored, the fixture's messageIds are
    # still known (a retry counts once). This workspace enforces identity verification, so the write key
    # may not name users (a rule newer than v0.1.0): 403, not 401 as for an unknown key.
    statuses = []
    for message_id in ("after-upgrade-anonymous", seg["anonymous_message_id"]):
        r = await segment(seg["write_key"], message_id, anonymousId=seg["anonymous_id"])
        assert r.status_code == 200, r.text
        statuses.append(r.json()["status"])
    assert statuses == ["accepted", "duplicate"]
    visitor = label(ws, "segment-visitor")
    assert [e["event_name"] for e in await u.timeline(ws, visitor)] == \
        ["plan upgraded"] + [e["event_name"] for e in ws["timelines"][visitor]]
    r = await segment(seg["write_key"], "after-upgrade-user", userId=seg["user_id"])
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == "identity_verification_required", r.text
    r = await segment("not-a-write-key", "after-upgrade-unknown", anonymousId=seg["anonymous_id"])
    assert r.status_code == 401, r.text
    # Users' messages with the stored REST access token as the key.
    statuses = []
    for message_id in ("after-upgrade-user", seg["message_id"]):
        r = await segment(ws["access_token"], message_id, userId=seg["user_id"])
        assert r.status_code == 200, r.text
        statuses.append(r.json()["status"])
    assert statuses == ["accepted", "duplicate"]
    user = label(ws, "user-1")
    assert (await u.timeline(ws, user))[0]["event_name"] == "plan upgraded"

    stripe = ws["stripe"]
    payer = label(ws, stripe["contact_label"])

    async def deliver(event_id: str, obj: dict[str, Any]) -> dict[str, Any]:
        payload = json.dumps({"id": event_id, "object": "event", "type": "invoice.paid",
                              "created": int(time.time()) - 30, "data": {"object": obj}})
        t = int(time.time())
        mac = hmac.new(stripe["secret"].encode(), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
        r = await u.client.post(f"/integrations/stripe/webhook/{ws['app_id']}", content=payload,
                                headers={"Stripe-Signature": f"t={t},v1={mac}", "content-type": "application/json"})
        assert r.status_code == 200, r.text
        return dict(r.json())

    invoice = {"id": "in_AfterUpgrade0001", "object": "invoice", "customer": stripe["customer_id"],
               "amount_paid": 4900, "currency": "usd"}
    assert (await deliver(stripe["event_id"], invoice))["status"] == "duplicate"
    # No email: matched by the customer id v0.1.0 learned from the first invoice.
    assert (await deliver("evt_after_upgrade", invoice))["status"] == "accepted"
    events = await u.timeline(ws, payer)
    assert len(events) == len(ws["timelines"][payer]) + 1 and events[0]["intercom_user_id"] == payer
    r = await u.client.get("/integrations/stripe/unmatched", headers=u.auth(ws))
    assert r.status_code == 200
    assert [row["stripe_event_id"] for row in r.json()["data"]] == [stripe["unmatched_event_id"]]


# ------------------------------------------------------------------------------------------ admin
async def test_the_teammate_signs_in_and_can_undo_the_remaining_merge(upgraded: Upgraded) -> None:
    u, ws = upgraded, upgraded.acme
    teammate = u.manifest["teammate"]
    form = await u.client.get("/admin/login")
    r = await u.client.post("/admin/login", data={"csrf": csrf_of(form.text), "email": teammate["email"],
                                                  "password": teammate["password"] + "x", "next": "/admin/contacts"})
    assert r.status_code != 303
    form = await u.client.get("/admin/login")
    r = await u.client.post("/admin/login", data={"csrf": csrf_of(form.text), "email": teammate["email"],
                                                  "password": teammate["password"], "next": "/admin/contacts"})
    assert r.status_code == 303 and r.headers["location"] == "/admin/contacts", r.text

    page = await u.client.get("/admin/events/" + ws["archived_event"]["name"])
    assert page.status_code == 200 and ws["archived_event"]["description"] in page.text

    # The lead merged into user-1 at boot: undo it; its events leave the user's timeline again.
    user, lead = label(ws, "user-1"), label(ws, "lead-merged")
    [merge] = [m for m in ws["merges"] if m["kind"] == "merge" and m["from"] == lead]
    assert not merge["undone"]
    page = await u.client.get(f"/admin/contacts/{user}")
    assert page.status_code == 200
    r = await u.client.post(f"/admin/contacts/{user}/merges/{merge['id']}/undo", data={"csrf": csrf_of(page.text)})
    assert r.status_code == 303
    merged = ws["timelines"][user]
    mine, theirs = await u.timeline(ws, user), await u.timeline(ws, lead)
    assert theirs and {e["intercom_user_id"] for e in theirs} == {lead}
    assert sorted(e["id"] for e in mine + theirs) == sorted(e["id"] for e in merged)

    # The merge v0.1.0 already undid cannot be undone twice.
    [undone] = [m for m in ws["merges"] if m["undone"]]
    page = await u.client.get(f"/admin/contacts/{undone['into']}")
    r = await u.client.post(f"/admin/contacts/{undone['into']}/merges/{undone['id']}/undo",
                            data={"csrf": csrf_of(page.text)})
    assert r.status_code == 303
    assert "already undone" in (await u.client.get(r.headers["location"])).text
    assert await u.timeline(ws, undone["from"]) == ws["timelines"][undone["from"]]


# ------------------------------------------------------------------------------------------ trailmark migrate
@pytest.mark.parametrize("backend", BACKENDS)
async def test_trailmark_migrate_upgrades_and_is_idempotent(backend: str, tmp_path: Path) -> None:
    async with v010_database(backend, tmp_path) as url:
        schemas = []
        for _ in range(2):
            done = subprocess.run([sys.executable, "-m", "trailmark", "migrate", "--database", url],
                                  capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr
            if backend == "sqlite":
                with contextlib.closing(sqlite3.connect(url)) as db:
                    schemas.append(db.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall())
        assert backend != "sqlite" or schemas[0] == schemas[1]
        # The migrated database serves the stored token.
        ws = MANIFEST[backend]["workspaces"][0]
        store = open_store(url)
        app = create_app(Settings(database_url=url, purge_interval_seconds=0), store=store)
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
            r = await c.get("/contacts", headers={"Authorization": f"Bearer {ws['access_token']}"})
            assert r.status_code == 200 and r.json()["total_count"] == len(ws["contacts_listing"])
