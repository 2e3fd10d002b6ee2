"""Who is sending: signed visitor/session tokens, and identity verification of users.

Tokens are itsdangerous ``TimestampSigner`` signatures over an id, keyed per workspace (the workspace's
``signing_key``, stored in the database so every server process shares it). The signed form is
``{id}.{timestamp}.{signature}``: the shim can read the id before the first dot (``getVisitorId``) but
cannot forge one. Two kinds, with different salts so one can never stand in for the other:

- the *device* token names the anonymous visitor id (cookie ``intercom-id-{app_id}``, 270 days);
- the *session* token names the contact events attach to (cookie ``intercom-session-{app_id}``, 7 days).

A token that is tampered with, expired, or signed by another workspace reads as ``None``: callers then
start a fresh visitor and never attach anything to the forged identity.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import time
from typing import Any

import jwt
from itsdangerous import BadSignature, TimestampSigner

DEVICE_MAX_AGE = 270 * 24 * 3600  # Intercom's intercom-id cookie lives 9 months
SESSION_MAX_AGE = 7 * 24 * 3600  # Intercom's intercom-session cookie lives one week
CLOCK_SKEW = 300  # servers behind one load balancer may disagree on the time by this much

# Ids that sites send by mistake when their user object is empty; never accepted as a user's identity.
GENERIC_USER_IDS = frozenset({
    "", "anonymous", "null", "undefined", "none", "nil", "0", "-1", "[object object]", "nan",
    "false", "true", "user", "guest", "unknown", "test",
})


# Custom attributes that tie a contact to an outside identity (the Stripe source matches customers on it):
# set only by server-side callers (REST, the access token), never from a browser or a browser-safe key.
SERVER_ONLY_ATTRIBUTES = frozenset({"stripe_customer_id"})


@functools.lru_cache(maxsize=256)
def _signer(key: str, kind: str) -> TimestampSigner:
    return TimestampSigner(key, salt=f"trailmark.{kind}", sep=".")


def sign_token(key: str, kind: str, value: str) -> str:
    return _signer(key, kind).sign(value).decode()


@functools.lru_cache(maxsize=8192)
def _verified(key: str, kind: str, token: str) -> tuple[str, float] | None:
    """(id, signed at) of a token whose signature checks out. Cached: a visitor sends the same session
    token with every event, and checking the HMAC (with its key derivation) is most of a request's
    identity cost. The age is checked by the caller on every use, so the cache never extends a token."""
    try:
        value, signed_at = _signer(key, kind).unsign(token, return_timestamp=True)
        return value.decode(), signed_at.timestamp()
    except (BadSignature, UnicodeDecodeError, ValueError):
        return None


def read_token(key: str, kind: str, token: Any, max_age: int) -> str | None:
    """The id a token names, or None when it is missing, malformed, forged, foreign or expired."""
    if not isinstance(token, str) or not token or len(token) > 512:
        return None
    verified = _verified(key, kind, token)
    if verified is None:
        return None
    age = time.time() - verified[1]
    if not -CLOCK_SKEW <= age <= max_age:  # expired, or signed in the future by more than clock skew explains
        return None
    return verified[0]


def sign_device(key: str, visitor_id: str) -> str:
    return sign_token(key, "device", visitor_id)


def read_device(key: str, token: Any) -> str | None:
    return read_token(key, "device", token, DEVICE_MAX_AGE)


def sign_session(key: str, contact_id: str) -> str:
    return sign_token(key, "session", contact_id)


def read_session(key: str, token: Any) -> str | None:
    return read_token(key, "session", token, SESSION_MAX_AGE)


def is_generic_user_id(user_id: str) -> bool:
    return user_id.strip().lower() in GENERIC_USER_IDS


def user_hash(secret: str, identity: str) -> str:
    """Intercom's ``user_hash``: hex HMAC-SHA256 of the user_id (or of the email when no user_id)."""
    return hmac.new(secret.encode(), identity.encode(), hashlib.sha256).hexdigest()


def verify_user_hash(secrets: list[str], identity: str, given: Any) -> bool:
    """Constant-time check against every currently valid secret (rotation keeps the old one a while)."""
    if not isinstance(given, str) or not given:
        return False
    given_bytes = given.strip().lower().encode()
    ok = False
    for secret in secrets:
        ok |= hmac.compare_digest(user_hash(secret, identity).encode(), given_bytes)
    return ok


MAX_JWT_LENGTH = 8192


def verify_jwt(secrets: list[str], token: Any) -> dict[str, Any] | None:
    """Claims of an ``intercom_user_jwt`` signed with HS256 by one of ``secrets``, or None.

    PyJWT checks the signature with the algorithm pinned to HS256 (``alg: none``, HS512 or RS256 are refused),
    ``exp`` and ``nbf`` when present (against this server's clock), and that ``user_id`` is there;
    ``user_id`` must then be a non-empty string or an integer.
    """
    if not isinstance(token, str) or not token or len(token) > MAX_JWT_LENGTH:
        return None
    for secret in secrets:  # the current secret, and the previous one during a rotation's grace period
        try:
            claims: dict[str, Any] = jwt.decode(token, secret, algorithms=["HS256"],
                                                options={"require": ["user_id"], "verify_aud": False})
        except jwt.InvalidSignatureError:
            continue
        except jwt.PyJWTError:
            return None
        user_id = claims.get("user_id")
        if not isinstance(user_id, (str, int)) or isinstance(user_id, bool) or not str(user_id).strip():
            return None
        claims["user_id"] = str(user_id)
        return claims
    return None
