"""Stripe webhooks → events on the paying contact.

    POST /integrations/stripe/webhook/{app_id}   (or /integrations/stripe/webhook: the workspace is the one
                                                  whose secret verifies the signature)
    GET  /integrations/stripe/unmatched          (REST Bearer token) verified webhooks no contact matched

Steps: ``verify_signature`` (Stripe's scheme: ``Stripe-Signature: t=<unix>,v1=<hex>[,v1=…]``, the hex being
HMAC-SHA256 with the endpoint secret over ``"{t}.{raw body}"``; any of the workspace's secrets may match,
so an old secret keeps working during a rotation; ``t`` must be within 300 s of now) → ``read_stripe_event``
→ ``map_event`` (type → event name and Stripe-typed metadata) → ``match_contact`` (recorded Stripe customer
id, the ``stripe_customer_id`` custom attribute, then email) → ``validate_event`` and ``append_events``
with dedupe key ``stripe:<event id>`` (Stripe retries and replays count once).

A verified webhook that matches no contact is recorded in ``stripe_unmatched`` (answer 200, so Stripe does
not retry it for days) and tracked as soon as its customer is matched by a later webhook, or by
``trailmark stripe retry``. Event types Trailmark does not map are answered 200 ``ignored``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .. import strict_json
from ..errors import ApiError, bad_request, not_found
from ..http_edge import int_param, json_object, read_body
from ..ingest import validate_event
from ..limits import ascii_int
from ..messages.engine import for_server_events
from ..rest_auth import rest_workspace
from ..store import SQLStore
from ..store.models import AppendRequest, Contact, Workspace

TOLERANCE_SECONDS = 300  # Stripe's libraries' default tolerance
MAX_PAYLOAD_BYTES = 1024 * 1024  # invoices with many lines are large; 1 MB leaves room
SOURCE = "stripe"


class SignatureError(Exception):
    pass


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """Stripe's v1 signature (hex HMAC-SHA256 of ``"{t}.{payload}"``)."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()


def verify_signature(header: str | None, payload: bytes, secrets: list[str], now: int,
                     tolerance: int = TOLERANCE_SECONDS) -> str:
    """The secret that signed ``payload``; SignatureError when none did or the signature is stale."""
    if not header:
        raise SignatureError("Stripe-Signature header is missing")
    timestamp, signatures = None, []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            timestamp = ascii_int(value, minimum=0)  # "t=<4,301 digits>" must not reach int()
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        raise SignatureError("Stripe-Signature must carry t=<timestamp> and v1=<signature>")
    for secret in secrets:
        expected = sign(payload, secret, timestamp)
        if any(hmac.compare_digest(expected, s) for s in signatures):
            if abs(now - timestamp) > tolerance:
                raise SignatureError(f"Stripe-Signature timestamp is more than {tolerance} seconds from now "
                                     "(a replayed or delayed webhook)")
            return secret
    raise SignatureError("No signature matches a webhook secret of this workspace")


# ---------------------------------------------------------------- reading a Stripe object
def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value and "\x00" not in value else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _money(amount: Any, currency: Any) -> dict[str, Any] | None:
    """A monetary amount as the metadata rules want it: integer minor units and an ISO currency."""
    if _int(amount) is None or not isinstance(currency, str):
        return None
    return {"amount": amount, "currency": currency.lower()}


def customer_id(obj: dict[str, Any]) -> str | None:
    if obj.get("object") == "customer":
        return _str(obj.get("id"))
    customer = obj.get("customer")
    if isinstance(customer, dict):
        return _str(customer.get("id"))
    return _str(customer)


def customer_email(obj: dict[str, Any]) -> str | None:
    """The email a Stripe object names its customer by, wherever that object type keeps it."""
    candidates = [obj.get("customer_email"), obj.get("receipt_email")]
    for nested in ("customer_details", "billing_details"):
        if isinstance(obj.get(nested), dict):
            candidates.append(obj[nested].get("email"))
    if obj.get("object") == "customer":
        candidates.append(obj.get("email"))
    if isinstance(obj.get("customer"), dict):  # an expanded customer
        candidates.append(obj["customer"].get("email"))
    return next((s.strip() for c in candidates if (s := _str(c)) and "@" in s), None)


