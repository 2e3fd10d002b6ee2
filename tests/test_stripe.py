"""Stripe webhooks (server/sources/stripe.py): signature verification (Stripe's own signing helper when the
``stripe`` package is installed, else the documented scheme), the event mapping, contact matching,
dedupe by Stripe event id, and unmatched webhooks being recorded, listed and caught up."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import pytest

from trailmark import cli

try:
    from stripe import WebhookSignature
except ImportError:  # pragma: no cover - the test extra installs it
    WebhookSignature = None  # type: ignore[assignment,misc]  # the fallback below signs by hand

SECRET, OLD_SECRET, OTHER_SECRET = "whsec_current_0123456789", "whsec_previous_987654321", "whsec_not_ours"
CUSTOMER, INVOICE, CHARGE = "cus_Pq7RsT9uVwXyZ012", "in_1NqZ8x2eZvKYlo2C", "ch_3MmlLrLkdIwHu7ix"


def signature(payload: str, secret: str, timestamp: int | None = None) -> str:
    """``Stripe-Signature`` for ``payload``: Stripe's own helper, or the documented scheme."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    if WebhookSignature is not None:
        return str(WebhookSignature.generate_signature_header(payload, secret, timestamp=timestamp))
    mac = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def stripe_event(kind: str, obj: dict[str, Any], event_id: str = "evt_1", created: int | None = None) -> dict[str, Any]:
    return {"id": event_id, "object": "event", "api_version": "2024-06-20", "type": kind, "livemode": False,
            "created": created or int(time.time()) - 10, "data": {"object": obj}}


def invoice(**extra: Any) -> dict[str, Any]:
    return {"id": INVOICE, "object": "invoice", "customer": CUSTOMER, "customer_email": "payer@example.com",
            "amount_paid": 4900, "amount_due": 4900, "currency": "usd", "number": "A1B2-0001",
            "subscription": "sub_1MowQVLkdIwHu7ix", "billing_reason": "subscription_cycle",
            "hosted_invoice_url": "https://invoice.stripe.com/i/acct_1/test_123", **extra}


def subscription(**extra: Any) -> dict[str, Any]:
    return {"id": "sub_1MowQVLkdIwHu7ix", "object": "subscription", "customer": CUSTOMER, "status": "active",
            "items": {"object": "list", "data": [{"quantity": 2, "price": {
                "id": "price_1Mo", "nickname": "Pro", "unit_amount": 2450, "currency": "usd",
                "recurring": {"interval": "month"}}}]}, **extra}


async def deliver(h: Any, event: dict[str, Any], secret: str = SECRET, *, timestamp: int | None = None,
                  path: str | None = None, header: str | None = None) -> httpx.Response:
    payload = json.dumps(event)
    return await h.client.post(path or f"/integrations/stripe/webhook/{h.workspace.app_id}", content=payload,
                               headers={"Stripe-Signature": header or signature(payload, secret, timestamp),
                                        "content-type": "application/json"})


async def user_events(h: Any, contact: Any) -> list[Any]:
    return list(reversed(await h.store.events_for(h.workspace, contact, limit=100)))


@pytest.fixture
async def payer(harness: Any) -> Any:
    await harness.store.add_stripe_secret(harness.workspace, SECRET)
    return await harness.store.create_contact(harness.workspace, "user", external_id="u-1", email="Payer@Example.com")


def assert_signature_refused(r: httpx.Response) -> None:
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["type"] == "error.list" and body["errors"][0]["code"] == "signature_invalid"
    assert body["errors"][0]["field"] == "Stripe-Signature"


# ------------------------------------------------------------------ signatures
async def test_a_valid_invoice_paid_is_tracked_on_the_contact_matched_by_email(harness, payer):
    h = harness
    created = int(time.time()) - 120
    r = await deliver(h, stripe_event("invoice.paid", invoice(), created=created))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "accepted" and r.json()["event_name"] == "paid-invoice"
    [ev] = await user_events(h, payer)
    assert (ev.event_name, ev.created_at, ev.source) == ("paid-invoice", created, "stripe")
    assert ev.metadata["invoice"] == INVOICE and ev.metadata["customer"] == CUSTOMER
    assert ev.metadata["amount"] == {"amount": 4900, "currency": "usd"}
    assert ev.metadata_types["invoice"] == ev.metadata_types["customer"] == "stripe"
    assert ev.metadata_types["amount"] == "money" and ev.metadata_types["invoice_url"] == "link"
    # The customer id is now recorded: later webhooks without an email find the contact.
    assert (await h.store.contact_for_stripe_customer(h.workspace, CUSTOMER)).id == payer.id


async def test_replay_of_the_same_event_id_counts_once(harness, payer):
    h = harness
    event = stripe_event("invoice.paid", invoice(), event_id="evt_replayed")
    assert (await deliver(h, event)).json()["status"] == "accepted"
    assert (await deliver(h, event)).json()["status"] == "duplicate"  # Stripe's retry: fresh signature, same id
    assert await h.event_count() == 1


