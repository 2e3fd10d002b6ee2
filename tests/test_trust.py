"""Identities that cannot be forged (issue: trust, urgent part). Each test here failed on v0.1.0:

- a valid proof computed over a placeholder ``user_id`` fell back to the email beside it (someone else's
  session came back); a placeholder is now refused outright, 401 ``invalid_identity``;
- several users sharing one email: identification by email alone picked one; now 409;
- the browser-safe Segment write key rewrote users in a workspace that enforces identity verification;
- a browser set ``stripe_customer_id`` and claimed a Stripe customer's invoices;
- identity verification could not be switched on: ``trailmark workspace set``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from trailmark import cli, identity

from .test_segment import basic
from .test_stripe import SECRET, deliver, invoice, stripe_event


def error_code(r: Any) -> str:
    body = r.json()
    assert body["type"] == "error.list", body
    return str(body["errors"][0]["code"])


async def count_contacts(h: Any) -> int:
    async with h.store.db.read() as conn:
        row = await conn.fetch_one("SELECT COUNT(*) AS n FROM contacts WHERE workspace_id = ?", (h.workspace.id,))
    return int(row["n"])


# ------------------------------------------------------------------ placeholder proofs
@pytest.mark.parametrize("placeholder", ["undefined", "null", "0", "[object Object]"])
async def test_a_valid_proof_over_a_placeholder_never_falls_back_to_the_email(make_harness, placeholder):
    async with make_harness(enforce_identity_verification=True) as h:
        victim = await h.store.create_contact(h.workspace, "user", external_id="victim-1", email="victim@corp.com")
        proof = identity.user_hash(h.workspace.identity_secret, placeholder)
        before = await count_contacts(h)
        r = await h.ping(user={"user_id": placeholder, "user_hash": proof, "email": "victim@corp.com"})
        assert r.status_code == 401, r.text
        assert error_code(r) == "invalid_identity"
        assert "session" not in r.json()
        assert await count_contacts(h) == before  # nothing attached, not even a visitor
        assert (await h.store.get_contact(h.workspace, victim.id)).email == "victim@corp.com"


async def test_a_jwt_naming_a_placeholder_is_refused(make_harness):
    from .test_messenger import make_jwt

    async with make_harness(enforce_identity_verification=True) as h:
        await h.store.create_contact(h.workspace, "user", external_id="victim-1", email="victim@corp.com")
        token = make_jwt(h.workspace.identity_secret, {"user_id": "undefined"})
        r = await h.ping(user={"intercom_user_jwt": token, "email": "victim@corp.com"})
        assert r.status_code == 401 and error_code(r) == "invalid_identity"


async def test_identification_by_email_alone_never_picks_among_several_users(harness):
    h = harness
    for uid in ("a-1", "a-2"):
        await h.store.create_contact(h.workspace, "user", external_id=uid)
        contact = await h.store.find_contact(h.workspace, user_id=uid)
        await h.store.update_contact_traits(h.workspace, contact.id, email="shared@corp.com", name=None, phone=None,
                                            attributes={})
    proof = identity.user_hash(h.workspace.identity_secret, "shared@corp.com")
    r = await h.ping(user={"email": "shared@corp.com", "user_hash": proof})
    assert r.status_code == 409, r.text
    assert error_code(r) == "conflict" and "Multiple existing users" in r.json()["errors"][0]["message"]


# ------------------------------------------------------------------ Segment write key
async def segment(h: Any, path: str, body: Any, key: str) -> Any:
    return await h.client.post(path, content=json.dumps(body).encode(),
                               headers={**basic(key), "content-type": "application/json"})


async def test_the_write_key_cannot_rewrite_a_user_in_an_enforcing_workspace(make_harness):
    async with make_harness(enforce_identity_verification=True) as h:
        user = await h.store.create_contact(h.workspace, "user", external_id="victim-1", email="victim@corp.com")
        key = await h.store.segment_write_key(h.workspace)
        r = await segment(h, "/v1/identify", {"userId": "victim-1", "traits": {"email": "attacker@evil.test"}}, key)
        assert r.status_code == 403 and error_code(r) == "identity_verification_required", r.text
        r = await segment(h, "/v1/identify", {"userId": "victim-1", "anonymousId": "anon-1",
                                              "traits": {"email": "attacker@evil.test"}}, key)
        assert r.status_code == 200, r.text
        assert "userId ignored" in r.json()["warning"]
        assert (await h.store.get_contact(h.workspace, user.id)).email == "victim@corp.com"
        assert await h.store.find_contact(h.workspace, user_id="victim-1") == await h.store.get_contact(
            h.workspace, user.id)
        # The anonymous part is kept: the visitor gave an email, so it is a lead (as update({email}) makes one).
        visitor = await h.store.find_contact(h.workspace, visitor_id="anon-1")
        assert visitor is not None and visitor.role == "lead" and visitor.email == "attacker@evil.test"
        # Tracks with a userId land on the anonymous visitor, never on the user.
        r = await segment(h, "/v1/track", {"userId": "victim-1", "anonymousId": "anon-1", "event": "Clicked"}, key)
        assert r.status_code == 200 and r.json()["status"] == "accepted"
        assert await h.store.events_for(h.workspace, user, limit=10) == []
        # alias would tie an anonymous id to a user: refused with the write key.
        r = await segment(h, "/v1/alias", {"userId": "victim-1", "previousId": "anon-1"}, key)
        assert r.status_code == 403


async def test_the_access_token_still_identifies_users_through_segment(make_harness):
    async with make_harness(enforce_identity_verification=True) as h:
        user = await h.store.create_contact(h.workspace, "user", external_id="u-1", email="old@corp.com")
        r = await segment(h, "/v1/identify", {"userId": "u-1", "traits": {"email": "new@corp.com"}},
                          h.workspace.access_token)
        assert r.status_code == 200, r.text
        assert (await h.store.get_contact(h.workspace, user.id)).email == "new@corp.com"


async def test_the_write_key_identifies_users_where_verification_is_not_enforced(harness):
    h = harness
    key = await h.store.segment_write_key(h.workspace)
    r = await segment(h, "/v1/identify", {"userId": "u-9", "traits": {"email": "u9@corp.com"}}, key)
    assert r.status_code == 200 and "warning" not in r.json()
    assert (await h.store.find_contact(h.workspace, user_id="u-9")).email == "u9@corp.com"


# ------------------------------------------------------------------ Stripe customers
async def test_a_browser_cannot_claim_a_stripe_customer(harness):
    h = harness
    await h.store.add_stripe_secret(h.workspace, SECRET)
    me = await h.visitor(user={"email": "attacker@evil.test", "stripe_customer_id": "cus_Victim0000001"})
    assert any("stripe_customer_id" in w for w in me["warnings"])
    contact = await h.store.get_contact(h.workspace, me["contact"]["id"])
    assert "stripe_customer_id" not in contact.custom_attributes
    r = await deliver(h, stripe_event("invoice.paid", invoice(customer="cus_Victim0000001", customer_email=None)))
    assert r.json()["status"] == "unmatched", r.text
    assert await h.store.events_for(h.workspace, contact, limit=10) == []


async def test_the_segment_write_key_cannot_set_a_stripe_customer_either(harness):
    h = harness
    key = await h.store.segment_write_key(h.workspace)
    r = await segment(h, "/v1/identify", {"anonymousId": "anon-2", "traits": {"stripe_customer_id": "cus_V2"}}, key)
    assert r.status_code == 200
    assert {"key": "stripe_customer_id", "reason": "only a server-side credential may set it"} in r.json()["dropped"]
    visitor = await h.store.find_contact(h.workspace, visitor_id="anon-2")
    assert "stripe_customer_id" not in visitor.custom_attributes


async def test_a_verified_user_may_set_its_stripe_customer(make_harness):
    async with make_harness(enforce_identity_verification=True) as h:
        proof = identity.user_hash(h.workspace.identity_secret, "u-5")
        me = await h.visitor(user={"user_id": "u-5", "user_hash": proof, "stripe_customer_id": "cus_Mine0000001"})
        assert me["warnings"] == []
        contact = await h.store.get_contact(h.workspace, me["contact"]["id"])
        assert contact.custom_attributes["stripe_customer_id"] == "cus_Mine0000001"


# ------------------------------------------------------------------ the switch
def run_cli(capsys: Any, *args: str) -> str:
    assert cli.main(list(args)) == 0
    return str(capsys.readouterr().out)


def test_identity_verification_is_switched_on_and_off_from_the_cli(tmp_path, capsys):
    db = str(tmp_path / "t.db")
    made = json.loads(run_cli(capsys, "workspace", "create", "--name", "Shop", "--json", "--database", db))
    assert made["access_token"]  # shown once, when made
    out = json.loads(run_cli(capsys, "workspace", "set", "--app-id", made["app_id"], "--enforce-identity-verification",
                             "--strict-metadata", "--retention-days", "30", "--allowed-origin", "https://Shop.example/",
                             "--allowed-origin", "http://127.0.0.1:8001", "--json", "--database", db))
    assert out["enforce_identity_verification"] is True and out["strict_metadata"] is True
    assert out["retention_days"] == 30
    assert out["allowed_origins"] == ["https://shop.example", "http://127.0.0.1:8001"]
    listed = json.loads(run_cli(capsys, "workspace", "list", "--json", "--database", db))
    assert listed[0]["enforce_identity_verification"] is True
    assert listed[0]["identity_secret"] == made["identity_secret"]
    assert "access_token" not in listed[0]  # the list never prints the token
    out = json.loads(run_cli(capsys, "workspace", "set", "--no-enforce-identity-verification",
                             "--rotate-identity-secret", "--json", "--database", db))
    assert out["enforce_identity_verification"] is False
    assert out["identity_secret"] != made["identity_secret"]
    assert out["previous_identity_secret_expires_at"] is not None
    text = run_cli(capsys, "workspace", "list", "--database", db)
    assert "NOT enforced" in text and "previous secret" in text


def test_workspace_set_refuses_bad_values(tmp_path, capsys):
    db = str(tmp_path / "t.db")
    run_cli(capsys, "workspace", "create", "--database", db)
    for bad in (["--retention-days", "0"], ["--allowed-origin", "javascript:alert(1)"],
                ["--allowed-origin", "https://shop.example/path"]):
        with pytest.raises(SystemExit) as exc:
            cli.main(["workspace", "set", *bad, "--database", db])
        assert exc.value.code not in (0, None)


def test_an_enforcing_workspace_set_from_the_cli_refuses_unverified_boots(tmp_path, capsys):
    """End to end: the switch made by the CLI is what the server enforces."""
    import asyncio

    db = str(tmp_path / "t.db")
    made = json.loads(run_cli(capsys, "workspace", "create", "--json", "--database", db))
    run_cli(capsys, "workspace", "set", "--enforce-identity-verification", "--database", db)
    asyncio.run(_boot_against(db, made))


async def _boot_against(db: str, made: dict[str, Any]) -> None:
    import httpx

    from trailmark.app import create_app
    from trailmark.settings import Settings
    from trailmark.store import open_store

    store = open_store(db)
    app = create_app(Settings(database_url=db), store=store)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        r = await client.post("/messenger/web/ping",
                              content=json.dumps({"app_id": made["app_id"], "user": {"user_id": "victim-1"}}))
        assert r.status_code == 401
        proof = identity.user_hash(made["identity_secret"], "victim-1")
        r = await client.post("/messenger/web/ping", content=json.dumps(
            {"app_id": made["app_id"], "user": {"user_id": "victim-1", "user_hash": proof}}))
        assert r.status_code == 200 and r.json()["contact"]["role"] == "user"