def _subscription_of(obj: dict[str, Any]) -> str | None:
    """An invoice's subscription id (top level before API 2025-03-31, under ``parent`` after)."""
    sub = obj.get("subscription")
    if isinstance(sub, dict):
        sub = sub.get("id")
    if sub is None and isinstance(obj.get("parent"), dict):
        details = obj["parent"].get("subscription_details")
        sub = details.get("subscription") if isinstance(details, dict) else None
    return _str(sub)


def _plan(obj: dict[str, Any]) -> dict[str, Any]:
    """A subscription's plan: first item's price nickname (or id), the total per period and interval."""
    items = obj.get("items", {}).get("data", []) if isinstance(obj.get("items"), dict) else []
    total, currency, plan, interval = 0, None, None, None
    for item in items if isinstance(items, list) else []:
        price = item.get("price") or item.get("plan") or {}
        if not isinstance(price, dict):
            continue
        plan = plan or _str(price.get("nickname")) or _str(price.get("id"))
        unit = _int(price.get("unit_amount", price.get("amount")))
        if unit is not None:
            total += unit * (_int(item.get("quantity")) or 1)
            currency = currency or price.get("currency")
        recurring = price.get("recurring")
        interval = interval or (recurring.get("interval") if isinstance(recurring, dict) else price.get("interval"))
    return {"plan": plan, "amount": _money(total, currency) if currency else None, "interval": _str(interval)}


def _invoice(obj: dict[str, Any], amount_field: str) -> dict[str, Any]:
    return {"invoice": obj.get("id"), "customer": customer_id(obj),
            "amount": _money(obj.get(amount_field), obj.get("currency")),
            "subscription": _subscription_of(obj), "number": _str(obj.get("number")),
            "invoice_url": _str(obj.get("hosted_invoice_url")), "billing_reason": _str(obj.get("billing_reason"))}


def _charge(obj: dict[str, Any], amount_field: str) -> dict[str, Any]:
    return {"charge": obj.get("id"), "customer": customer_id(obj),
            "amount": _money(obj.get(amount_field), obj.get("currency")), "invoice": _str(obj.get("invoice")),
            "failure_code": _str(obj.get("failure_code")), "failure_message": _str(obj.get("failure_message")),
            "receipt_url": _str(obj.get("receipt_url"))}


def _subscription(obj: dict[str, Any]) -> dict[str, Any]:
    details = obj.get("cancellation_details")
    if not isinstance(details, dict):
        details = {}
    return {"subscription": obj.get("id"), "customer": customer_id(obj), "status": _str(obj.get("status")),
            **_plan(obj), "trial_ends_at": _int(obj.get("trial_end")), "canceled_at": _int(obj.get("canceled_at")),
            "cancel_reason": _str(details.get("reason")), "cancel_feedback": _str(details.get("feedback"))}


# Stripe event type → (Trailmark event name, metadata of the event's object). Keys ending in _at are
# dates (the metadata rules type them from the name); Stripe ids in_/cus_/ch_ are typed "stripe".
MAPPINGS: dict[str, tuple[str, Callable[[dict[str, Any]], dict[str, Any]]]] = {
    "invoice.paid": ("paid-invoice", lambda o: _invoice(o, "amount_paid")),
    "invoice.payment_failed": ("failed-payment", lambda o: {
        **_invoice(o, "amount_due"), "attempt_count": _int(o.get("attempt_count")),
        "next_attempt_at": _int(o.get("next_payment_attempt"))}),
    "charge.failed": ("failed-payment", lambda o: _charge(o, "amount")),
    "charge.refunded": ("refunded-charge", lambda o: _charge(o, "amount_refunded")),
    "customer.subscription.created": ("created-subscription", _subscription),
    "customer.subscription.deleted": ("cancelled-subscription", _subscription),
    "customer.subscription.trial_will_end": ("trial-will-end", _subscription),
    "checkout.session.completed": ("completed-checkout", lambda o: {
        "checkout_session": o.get("id"), "customer": customer_id(o),
        "amount": _money(o.get("amount_total"), o.get("currency")), "mode": _str(o.get("mode")),
        "payment_status": _str(o.get("payment_status"))}),
}
# Types that only teach Trailmark who a Stripe customer is (no event is tracked).
CUSTOMER_TYPES = ("customer.created", "customer.updated")