async def test_wrong_secret_tampered_body_missing_or_garbled_header_are_refused(harness, payer):
    h = harness
    event = stripe_event("invoice.paid", invoice())
    assert_signature_refused(await deliver(h, event, secret=OTHER_SECRET))
    payload = json.dumps(event)
    tampered = payload.replace("4900", "1")
    r = await h.client.post(f"/integrations/stripe/webhook/{h.workspace.app_id}", content=tampered,
                            headers={"Stripe-Signature": signature(payload, SECRET)})
    assert_signature_refused(r)
    r = await h.client.post(f"/integrations/stripe/webhook/{h.workspace.app_id}", content=payload)
    assert_signature_refused(r)
    assert_signature_refused(await deliver(h, event, header="garbage"))
    assert_signature_refused(await deliver(h, event, header=f"t={int(time.time())},v0=abc"))
    assert await h.event_count() == 0
    assert await h.store.unmatched_stripe_events(h.workspace) == []


async def test_stale_or_future_timestamp_is_refused_even_with_a_good_signature(harness, payer):
    h = harness
    event = stripe_event("invoice.paid", invoice())
    assert_signature_refused(await deliver(h, event, timestamp=int(time.time()) - 301))
    assert_signature_refused(await deliver(h, event, timestamp=int(time.time()) + 301))
    assert (await deliver(h, event, timestamp=int(time.time()) - 280)).status_code == 200
    assert await h.event_count() == 1


async def test_rotation_keeps_the_old_secret_working_until_it_is_removed(harness, payer):
    h = harness
    await h.store.add_stripe_secret(h.workspace, OLD_SECRET)
    assert (await deliver(h, stripe_event("invoice.paid", invoice(), "evt_a"), secret=OLD_SECRET)).status_code == 200
    assert (await deliver(h, stripe_event("invoice.paid", invoice(), "evt_b"))).status_code == 200
    # During a roll Stripe sends one v1 signature per secret.
    event = stripe_event("invoice.paid", invoice(), "evt_c")
    payload, t = json.dumps(event), int(time.time())
    both = signature(payload, OTHER_SECRET, t) + "," + signature(payload, SECRET, t).split(",")[1]
    assert (await deliver(h, event, header=both)).status_code == 200
    assert await h.store.remove_stripe_secret(h.workspace, OLD_SECRET)
    assert_signature_refused(await deliver(h, stripe_event("invoice.paid", invoice(), "evt_d"), secret=OLD_SECRET))
    assert await h.event_count() == 3


async def test_workspace_without_secret_unknown_app_and_the_workspace_less_url(harness):
    h = harness
    event = stripe_event("invoice.paid", invoice())
    assert_signature_refused(await deliver(h, event))  # no secret configured yet
    for app in ("nope", "%00"):
        r = await deliver(h, event, path=f"/integrations/stripe/webhook/{app}")
        assert r.status_code == 404 and r.json()["errors"][0]["code"] == "not_found"
    await h.store.add_stripe_secret(h.workspace, SECRET)
    await h.store.create_contact(h.workspace, "user", external_id="u-1", email="payer@example.com")
    # Without an app id, the workspace is the one whose secret verifies the signature.
    r = await deliver(h, event, path="/integrations/stripe/webhook")
    assert r.status_code == 200 and r.json()["status"] == "accepted", r.text
    assert_signature_refused(await deliver(h, event, OTHER_SECRET, path="/integrations/stripe/webhook"))


# ------------------------------------------------------------------ mapping and matching
async def test_subscriptions_and_failed_payments_map_to_their_events(harness, payer):
    h = harness
    await h.store.map_stripe_customer(h.workspace, CUSTOMER, payer.id)
    now = int(time.time())
    events = [
        stripe_event("customer.subscription.created", subscription(), "evt_s1", now - 50),
        stripe_event("invoice.payment_failed", invoice(attempt_count=2, next_payment_attempt=now + 86400,
                                                       customer_email=None), "evt_f1", now - 40),
        stripe_event("charge.failed", {"id": CHARGE, "object": "charge", "customer": None, "amount": 4900,
                                       "currency": "usd", "billing_details": {"email": "payer@example.com"},
                                       "failure_code": "card_declined", "failure_message": "Your card was declined."},
                     "evt_f2", now - 30),
        stripe_event("customer.subscription.deleted", subscription(
            status="canceled", canceled_at=now - 20, cancellation_details={"reason": "cancellation_requested"}),
            "evt_s2", now - 20),
    ]
    for event in events:
        r = await deliver(h, event)
        assert r.status_code == 200 and r.json()["status"] == "accepted", r.text
    got = {e.event_name: e for e in await user_events(h, payer)}
    assert list(got) == ["created-subscription", "failed-payment", "cancelled-subscription"]
    created = got["created-subscription"]
    assert created.metadata["amount"] == {"amount": 4900, "currency": "usd"}
    assert (created.metadata["plan"], created.metadata["interval"]) == ("Pro", "month")
    cancelled = got["cancelled-subscription"]
    assert cancelled.metadata["cancel_reason"] == "cancellation_requested"
    assert cancelled.metadata_types["canceled_at"] == "date"
    failed = [e for e in await user_events(h, payer) if e.event_name == "failed-payment"]
    assert [e.metadata.get("charge") or e.metadata.get("invoice") for e in failed] == [INVOICE, CHARGE]
    assert failed[0].metadata_types["next_attempt_at"] == "date" and failed[0].metadata["attempt_count"] == 2
    assert failed[1].metadata_types["charge"] == "stripe"
    assert failed[1].metadata["failure_message"] == "Your card was declined."


