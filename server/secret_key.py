"""The key that signs teammates' admin sessions, kept out of the database: a copy of the database alone must
not let anyone forge a session.

- ``TRAILMARK_SECRET_KEY`` (``Settings.secret_key``) when set: required when several processes share
  PostgreSQL, since each would otherwise make its own;
- with SQLite, a key file beside the database (``<database>.secret-key``), created 0600 on first use;
- with PostgreSQL and no key set, a random key for this process: sessions end when it restarts (logged).
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

log = logging.getLogger("trailmark")


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def key_file_for(database_url: str) -> Path | None:
    """``<database>.secret-key`` for a SQLite file; None for PostgreSQL or an in-memory database."""
    from .store.db import sqlite_path

    if is_postgres(database_url):
        return None
    path = sqlite_path(database_url)
    if path in ("", ":memory:") or path.startswith("file:"):
        return None
    return Path(path + ".secret-key")


def read_or_create_key_file(path: Path) -> str:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        key = secrets.token_urlsafe(48)
        f.write(key + "\n")
    return key


def admin_session_key(secret_key: str | None, database_url: str) -> str:
    if secret_key:
        return secret_key
    key_file = key_file_for(database_url)
    if key_file is not None:
        return read_or_create_key_file(key_file)
    log.warning("TRAILMARK_SECRET_KEY is not set: admin sessions are signed with a key of this process only "
                "and end when it restarts (set it; several processes sharing PostgreSQL need the same key)")
    return secrets.token_urlsafe(48)
