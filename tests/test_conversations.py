"""Conversations and the inbox (server/messenger_conversations.py, server/store/conversations.py,
server/admin/inbox.py, server/notify.py): every message kept, a resend counted once, the team's reply seen by
the contact with an unread count, close/reopen/assign recorded, conversations following merges, and
teammates notified by email (a real local SMTP server) and webhook (a real local HTTP server)."""

from __future__ import annotations

import asyncio
import contextlib
import email
import hashlib
import hmac
import json
import shutil
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

from trailmark import identity
from trailmark.settings import Settings

from .test_admin import csrf_of, sign_in


async def write(h: Any, me: dict[str, Any], message: str, email_: str | None = "ada@example.com",
                **extra: Any) -> Any:
    body = {"app_id": h.workspace.app_id, "device": me["device"], "session": me["session"], "message": message,
            **({"email": email_} if email_ is not None else {}), **extra}
    return await h.client.post("/messenger/web/conversations", content=json.dumps(body))


async def thread(h: Any, session: str) -> dict[str, Any]:
    r = await h.client.post("/messenger/web/thread",
                            content=json.dumps({"app_id": h.workspace.app_id, "session": session}))
    assert r.status_code == 200, r.text
    return dict(r.json())


async def post_form(h: Any, path: str, page: str, **fields: str) -> Any:
    token = csrf_of((await h.client.get(page)).text)
    return await h.client.post(path, data={"csrf": token, **fields})


async def test_every_message_is_kept_in_one_open_conversation(harness):
    h = harness
    me = await h.visitor()
    first = await write(h, me, "Do you do invoices?")
    assert first.status_code == 200, first.text
    assert first.json()["contact"]["role"] == "lead" and first.json()["conversation"]["new"] is True
    lead = first.json()
    # Known by email now: the second message needs none.
    second = await write(h, lead, "And refunds?", email_=None)
    assert second.status_code == 200, second.text
    assert second.json()["conversation"] == {**first.json()["conversation"], "new": False}
    [conv] = await h.store.conversations.for_contact(h.workspace, lead["contact"]["id"])
    _, parts = await h.store.conversations.conversation(h.workspace, conv.id)
    assert [p.body for p in parts] == ["Do you do invoices?", "And refunds?"]


async def test_an_anonymous_visitor_must_leave_an_email(harness):
    h = harness
    me = await h.visitor()
    r = await write(h, me, "hello", email_=None)
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "email"
    assert await h.store.conversations.inbox(h.workspace) == []


async def test_a_resent_message_counts_once(harness):
    h = harness
    me = await h.visitor()
    answers = await asyncio.gather(*(write(h, me, "Only once", client_id="msg-1") for _ in range(3)))
    assert all(a.status_code == 200 for a in answers)
    assert sorted(a.json()["conversation"]["duplicate"] for a in answers) == [False, True, True]
    [conv] = await h.store.conversations.inbox(h.workspace)
    _, parts = await h.store.conversations.conversation(h.workspace, conv.id)
    assert [p.body for p in parts] == ["Only once"]
    bad = await write(h, me, "x", client_id="<script>")
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "client_id"


async def test_the_team_reply_reaches_the_contact_with_an_unread_count(harness):
    h = harness
    me = await h.visitor()
    lead = (await write(h, me, "Is there a student discount?")).json()
    assert (await sign_in(h)).status_code == 303
    inbox = await h.client.get("/admin/inbox")
    assert inbox.status_code == 200 and "Is there a student discount?" in inbox.text
    assert 'class="inbox-item unread"' in inbox.text
    [conv] = await h.store.conversations.inbox(h.workspace)
    page = f"/admin/inbox/{conv.id}"
    opened = await h.client.get(page)
    assert opened.status_code == 200 and "Recent events" in opened.text and "Reply by email" in opened.text
    assert 'class="inbox-item unread"' not in (await h.client.get("/admin/inbox")).text  # read now
    r = await post_form(h, f"{page}/reply", page, body="Yes: 20% with a student email.")
    assert r.status_code == 303
    ping = await h.ping(device=lead["device"], session=lead["session"])
    assert ping.json()["unread"] == 1
    seen = await thread(h, lead["session"])
    [c] = seen["conversations"]
    assert [(p["from"], p["body"]) for p in c["parts"]] == [
        ("you", "Is there a student discount?"), ("team", "Yes: 20% with a student email.")]
    assert c["parts"][1]["name"] == "Ada"  # the teammate ada@example.com
    assert (await h.ping(device=lead["device"], session=lead["session"])).json()["unread"] == 0


async def test_close_reopen_and_assign_are_recorded(harness):
    h = harness
    me = await h.visitor()
    await write(h, me, "Help")
    await sign_in(h)
    [conv] = await h.store.conversations.inbox(h.workspace)
    page = f"/admin/inbox/{conv.id}"
    await post_form(h, f"{page}/state", page, state="closed")
    assert await h.store.conversations.inbox(h.workspace) == []
    assert [c.id for c in await h.store.conversations.inbox(h.workspace, state="closed")] == [conv.id]
    teammate = (await h.store.teammates())[0]
    await post_form(h, f"{page}/assign", page, assignee=str(teammate.id))
    await post_form(h, f"{page}/reply", page, body="Reopening with an answer")  # a reply reopens
    found, parts = await h.store.conversations.conversation(h.workspace, conv.id)
    assert found.state == "open" and found.assignee_id == teammate.id
    assert [p.kind for p in parts] == ["comment", "close", "assign", "open", "comment"]
    mine = await h.client.get("/admin/inbox?assignee=me")
    assert f"/admin/inbox/{conv.id}" in mine.text
    shown = (await h.client.get(page)).text
    assert "Closed by ada@example.com" in shown and "Assigned to ada@example.com" in shown
    # A forged form (no CSRF token) changes nothing.
    r = await h.client.post(f"{page}/state", data={"state": "closed"})
    assert r.status_code == 403
    assert (await h.store.conversations.conversation(h.workspace, conv.id))[0].state == "open"