async def test_custom_attribute_stripe_customer_id_matches(harness):
    h = harness
    await h.store.add_stripe_secret(h.workspace, SECRET)
    user = await h.store.create_contact(h.workspace, "user", external_id="u-7",
                                        attributes={"stripe_customer_id": "cus_Attr12345678", "plan": "x"})
    await h.store.create_contact(h.workspace, "user", external_id="u-8", attributes={"note": "cus_Attr12345678"})
    r = await deliver(h, stripe_event("customer.subscription.created", subscription(customer="cus_Attr12345678")))
    assert r.json()["status"] == "accepted", r.text
    assert [e.event_name for e in await user_events(h, user)] == ["created-subscription"]


async def test_unknown_types_are_ignored_and_malformed_events_refused(harness, payer):
    h = harness
    r = await deliver(h, stripe_event("payout.paid", {"id": "po_1", "object": "payout"}))
    assert r.status_code == 200 and r.json()["status"] == "ignored"
    r = await deliver(h, {"id": "evt_x", "type": "invoice.paid"})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "data.object"
    assert await h.event_count() == 0


# ------------------------------------------------------------------ unmatched webhooks
async def test_unmatched_webhooks_are_recorded_listed_and_tracked_once_the_customer_is_known(harness):
    h = harness
    await h.store.add_stripe_secret(h.workspace, SECRET)
    early = stripe_event("customer.subscription.created", subscription(), "evt_early", int(time.time()) - 100)
    r = await deliver(h, early)
    assert r.status_code == 200 and r.json()["status"] == "unmatched", r.text
    await deliver(h, early)  # a replay is recorded once
    stranger = stripe_event("invoice.paid", invoice(customer="cus_Nobody00000000", customer_email="x@nowhere.example"),
                            "evt_stranger")
    assert (await deliver(h, stranger)).json()["status"] == "unmatched"
    rows = await h.store.unmatched_stripe_events(h.workspace)
    assert [(r["stripe_event_id"], r["customer_id"], r["email"]) for r in rows] == [
        ("evt_stranger", "cus_Nobody00000000", "x@nowhere.example"), ("evt_early", CUSTOMER, None)]
    listed = await h.client.get("/integrations/stripe/unmatched", headers=h.auth)
    assert listed.status_code == 200
    assert [x["stripe_event_id"] for x in listed.json()["data"]] == ["evt_stranger", "evt_early"]
    assert listed.json()["data"][1]["event"]["type"] == "customer.subscription.created"
    assert (await h.client.get("/integrations/stripe/unmatched")).status_code == 401

    # The payer signs up; the next webhook names their email and customer id: the early one is caught up.
    payer = await h.store.create_contact(h.workspace, "user", external_id="u-1", email="payer@example.com")
    r = await deliver(h, stripe_event("invoice.paid", invoice(), "evt_paid"))
    assert r.json()["status"] == "accepted" and r.json()["caught_up"] == 1
    assert [e.event_name for e in await user_events(h, payer)] == ["created-subscription", "paid-invoice"]
    assert [r["stripe_event_id"] for r in await h.store.unmatched_stripe_events(h.workspace)] == ["evt_stranger"]
    resolved = await h.store.unmatched_stripe_events(h.workspace, include_resolved=True)
    assert {r["stripe_event_id"]: r["resolved_contact"] for r in resolved}["evt_early"] == payer.id

    # `trailmark stripe retry`'s logic: once a contact has the email, the rest is tracked.
    from trailmark.sources.stripe import retry_unmatched

    stranger_user = await h.store.create_contact(h.workspace, "user", external_id="u-2", email="x@nowhere.example")
    assert await retry_unmatched(h.store, h.workspace) == (1, 0)
    assert [e.event_name for e in await user_events(h, stranger_user)] == ["paid-invoice"]
    assert await h.store.unmatched_stripe_events(h.workspace) == []


def test_cli_adds_secrets_and_lists_unmatched(tmp_path, capsys):
    db = str(tmp_path / "cli.db")
    assert cli.main(["workspace", "create", "--name", "Shop", "--database", db, "--json"]) == 0
    app_id = json.loads(capsys.readouterr().out)["app_id"]
    assert cli.main(["stripe", "add-secret", "--app-id", app_id, SECRET, "--database", db]) == 0
    assert f"/integrations/stripe/webhook/{app_id}" in capsys.readouterr().out
    assert cli.main(["stripe", "secrets", "--database", db]) == 0
    assert capsys.readouterr().out.strip() == SECRET[:10] + "…" + SECRET[-4:]
    assert cli.main(["stripe", "unmatched", "--database", db, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert cli.main(["stripe", "remove-secret", SECRET, "--database", db]) == 0
    with pytest.raises(SystemExit):
        cli.main(["stripe", "add-secret", "--database", db])  # no secret: argparse's usage error
