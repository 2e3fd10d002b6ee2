"""Teammate sign-in: password hashes, the signed session cookie, CSRF tokens (the throttle: throttle.py).

- Passwords: scrypt (N=2^14, r=8, p=5: one of the OWASP Password Storage Cheat Sheet's configurations)
  with a 16-byte random salt per password, stored as ``scrypt$N$r$p$salt$hash`` so the cost can rise
  later without breaking old hashes; compared in constant time. An unknown email costs the same hash.
  Hashes run in threads, at most ``MAX_CONCURRENT_HASHES`` at once: a burst of sign-ins must not take every
  core (and the default thread pool) from the requests the server is for.
- The session: a cookie signed with itsdangerous (HMAC) under the server's secret key — the setting
  ``TRAILMARK_SECRET_KEY``, or else a key file beside a SQLite database (server/secret_key.py): never in the
  database, so a copy of it cannot forge a session. HttpOnly, SameSite=Lax, Path=/admin, Secure on https,
  14 days. It holds the teammate id, a fingerprint of the password hash (changing the password signs
  every session out), the teammate's session version (signing out, or "Sign out everywhere", raises it:
  every cookie issued before, copies included, is refused from then on), the chosen workspace and the CSRF
  token.
- CSRF: every form carries the session's token; every POST is refused (403) without the same token.
  The sign-in form too: its token lives in the same cookie before anyone signs in, and signing in
  issues a fresh one.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import weakref
from dataclasses import asdict, dataclass, replace
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from ..secret_key import admin_session_key

COOKIE = "trailmark_admin"
SESSION_DAYS = 14
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 5
_SCRYPT_MAXMEM = 64 * 1024 * 1024
MIN_PASSWORD_LENGTH = 10
MAX_CONCURRENT_HASHES = 2


# ------------------------------------------------------------------------------------------ passwords
def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=_SCRYPT_MAXMEM, dklen=32)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check of ``password`` against a stored ``scrypt$…`` hash (False for any other)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(digest)
        actual = hashlib.scrypt(password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p),
                                maxmem=_SCRYPT_MAXMEM, dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


async def verify_password_async(password: str, stored: str | None) -> bool:
    """:func:`verify_password` in a thread, at most ``MAX_CONCURRENT_HASHES`` at once (a hash takes ~0.1 s
    of a core). ``stored=None`` (no such teammate) hashes anyway, so a wrong email takes as long as a wrong
    password."""
    async with _hash_gate():
        if stored is None:
            await asyncio.to_thread(lambda: verify_password(password, _dummy_hash()))
            return False
        return await asyncio.to_thread(verify_password, password, stored)


# One gate per event loop (a semaphore belongs to the loop it first waits on; tests run several loops).
_GATES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def _hash_gate() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    gate = _GATES.get(loop)
    if gate is None:
        gate = _GATES[loop] = asyncio.Semaphore(MAX_CONCURRENT_HASHES)
    return gate


def password_problem(password: str) -> str | None:
    """Why a new password is refused, or ``None``."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"the password must be at least {MIN_PASSWORD_LENGTH} characters long"
    if len(password) > 1024:
        return "the password must be at most 1024 characters long"
    return None


_DUMMY: list[str] = []


def _dummy_hash() -> str:
    if not _DUMMY:
        _DUMMY.append(hash_password(secrets.token_urlsafe(16)))
    return _DUMMY[0]


def fingerprint(password_hash: str) -> str:
    """A short tag of the stored hash: sessions carry it, so a new password ends the old sessions."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# ------------------------------------------------------------------------------------------ the session
@dataclass(frozen=True)
class Session:
    csrf: str
    teammate_id: int | None = None
    password: str | None = None  # fingerprint() of the password hash at sign-in
    version: int = 0  # the teammate's session_version at sign-in
    app_id: str | None = None  # the workspace picked in the nav
    flash: str | None = None  # a one-time notice for the next page
    flash_error: bool = False

    @classmethod
    def fresh(cls) -> Session:
        return cls(csrf=secrets.token_urlsafe(32))

    def signed_in(self, teammate_id: int, password_hash: str, version: int) -> Session:
        """A new session for a teammate who just signed in (a new CSRF token: no fixation)."""
        return Session(csrf=secrets.token_urlsafe(32), teammate_id=teammate_id,
                       password=fingerprint(password_hash), version=version, app_id=self.app_id)

    def with_flash(self, message: str | None, error: bool = False) -> Session:
        return replace(self, flash=message, flash_error=error)


class SessionCodec:
    """Signs and checks the session cookie."""

    def __init__(self, secret_key: str) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt="trailmark.admin.session")

    def load(self, request: Request) -> Session | None:
        raw = request.cookies.get(COOKIE)
        if not raw:
            return None
        try:
            data: Any = self._serializer.loads(raw, max_age=SESSION_DAYS * 86400)
            return Session(**data) if isinstance(data, dict) else None
        except (BadSignature, TypeError):
            return None

    def save(self, request: Request, response: Response, session: Session) -> None:
        response.set_cookie(COOKIE, self._serializer.dumps(asdict(session)), max_age=SESSION_DAYS * 86400,
                            path="/admin", httponly=True, samesite="lax", secure=request.url.scheme == "https")


def csrf_ok(session: Session | None, token: Any) -> bool:
    if session is None or not isinstance(token, str) or not token:
        return False
    return hmac.compare_digest(token.encode(), session.csrf.encode())


async def session_codec(request: Request) -> SessionCodec:
    """The app's codec, keyed by ``settings.secret_key`` or the key file beside a SQLite database
    (server/secret_key.py): never a key stored in the database itself."""
    state = request.app.state
    codec: SessionCodec | None = getattr(state, "admin_session_codec", None)
    if codec is None:
        key = admin_session_key(state.settings.secret_key, state.settings.database_url)
        codec = SessionCodec(key)
        state.admin_session_codec = codec
    return codec
