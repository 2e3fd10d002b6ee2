"""Server settings, read once at start-up (command line first, then environment)."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    database_url: str = "trailmark.db"
    public_url: str | None = None  # the URL sites reach this server at; default: the request's own
    secret_key: str | None = None  # signs admin sessions; shared by every process (see docs/deploy.md)
    purge_interval_seconds: int = 3600

    @classmethod
    def from_env(cls, **overrides: object) -> "Settings":
        values: dict[str, object] = {
            "database_url": os.environ.get("TRAILMARK_DATABASE_URL", "trailmark.db"),
            "public_url": os.environ.get("TRAILMARK_PUBLIC_URL") or None,
            "secret_key": os.environ.get("TRAILMARK_SECRET_KEY") or None,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]
