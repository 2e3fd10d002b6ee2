"""Workspaces and their REST access tokens (a part of the store)."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ..tokens import PREFIX as TOKEN_PREFIX
from ..tokens import hash_token, new_access_token, token_hint
from .db import Conn, Database
from .models import (
    AccessToken,
    Workspace,
)
from .schema import token_placeholder
from .sql_helpers import DAY, now_s


class Workspaces:
    """Workspaces (read on every request, so cached briefly) and their REST access tokens."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._workspace_cache: dict[str, tuple[float, Workspace | None]] = {}

    # ---------------------------------------------------------------- workspaces
    async def create_workspace(self, name: str, allowed_origins: Sequence[str] = (),
                               app_id: str | None = None, *, enforce_identity_verification: bool = True) -> Workspace:
        """A new workspace and its first REST access token: the returned workspace carries that token in
        plain text, the only time it is known (only its hash is stored). Secure by default: a browser must
        prove a user's identity (user_hash or JWT) unless the operator opts out."""
        app_id = app_id or secrets.token_hex(4)
        created = now_s()
        token = new_access_token()

        async def job(conn: Conn) -> None:
            await conn.execute(
                "INSERT INTO workspaces (app_id, name, access_token, signing_key, identity_secret, "
                "allowed_origins, enforce_identity_verification, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (app_id, name, token_placeholder(app_id), secrets.token_urlsafe(32),
                 secrets.token_urlsafe(32), json.dumps(list(allowed_origins)), int(enforce_identity_verification),
                 created))
            row = await conn.fetch_one("SELECT id FROM workspaces WHERE app_id = ?", (app_id,))
            assert row is not None
            await _insert_token(conn, row["id"], "first token", token, created)

        await self.db.write(job)
        ws = await self.workspace_by_app_id(app_id, cached=False)
        assert ws is not None
        return replace(ws, access_token=token)

    # ---------------------------------------------------------------- REST access tokens
    async def create_access_token(self, workspace: Workspace, name: str) -> str:
        """A new token for ``workspace``: returned once, stored as a hash."""
        token = new_access_token()

        async def job(conn: Conn) -> None:
            await _insert_token(conn, workspace.id, name, token, now_s())

        await self.db.write(job)
        return token

    async def access_tokens(self, workspace: Workspace) -> list[AccessToken]:
        async with self.db.read() as conn:
            rows = await conn.fetch_all("SELECT * FROM access_tokens WHERE workspace_id = ? ORDER BY id",
                                        (workspace.id,))
        return [AccessToken.from_row(r) for r in rows]

    async def revoke_access_token(self, workspace: Workspace, token_id: int) -> bool:
        async def job(conn: Conn) -> int:
            return await conn.execute("UPDATE access_tokens SET revoked_at = ? WHERE id = ? AND workspace_id = ? "
                                      "AND revoked_at IS NULL", (now_s(), token_id, workspace.id))

        changed: int = await self.db.write(job)
        return changed > 0

    async def list_workspaces(self) -> list[Workspace]:
        async with self.db.read() as conn:
            rows = await conn.fetch_all("SELECT * FROM workspaces ORDER BY id")
        return [Workspace.from_row(r) for r in rows]

    async def workspace_by_app_id(self, app_id: str, cached: bool = True) -> Workspace | None:
        """Workspaces are read on every request: keep them 5 s in memory (other processes' edits
        show up within that time)."""
        hit = self._workspace_cache.get(app_id)
        if cached and hit and hit[0] > time.monotonic():
            return hit[1]
        async with self.db.read() as conn:
            row = await conn.fetch_one("SELECT * FROM workspaces WHERE app_id = ?", (app_id,))
        ws = Workspace.from_row(row) if row else None
        if len(self._workspace_cache) > 10_000:
            self._workspace_cache.clear()
        self._workspace_cache[app_id] = (time.monotonic() + 5.0, ws)
        return ws

    async def workspace_by_token(self, token: str) -> Workspace | None:
        """The workspace a live (not revoked) REST access token belongs to."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        async with self.db.read() as conn:
            row = await conn.fetch_one(
                "SELECT w.* FROM workspaces w JOIN access_tokens t ON t.workspace_id = w.id "
                "WHERE t.token_hash = ? AND t.revoked_at IS NULL", (hash_token(token),))
        return Workspace.from_row(row) if row else None

    async def update_workspace(self, workspace_id: int, **fields: Any) -> None:
        allowed = {"name", "allowed_origins", "enforce_identity_verification", "strict_metadata",
                   "retention_days", "identity_secret", "previous_identity_secret",
                   "previous_secret_expires_at", "browser_new_names_per_contact",
                   "browser_new_names_per_address", "browser_event_names", "consent_required",
                   "honour_gpc", "signing_key", "page_views"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"unknown workspace fields: {sorted(unknown)}")
        values = [json.dumps(list(v)) if k in ("allowed_origins", "browser_event_names") else
                  int(v) if isinstance(v, bool) else v for k, v in fields.items()]

        async def job(conn: Conn) -> None:
            sets = ", ".join(f"{k} = ?" for k in fields)
            await conn.execute(f"UPDATE workspaces SET {sets} WHERE id = ?", (*values, workspace_id))

        await self.db.write(job)
        self._workspace_cache.clear()

    async def rotate_identity_secret(self, workspace: Workspace, grace_seconds: int = 7 * DAY) -> str:
        """A new identity-verification secret; the old one keeps verifying for ``grace_seconds``."""
        secret = secrets.token_urlsafe(32)
        await self.update_workspace(workspace.id, identity_secret=secret,
                                    previous_identity_secret=workspace.identity_secret,
                                    previous_secret_expires_at=now_s() + grace_seconds)
        return secret

    async def rotate_signing_key(self, workspace: Workspace) -> None:
        """A new key for the device and session tokens: every token signed before reads as forged, so every
        browser starts again as a new visitor (users are identified again at their next boot). After a leak
        of the database, a copy of the old key can no longer forge tokens."""
        await self.update_workspace(workspace.id, signing_key=secrets.token_urlsafe(32))


async def _insert_token(conn: Conn, workspace_id: int, name: str, token: str, created: int) -> None:
    await conn.execute("INSERT INTO access_tokens (workspace_id, name, token_hash, hint, created_at) "
                       "VALUES (?, ?, ?, ?, ?)", (workspace_id, name, hash_token(token), token_hint(token), created))