def read_stripe_event(payload: bytes) -> dict[str, Any]:
    event = json_object(payload)
    if _str(event.get("id")) is None:
        raise bad_request("a Stripe event needs an id", "id")
    if _str(event.get("type")) is None:
        raise bad_request("a Stripe event needs a type", "type")
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise bad_request("a Stripe event needs data.object", "data.object")
    if _int(event.get("created")) is None:
        raise bad_request("a Stripe event needs created (unix seconds)", "created")
    return event


async def match_contact(store: SQLStore, ws: Workspace, customer: str | None,
                        email: str | None) -> tuple[Contact | None, bool]:
    """``(contact, learned)``: by recorded customer id / ``stripe_customer_id`` attribute, else by email
    (a user first, then a lead); ``learned`` is True when the customer id is newly tied to the contact."""
    if customer:
        contact = await store.contact_for_stripe_customer(ws, customer)
        if contact is not None:
            return contact, False
    if email:
        contact = await store.contact_by_email(ws, email)
        if contact is not None:
            if customer:
                await store.map_stripe_customer(ws, customer, contact.id)
            return contact, bool(customer)
    return None, False


async def apply_event(store: SQLStore, ws: Workspace, event: dict[str, Any], payload: str, *,
                      record: bool = True) -> dict[str, Any]:
    """Track one verified Stripe event; returns ``{"status": …}`` (accepted, duplicate, unmatched, mapped,
    ignored, dropped) with details."""
    kind, obj = event["type"], event["data"]["object"]
    customer, email = customer_id(obj), customer_email(obj)
    if kind not in MAPPINGS and kind not in CUSTOMER_TYPES:
        return {"status": "ignored", "reason": f"Trailmark does not track Stripe events of type {kind}"}
    contact, learned = await match_contact(store, ws, customer, email)
    if contact is None:
        reason = ("no contact has this Stripe customer id or email" if email else
                  "no contact has this Stripe customer id (and the event names no email)")
        if record:
            await store.record_unmatched_stripe_event(ws, event_id=event["id"], event_type=kind, customer_id=customer,
                                                      email=email, reason=reason, payload=payload)
        return {"status": "unmatched", "reason": reason, "customer": customer}
    answer: dict[str, Any] = {"status": "mapped"}
    if kind in MAPPINGS:
        name, read_metadata = MAPPINGS[kind]
        metadata = {k: v for k, v in read_metadata(obj).items() if v is not None}
        now = int(time.time())
        # Never strict: refusing a webhook makes Stripe retry it for days; drops are reported instead.
        new = validate_event({"event_name": name, "created_at": min(event["created"], now), "metadata": metadata},
                             strict=False, now=now, dedupe_key="stripe:" + event["id"])
        [result] = await store.append_events(AppendRequest(ws.id, contact.id, SOURCE, [new]))
        # Its posts and chats wait for the contact's next page view (a late webhook, over 10 minutes old, none).
        await for_server_events(store, ws, contact, [new], [result], source=SOURCE)
        answer = {"status": result.status, "event_name": name, "dropped": new.dropped,
                  **({"reason": result.reason} if result.reason else {})}
    if learned and customer and record:
        answer["caught_up"] = await catch_up(store, ws, customer)
    return answer


async def catch_up(store: SQLStore, ws: Workspace, customer: str) -> int:
    """Track the recorded unmatched webhooks of a customer that is now matched; returns how many."""
    done = 0
    for row in reversed(await store.unmatched_stripe_events(ws, customer_id=customer, limit=1000)):
        result = await apply_event(store, ws, json.loads(row["payload"]), row["payload"], record=False)
        if result["status"] != "unmatched":
            contact, _ = await match_contact(store, ws, customer, None)
            await store.resolve_unmatched_stripe_event(ws, row["stripe_event_id"], contact.id if contact else "")
            done += 1
    return done