async def test_a_conversation_follows_its_lead_into_the_user(harness):
    h = harness
    me = await h.visitor()
    lead = (await write(h, me, "Before signing up")).json()
    user = await h.visitor(device=lead["device"], session=lead["session"], user={"user_id": "u-1"})
    assert user["contact"]["role"] == "user"
    contact = await h.store.find_contact(h.workspace, user_id="u-1")
    [conv] = await h.store.conversations.for_contact(h.workspace, contact.id)
    assert conv.preview == "Before signing up" and conv.owner_id == contact.id
    # The user writes again: same open conversation.
    again = await write(h, user, "After signing up", email_=None)
    assert again.json()["conversation"]["id"] == str(conv.id)


async def test_a_conversation_in_another_workspace_is_not_found(harness):
    h = harness
    me = await h.visitor()
    await write(h, me, "mine")
    other = await h.store.create_workspace("Other")
    [conv] = await h.store.conversations.inbox(h.workspace)
    assert await h.store.conversations.conversation(other, conv.id) is None
    await sign_in(h)
    assert (await h.client.get("/admin/inbox/999999")).status_code == 404
    assert (await h.client.get("/admin/inbox/²")).status_code == 404


async def test_a_forged_session_reads_no_thread(harness):
    h = harness
    me = await h.visitor()
    await write(h, me, "private")
    forged = identity.sign_session("not-the-key", me["contact"]["id"])
    assert (await thread(h, forged))["conversations"] == []


# ------------------------------------------------------------------ notifications
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def smtp_server() -> Iterator[tuple[int, list[Any]]]:
    from aiosmtpd.controller import Controller

    received: list[Any] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            received.append(envelope)
            return "250 OK"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, received
    finally:
        controller.stop()


@contextlib.contextmanager
def webhook_server() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    received: list[tuple[dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread_ = threading.Thread(target=server.serve_forever, daemon=True)
    thread_.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()


async def wait_for(items: list[Any], n: int) -> None:
    for _ in range(100):
        if len(items) >= n:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"expected {n} deliveries, got {len(items)}")


async def test_teammates_are_notified_by_email_and_webhook(harness):
    h = harness
    await h.store.create_teammate("team@example.com", "x")
    with smtp_server() as (port, mails), webhook_server() as (url, hooks):
        h.app.state.settings = Settings(database_url="unused", smtp_url=f"smtp+plain://127.0.0.1:{port}",
                                        notify_from="inbox@shop.example", webhook_url=url,
                                        webhook_secret="hook-secret", public_url="https://tm.shop.example")
        me = await h.visitor()
        lead = (await write(h, me, "First message", name="Grace")).json()
        await wait_for(mails, 1)
        await wait_for(hooks, 1)
        await write(h, lead, "Second message", email_=None)
        await wait_for(mails, 2)
        await wait_for(hooks, 2)
    mail = email.message_from_bytes(mails[0].content)
    assert mails[0].rcpt_tos == ["team@example.com"] and mail["From"] == "inbox@shop.example"
    assert mail["Subject"].startswith("New conversation from ada@example.com")
    assert "First message" in mail.get_payload() and "https://tm.shop.example/admin/inbox/" in mail.get_payload()
    assert email.message_from_bytes(mails[1].content)["Subject"] == "ada@example.com replied"
    headers, body = hooks[0]
    expected = "sha256=" + hmac.new(b"hook-secret", body, hashlib.sha256).hexdigest()
    assert headers["X-Trailmark-Signature"] == expected
    payload = json.loads(body)
    assert payload["topic"] == "conversation.user.created" and payload["data"]["item"]["body"] == "First message"
    assert json.loads(hooks[1][1])["topic"] == "conversation.user.replied"


async def test_a_failing_mail_server_never_fails_the_visitor(harness):
    h = harness
    await h.store.create_teammate("team@example.com", "x")
    h.app.state.settings = Settings(database_url="unused", smtp_url=f"smtp+plain://127.0.0.1:{free_port()}")
    me = await h.visitor()
    r = await write(h, me, "Still delivered to the inbox")
    assert r.status_code == 200
    for task in list(getattr(h.app.state, "notify_tasks", ())):
        await task  # logs the failure, raises nothing
    assert len(await h.store.conversations.inbox(h.workspace)) == 1


# ------------------------------------------------------------------ upgrade: the single message of v0.1.0
def test_messages_of_earlier_versions_become_conversations(tmp_path: Path) -> None:
    fixture = Path(__file__).parent / "fixtures" / "v0.1.0" / "trailmark.db"
    db = tmp_path / "old.db"
    shutil.copyfile(fixture, db)

    async def check() -> list[Any]:
        from trailmark.store import with_store

        async def read(store: Any) -> list[Any]:
            out = []
            for ws in await store.list_workspaces():
                out += await store.conversations.inbox(ws, state=None)
            return out

        return list(await with_store(str(db), read))

    conversations = asyncio.run(check())
    assert conversations, "the fixture has leads who wrote from the contact panel"
    assert all(c.preview and c.state == "open" and c.unread_by_team for c in conversations)

