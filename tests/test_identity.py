"""Signed device/session tokens, ``user_hash`` and ``intercom_user_jwt`` (server/identity.py).

Every way a token can be wrong — tampered, expired, signed by another workspace, the other kind — reads
as ``None``, so the caller starts a fresh visitor instead of trusting it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from itsdangerous import TimestampSigner

from trailmark import identity
from trailmark.identity import (
    DEVICE_MAX_AGE,
    SESSION_MAX_AGE,
    is_generic_user_id,
    read_device,
    read_session,
    sign_device,
    sign_session,
    user_hash,
    verify_jwt,
    verify_user_hash,
)
from trailmark.store.models import Workspace

KEY = "workspace-one-signing-key"
OTHER_KEY = "workspace-two-signing-key"
VISITOR = "3ecf64d0-8c1f-4d4a-9d59-0a6b1c2d3e4f"
CONTACT = "6762f0d01bb69f9f2193bb7d"


# ------------------------------------------------------------------ device and session tokens
def test_device_token_round_trips_and_shows_the_visitor_id_before_the_first_dot() -> None:
    token = sign_device(KEY, VISITOR)
    assert read_device(KEY, token) == VISITOR
    assert token.split(".")[0] == VISITOR  # what Intercom('getVisitorId') returns
    assert token.count(".") == 2  # {id}.{timestamp}.{signature}


def test_session_token_round_trips() -> None:
    token = sign_session(KEY, CONTACT)
    assert read_session(KEY, token) == CONTACT
    assert token.startswith(CONTACT + ".")


def _flip(ch: str) -> str:
    return "A" if ch != "A" else "B"


TAMPERINGS = {
    # Not the last character: its low bits are base64 padding, so some changes decode to the same bytes.
    "signature_second_to_last_char": lambda t: t[:-2] + _flip(t[-2]) + t[-1],
    "signature_first_char": lambda t: ".".join([*t.split(".")[:2], _flip(t.split(".")[2][0]) + t.split(".")[2][1:]]),
    "other_id_same_signature": lambda t: "0" + t[1:],
    "timestamp_changed": lambda t: ".".join([t.split(".")[0], _flip(t.split(".")[1][0]) + t.split(".")[1][1:],
                                             t.split(".")[2]]),
    "signature_removed": lambda t: t.rsplit(".", 1)[0],
    "id_only": lambda t: t.split(".")[0],
    "extra_part": lambda t: "x." + t,
    "trailing_garbage": lambda t: t + "x",
    "empty": lambda t: "",
    "dots_only": lambda t: "..",
    "too_long": lambda t: "a" * 600 + t,
}


@pytest.mark.parametrize("tamper", TAMPERINGS.values(), ids=TAMPERINGS.keys())
def test_tampered_token_reads_as_none(tamper: Any) -> None:
    device, session = sign_device(KEY, VISITOR), sign_session(KEY, CONTACT)
    assert tamper(device) != device
    assert read_device(KEY, tamper(device)) is None
    assert read_session(KEY, tamper(session)) is None


@pytest.mark.parametrize("token", [None, 123, 1.5, True, ["a.b.c"], {"t": "a.b.c"}, b"bytes.token.x"],
                         ids=["none", "int", "float", "bool", "list", "dict", "bytes"])
def test_non_string_token_reads_as_none(token: Any) -> None:
    assert read_device(KEY, token) is None
    assert read_session(KEY, token) is None


def test_token_from_another_workspace_reads_as_none() -> None:
    assert read_device(KEY, sign_device(OTHER_KEY, VISITOR)) is None
    assert read_session(KEY, sign_session(OTHER_KEY, CONTACT)) is None


def test_device_and_session_tokens_cannot_stand_in_for_each_other() -> None:
    assert read_session(KEY, sign_device(KEY, CONTACT)) is None
    assert read_device(KEY, sign_session(KEY, VISITOR)) is None


def test_token_signed_with_the_same_key_but_without_our_salt_reads_as_none() -> None:
    plain = TimestampSigner(KEY, sep=".").sign(VISITOR).decode()
    assert read_device(KEY, plain) is None
    assert read_session(KEY, plain) is None


def _signed_in_the_past(monkeypatch: pytest.MonkeyPatch, age: int, sign: Any, value: str) -> str:
    """A token whose timestamp is ``age`` seconds old: itsdangerous takes the time from get_timestamp."""
    past = int(time.time()) - age
    with monkeypatch.context() as m:
        m.setattr(TimestampSigner, "get_timestamp", lambda self: past)
        return str(sign(KEY, value))


@pytest.mark.parametrize(("sign", "read", "max_age", "value"), [
    (sign_device, read_device, DEVICE_MAX_AGE, VISITOR),
    (sign_session, read_session, SESSION_MAX_AGE, CONTACT),
], ids=["device", "session"])
def test_expired_token_reads_as_none_and_a_fresh_one_does_not(
        monkeypatch: pytest.MonkeyPatch, sign: Any, read: Any, max_age: int, value: str) -> None:
    expired = _signed_in_the_past(monkeypatch, max_age + 3600, sign, value)
    almost = _signed_in_the_past(monkeypatch, max_age - 3600, sign, value)
    assert read(KEY, expired) is None
    assert read(KEY, almost) == value


def test_lifetimes_follow_intercoms_cookies() -> None:
    assert DEVICE_MAX_AGE == 270 * 86400
    assert SESSION_MAX_AGE == 7 * 86400


# ------------------------------------------------------------------ user_hash
def test_user_hash_is_hex_hmac_sha256_of_the_identity() -> None:
    # Vectors from `printf 42 | openssl dgst -sha256 -hmac secret-key`.
    assert user_hash("secret-key", "42") == "a9bc6917caaddc7315fc2a64edca506b77458b6ffa467d57d6865743994a21e9"
    assert user_hash("secret-key", "ada@example.com") == \
        "9dee78a847c3fa00f97226307ca36029e231e9d2cdc7b9931162864b334e4486"


GOOD = user_hash("current", "42")
OLD = user_hash("previous", "42")


@pytest.mark.parametrize(("secrets", "given", "ok"), [
    (["current"], GOOD, True),
    (["current"], GOOD.upper(), True),
    (["current"], f"  {GOOD}\n", True),
    (["current", "previous"], OLD, True),  # rotation: the old secret verifies during its grace period
    (["current", "previous"], GOOD, True),
    (["current"], OLD, False),  # grace period over
    ([], GOOD, False),
    (["current"], user_hash("current", "43"), False),  # another user's hash
    (["current"], GOOD[:-1], False),
    (["current"], GOOD[:-1] + ("0" if GOOD[-1] != "0" else "1"), False),
    (["current"], "", False),
    (["current"], None, False),
    (["current"], 42, False),
    (["current"], ["a9bc"], False),
], ids=["match", "upper-case", "whitespace", "rotation-old", "rotation-new", "old-after-grace", "no-secrets",
        "other-user", "truncated", "one-char-off", "empty", "none", "int", "list"])
def test_verify_user_hash(secrets: list[str], given: Any, ok: bool) -> None:
    assert verify_user_hash(secrets, "42", given) is ok


def test_verify_user_hash_compares_in_constant_time_against_every_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)  # the module identity calls it from
    # A match on the first secret must not short-circuit (no timing hint on which secret matched).
    assert verify_user_hash(["current", "previous", "third"], "42", GOOD)
    assert len(calls) == 3
    assert all(b == GOOD.encode() for _, b in calls)


def test_workspace_offers_the_previous_secret_only_during_its_grace_period() -> None:
    def ws(previous: str | None, expires: int | None) -> Workspace:
        return Workspace(id=1, app_id="a", name="n", access_token="t", signing_key="k", identity_secret="current",
                         previous_identity_secret=previous, previous_secret_expires_at=expires,
                         enforce_identity_verification=False, strict_metadata=False, allowed_origins=(),
                         retention_days=90, created_at=0)

    assert ws("previous", 2000).identity_secrets(1000) == ["current", "previous"]
    assert ws("previous", 1000).identity_secrets(1000) == ["current"]
    assert ws("previous", None).identity_secrets(1000) == ["current"]
    assert ws(None, 2000).identity_secrets(1000) == ["current"]


# ------------------------------------------------------------------ intercom_user_jwt
NOW = int(time.time())  # PyJWT checks exp/nbf against the real clock
LATER = 30 * 86400  # far enough that a long test run (tokens are made at import) never reaches it
CURRENT, PREVIOUS, OTHER = ("current-secret-" + "c" * 32, "previous-secret-" + "p" * 32, "someone-else-" + "o" * 32)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(claims: Any, secret: str = CURRENT, header: dict[str, Any] | None = None) -> str:
    head = b64(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


def test_valid_jwt_gives_its_claims_with_a_string_user_id() -> None:
    claims = verify_jwt([CURRENT], make_jwt({"user_id": "42", "email": "a@b.c", "exp": NOW + LATER}))
    assert claims == {"user_id": "42", "email": "a@b.c", "exp": NOW + LATER}


def test_numeric_user_id_claim_becomes_a_string() -> None:
    claims = verify_jwt([CURRENT], make_jwt({"user_id": 42}))
    assert claims is not None and claims["user_id"] == "42"


def test_jwt_signed_with_the_previous_secret_verifies_during_rotation() -> None:
    token = make_jwt({"user_id": "42"}, secret=PREVIOUS)
    assert verify_jwt([CURRENT, PREVIOUS], token) is not None
    assert verify_jwt([CURRENT], token) is None


def _tamper_body(token: str) -> str:
    head, _, sig = token.split(".")
    return f"{head}.{b64(json.dumps({'user_id': 'admin'}).encode())}.{sig}"


BAD_JWTS = {
    "expired": make_jwt({"user_id": "42", "exp": NOW - 1}),
    "not_yet_valid": make_jwt({"user_id": "42", "nbf": NOW + LATER}),
    "exp_not_a_number": make_jwt({"user_id": "42", "exp": "tomorrow"}),
    "nbf_not_a_number": make_jwt({"user_id": "42", "nbf": "yesterday"}),
    "alg_none": make_jwt({"user_id": "42"}, header={"alg": "none"}),
    "alg_hs512": make_jwt({"user_id": "42"}, header={"alg": "HS512"}),
    "alg_rs256": make_jwt({"user_id": "42"}, header={"alg": "RS256"}),
    "no_alg": make_jwt({"user_id": "42"}, header={"typ": "JWT"}),
    "no_user_id": make_jwt({"email": "a@b.c"}),
    "empty_user_id": make_jwt({"user_id": "  "}),
    "bool_user_id": make_jwt({"user_id": True}),
    "object_user_id": make_jwt({"user_id": {"id": 42}}),
    "wrong_secret": make_jwt({"user_id": "42"}, secret=OTHER),
    "tampered_claims": _tamper_body(make_jwt({"user_id": "42"})),
    "signature_stripped": make_jwt({"user_id": "42"}).rsplit(".", 1)[0] + ".",
    "two_parts": make_jwt({"user_id": "42"}).rsplit(".", 1)[0],
    "four_parts": make_jwt({"user_id": "42"}) + ".x",
    "not_base64": "%%%.%%%.%%%",
    "not_json": f"{b64(b'not json')}.{b64(b'nope')}.{b64(b'sig')}",
    "claims_a_list": make_jwt([{"user_id": "42"}]),
    "too_long": make_jwt({"user_id": "42", "pad": "x" * 9000}),
    "empty": "",
    "not_a_string": 42,
}


@pytest.mark.parametrize("token", BAD_JWTS.values(), ids=BAD_JWTS.keys())
def test_bad_jwt_reads_as_none(token: Any) -> None:
    assert verify_jwt([CURRENT], token) is None


def test_nbf_and_exp_bound_the_validity_window() -> None:
    assert verify_jwt([CURRENT], make_jwt({"user_id": "42", "nbf": NOW - 10, "exp": NOW + LATER})) is not None
    assert verify_jwt([CURRENT], make_jwt({"user_id": "42", "nbf": NOW + LATER, "exp": NOW + 2 * LATER})) is None
    assert verify_jwt([CURRENT], make_jwt({"user_id": "42", "nbf": NOW - 600, "exp": NOW - 10})) is None


# ------------------------------------------------------------------ generic user ids
@pytest.mark.parametrize("user_id", ["", "   ", "anonymous", "NULL", " undefined ", "None", "0", "-1",
                                     "[object Object]", "NaN", "false", "true", "guest", "unknown", "test"])
def test_placeholder_user_ids_are_generic(user_id: str) -> None:
    assert is_generic_user_id(user_id)


@pytest.mark.parametrize("user_id", ["42", "user-42", "ada@example.com", "00", "testing", "null-pointer",
                                     "6762f0d01bb69f9f2193bb7d"])
def test_real_user_ids_are_not_generic(user_id: str) -> None:
    assert not is_generic_user_id(user_id)


def test_a_token_signed_in_the_future_is_refused_beyond_clock_skew(monkeypatch):
    """The cache of verified tokens checks the age on every use, in both directions."""
    token = identity.sign_session("future-key", "contact-1")
    assert identity.read_session("future-key", token) == "contact-1"
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now - identity.CLOCK_SKEW - 60)
    assert identity.read_session("future-key", token) is None  # signed "later" than skew explains
    monkeypatch.setattr(time, "time", lambda: now + identity.SESSION_MAX_AGE + 60)
    assert identity.read_session("future-key", token) is None  # expired, though cached as verified
    monkeypatch.setattr(time, "time", lambda: now + 60)
    assert identity.read_session("future-key", token) == "contact-1"
