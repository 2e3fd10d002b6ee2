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
    # Teammates hear about new conversations and contact replies (server/notify.py); both off until set.
    smtp_url: str | None = None  # smtp://user:pass@host:587 (STARTTLS), smtps://…:465, smtp+plain://host:25
    notify_from: str = "trailmark@localhost"
    webhook_url: str | None = None  # POSTed JSON for each notification
    webhook_secret: str | None = None  # signs the webhook body: X-Trailmark-Signature: sha256=<hex HMAC>
    new_visitors_per_minute: int = 120  # per client address (server/visitor_limit.py); 0 turns it off
    body_timeout_seconds: float = 10.0  # a request body still incomplete after this gets 408 (server/body_timeout.py)

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        values: dict[str, object] = {
            "database_url": os.environ.get("TRAILMARK_DATABASE_URL", "trailmark.db"),
            "public_url": os.environ.get("TRAILMARK_PUBLIC_URL") or None,
            "secret_key": os.environ.get("TRAILMARK_SECRET_KEY") or None,
            "smtp_url": os.environ.get("TRAILMARK_SMTP_URL") or None,
            "notify_from": os.environ.get("TRAILMARK_NOTIFY_FROM") or "trailmark@localhost",
            "webhook_url": os.environ.get("TRAILMARK_WEBHOOK_URL") or None,
            "webhook_secret": os.environ.get("TRAILMARK_WEBHOOK_SECRET") or None,
            "new_visitors_per_minute": int(os.environ.get("TRAILMARK_NEW_VISITORS_PER_MINUTE", "120")),
            "body_timeout_seconds": float(os.environ.get("TRAILMARK_BODY_TIMEOUT", "10")),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]
