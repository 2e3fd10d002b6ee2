"""REST access tokens: made here, shown once, stored only as a hash.

A token is 256 random bits (``tm_`` + URL-safe base64), so a plain SHA-256 is the right hash: nothing to
brute-force, and a lookup stays one indexed equality. The hint (first characters) lets an operator tell
tokens apart in ``trailmark token list`` without the token itself.
"""

from __future__ import annotations

import hashlib
import secrets

PREFIX = "tm_"


def new_access_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def token_hint(token: str) -> str:
    return token[:7] + "…"
