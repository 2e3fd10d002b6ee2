"""Teammates hear about conversations without watching the inbox: an email through the operator's SMTP server,
and an optional outgoing webhook. Both are off until configured (``TRAILMARK_SMTP_URL``,
``TRAILMARK_WEBHOOK_URL``; server/settings.py).

Delivery runs in the background after the visitor has their answer: a slow or failing mail server never
delays or fails the Messenger. Failures are logged, not retried (the inbox still shows everything).

Webhook body (Intercom's topic names): ``{"type": "notification_event", "topic": "conversation.user.created"
| "conversation.user.replied", "app_id", "created_at", "data": {"item": {...}}}``, signed with
``X-Trailmark-Signature: sha256=<hex HMAC-SHA256 of the body>`` when ``TRAILMARK_WEBHOOK_SECRET`` is set.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import smtplib
import ssl
import time
import urllib.request
from email.message import EmailMessage
from typing import Any
from urllib.parse import unquote, urlsplit

from .store.conversations import NewMessage
from .store.models import Contact, Workspace

log = logging.getLogger("trailmark.notify")
SMTP_TIMEOUT = 10
WEBHOOK_TIMEOUT = 5


def notify_contact_message(app: Any, ws: Workspace, contact: Contact, added: NewMessage, body: str) -> None:
    """Start delivering the notification for a contact's message, if anything is configured."""
    settings = app.state.settings
    if not settings.smtp_url and not settings.webhook_url:
        return
    tasks: set[asyncio.Task[None]] | None = getattr(app.state, "notify_tasks", None)
    if tasks is None:
        tasks = app.state.notify_tasks = set()
    task = asyncio.create_task(_deliver(app, ws, contact, added, body))
    tasks.add(task)  # keep a reference until done (the loop holds tasks weakly)
    task.add_done_callback(tasks.discard)


async def _deliver(app: Any, ws: Workspace, contact: Contact, added: NewMessage, body: str) -> None:
    settings = app.state.settings
    topic = "conversation.user.created" if added.new_conversation else "conversation.user.replied"
    base = (settings.public_url or "").rstrip("/")
    link = f"{base}/admin/inbox/{added.conversation_id}" if base else f"/admin/inbox/{added.conversation_id}"
    who = contact.name or contact.email or f"a {contact.role}"
    try:
        if settings.smtp_url:
            teammates = [t.email for t in await app.state.store.teammates()]
            if teammates:
                subject = (f"New conversation from {who}" if added.new_conversation else f"{who} replied")
                text = f"{body}\n\n— {who} ({contact.email or 'no email'}), {ws.name}\nReply in the inbox: {link}\n"
                await asyncio.to_thread(send_email, settings.smtp_url, settings.notify_from, teammates, subject, text)
        if settings.webhook_url:
            payload = {"type": "notification_event", "topic": topic, "app_id": ws.app_id,
                       "created_at": int(time.time()),
                       "data": {"item": {"type": "conversation", "id": str(added.conversation_id), "url": link,
                                         "contact": {"id": contact.id, "role": contact.role, "email": contact.email,
                                                     "name": contact.name},
                                         "body": body}}}
            await asyncio.to_thread(post_webhook, settings.webhook_url, settings.webhook_secret, payload)
    except Exception:  # a notification never breaks anything: the inbox has it all
        log.exception("notification for conversation %s failed", added.conversation_id)


def send_email(smtp_url: str, sender: str, recipients: list[str], subject: str, text: str) -> None:
    """One plain-text email through ``smtp_url``: ``smtps://`` (TLS), ``smtp://`` (STARTTLS, required),
    ``smtp+plain://`` (no TLS: a relay on the same host only)."""
    url = urlsplit(smtp_url)
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, ", ".join(recipients), subject
    message.set_content(text)
    host = url.hostname or "localhost"
    if url.scheme == "smtps":
        client: smtplib.SMTP = smtplib.SMTP_SSL(host, url.port or 465, timeout=SMTP_TIMEOUT,
                                                context=ssl.create_default_context())
    elif url.scheme in ("smtp", "smtp+plain"):
        client = smtplib.SMTP(host, url.port or (587 if url.scheme == "smtp" else 25), timeout=SMTP_TIMEOUT)
    else:
        raise ValueError(f"TRAILMARK_SMTP_URL must start with smtp://, smtps:// or smtp+plain://, not {url.scheme}")
    with client:
        if url.scheme == "smtp":
            client.starttls(context=ssl.create_default_context())
        if url.username:
            client.login(unquote(url.username), unquote(url.password or ""))
        client.send_message(message)


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_webhook(url: str, secret: str | None, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "Trailmark-Webhook"}
    if secret:
        headers["X-Trailmark-Signature"] = sign(secret, body)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT) as answer:  # the operator's own URL (bandit S310)
        answer.read()