async def retry_unmatched(store: SQLStore, ws: Workspace) -> tuple[int, int]:
    """Try every recorded unmatched webhook again (after contacts were added); ``(tracked, still unmatched)``."""
    tracked = left = 0
    for row in reversed(await store.unmatched_stripe_events(ws, limit=100_000)):
        if row["resolved_at"] is not None:
            continue
        event = json.loads(row["payload"])
        obj = event["data"]["object"]
        contact, _ = await match_contact(store, ws, customer_id(obj), customer_email(obj))
        if contact is None:
            left += 1
            continue
        await apply_event(store, ws, event, row["payload"], record=False)
        await store.resolve_unmatched_stripe_event(ws, row["stripe_event_id"], contact.id)
        tracked += 1
    return tracked, left


# ---------------------------------------------------------------- endpoints
def _signature_error(message: str) -> ApiError:
    return ApiError(400, "signature_invalid", message, "Stripe-Signature")


async def _verified_workspace(store: SQLStore, app_id: str | None, header: str | None,
                              payload: bytes) -> Workspace:
    now = int(time.time())
    if app_id is not None:
        ws = await store.workspace_by_app_id(app_id) if "\x00" not in app_id else None
        if ws is None:
            raise not_found("Unknown app_id", "app_id")
        secrets = await store.stripe_secrets(ws)
        if not secrets:
            raise _signature_error("No Stripe webhook secret is set for this workspace: "
                                   "run `trailmark stripe add-secret --app-id APP_ID whsec_…`")
        try:
            verify_signature(header, payload, secrets, now)
        except SignatureError as exc:
            raise _signature_error(str(exc)) from None
        return ws
    by_app: dict[str, list[str]] = {}
    for app, secret in await store.all_stripe_secrets():
        by_app.setdefault(app, []).append(secret)
    error = "No Stripe webhook secret is set: run `trailmark stripe add-secret`"
    for app, secrets in by_app.items():
        try:
            verify_signature(header, payload, secrets, now)
        except SignatureError as exc:
            error = str(exc)
            continue
        ws = await store.workspace_by_app_id(app)
        if ws is not None:
            return ws
    raise _signature_error(error)


async def webhook(request: Request) -> Response:
    """``POST /integrations/stripe/webhook[/{app_id}]`` → 200 ``{"received": true, "status": …}``;
    400 (error list) when the signature does not verify; nothing is stored then."""
    store: SQLStore = request.app.state.store
    payload = await read_body(request, MAX_PAYLOAD_BYTES)
    ws = await _verified_workspace(store, request.path_params.get("app_id"),
                                   request.headers.get("stripe-signature"), payload)
    event = read_stripe_event(payload)
    # json_object accepted it as UTF-8 (a BOM dropped): stored as that text, it reads back the same.
    result = await apply_event(store, ws, event, payload.decode("utf-8-sig"))
    return JSONResponse({"received": True, "id": event["id"], "type": event["type"], **result})


async def unmatched(request: Request) -> Response:
    """``GET /integrations/stripe/unmatched[?include_resolved=true&limit=100]`` (Bearer access token)."""
    ws = await rest_workspace(request)
    limit = int_param(request, "limit", 100)
    assert limit is not None
    if not 1 <= limit <= 1000:
        raise bad_request("limit must be between 1 and 1000", "limit")
    include = request.query_params.get("include_resolved", "").lower() == "true"
    rows = await request.app.state.store.unmatched_stripe_events(ws, include_resolved=include, limit=limit)
    return JSONResponse({"type": "list", "data": [{**{k: v for k, v in r.items() if k != "payload"},
                                                   "event": _stored_event(r["payload"])} for r in rows]})


def _stored_event(payload: str) -> Any:
    """A recorded payload, or null: rows recorded before the edge refused NaN (a signed payload may hold
    it) would otherwise make every listing fail, as no JSON answer can carry NaN."""
    try:
        return strict_json.loads(payload)
    except ValueError:
        return None
