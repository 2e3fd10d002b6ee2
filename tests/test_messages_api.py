"""Messages as code and over REST, on both stores: ``trailmark message apply|list|state|settings``, the
``/trailmark/messages`` resource (422 by JSON pointer, nothing applied), and Intercom's ``POST /messages`` (a
chat pending for the next page view and a comment in the contact's conversation, HTML sanitised)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from trailmark import cli
from trailmark.admin import auth
from trailmark.store import open_store

DOC: dict[str, Any] = {
    "key": "upload-done",
    "kind": "banner",
    "state": "live",
    "trigger": {
        "event": "upload-complete",
        "when": "every_time",
        "metadata": [{"key": "type", "op": "eq", "value": "JPEG"}],
    },
    "audience": {"roles": ["visitor", "lead", "user"]},
    "frequency": {"max": 2, "per_days": 1},
    "content": {
        "text": "Your {{event.type}} upload is ready",
        "button": {"label": "Share it", "url": "https://example.org/share"},
    },
    "banner": {"position": "top", "dismissible": True},
}
POST = {
    "key": "welcome",
    "kind": "post",
    "trigger": {"event": "signed-up"},
    "content": {"title": "Welcome", "body": 'Hi {{contact.name | fallback: "there"}}'},
}


# ------------------------------------------------------------------------------------------ the CLI
async def test_cli_apply_is_idempotent_and_list_output_applies_elsewhere(store_url, tmp_path, capsys):
    def run(*argv: str) -> Any:
        return asyncio.to_thread(cli.main, list(argv))  # the CLI runs its own loop

    assert await run("workspace", "create", "--name", "A", "--database", store_url) == 0
    capsys.readouterr()
    path = tmp_path / "messages.json"
    path.write_text(json.dumps([DOC, POST]))
    assert await run("message", "apply", str(path), "--database", store_url) == 0
    assert capsys.readouterr().out.split() == ["created", "upload-done", "created", "welcome"]
    assert await run("message", "apply", str(path), "--database", store_url) == 0
    assert capsys.readouterr().out.split() == ["unchanged", "upload-done", "unchanged", "welcome"]
    assert await run("message", "list", "--json", "--database", store_url) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [d["key"] for d in listed] == ["upload-done", "welcome"] and listed[1]["state"] == "draft"
    # The listing applies as it is, and changes nothing.
    path.write_text(json.dumps(listed))
    assert await run("message", "apply", str(path), "--database", store_url) == 0
    assert capsys.readouterr().out.split() == ["unchanged", "upload-done", "unchanged", "welcome"]
    assert await run("message", "state", "welcome", "live", "--database", store_url) == 0
    assert "welcome: live" in capsys.readouterr().out
    assert await run("message", "settings", "--gap-minutes", "30", "--database", store_url) == 0
    assert "30 minutes" in capsys.readouterr().out
    assert await run("message", "list", "--database", store_url) == 0
    assert "welcome" in capsys.readouterr().out


async def test_cli_apply_refuses_an_invalid_file_whole(store_url, tmp_path, capsys):
    def run(*argv: str) -> Any:
        return asyncio.to_thread(cli.main, list(argv))

    assert await run("workspace", "create", "--name", "A", "--database", store_url) == 0
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([POST, {**DOC, "kind": "popup", "frequency": {"max": 0}}]))
    capsys.readouterr()
    assert await run("message", "apply", str(path), "--database", store_url) == 1
    err = capsys.readouterr().err
    assert f"{path}#/1/kind: must be one of banner, post, chat" in err
    assert f"{path}#/1/frequency/max: must be between 1 and 1000" in err and "nothing applied" in err
    store = open_store(store_url)
    await store.open()
    try:
        [ws] = await store.list_workspaces()
        assert await store.messages.list(ws) == []  # the valid first document was not applied either
    finally:
        await store.close()
    path.write_text("{not json")
    assert await run("message", "apply", str(path), "--database", store_url) == 1
    assert "cannot read JSON" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ /trailmark/messages
async def test_the_rest_resource(harness):
    c, auth_header = harness.client, harness.auth
    assert (await c.get("/trailmark/messages")).status_code == 401
    r = await c.put("/trailmark/messages/upload-done", json=DOC, headers=auth_header)
    assert r.status_code == 201 and r.json()["trigger"]["event"] == "upload-complete"
    assert r.headers["x-ratelimit-limit"]
    r = await c.put("/trailmark/messages/upload-done", json=DOC, headers=auth_header)
    assert r.status_code == 200
    r = await c.get("/trailmark/messages/upload-done", headers=auth_header)
    assert r.status_code == 200 and r.json()["schedule"] == {"timezone": "UTC"}
    assert (await c.get("/trailmark/messages/nope", headers=auth_header)).status_code == 404
    r = await c.post("/trailmark/messages", json={"messages": [DOC, POST]}, headers=auth_header)
    assert [(x["key"], x["outcome"]) for x in r.json()["data"]] == [
        ("upload-done", "unchanged"),
        ("welcome", "created"),
    ]
    listed = (await c.get("/trailmark/messages", headers=auth_header)).json()
    assert [d["key"] for d in listed["data"]] == ["upload-done", "welcome"]
    r = await c.put("/trailmark/messages/other", json=DOC, headers=auth_header)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "/key"


async def test_an_invalid_document_is_422_by_pointer_and_nothing_is_applied(harness):
    c, auth_header = harness.client, harness.auth
    bad = {
        **DOC,
        "trigger": {"event": "x", "metadata": [{"key": "n", "op": "gt", "value": "five"}]},
        "content": {"text": "Hi {{user.name}}"},
    }
    r = await c.post("/trailmark/messages", json={"messages": [POST, bad]}, headers=auth_header)
    assert r.status_code == 422
    body = r.json()
    assert body["type"] == "error.list"
    fields = {e["field"]: e["message"] for e in body["errors"]}
    assert "number" in fields["/messages/1/trigger/metadata/0/value"]
    assert "unknown placeholder" in fields["/messages/1/content/text"]
    assert (await c.get("/trailmark/messages", headers=auth_header)).json()["data"] == []
    r = await c.post("/trailmark/messages", json={"messages": "nope"}, headers=auth_header)
    assert r.status_code == 422


# ------------------------------------------------------------------------------------------ Intercom's POST /messages
async def test_post_messages_sends_a_chat_and_a_conversation_part(harness):
    store, ws, c = harness.store, harness.workspace, harness.client
    teammate = await store.create_teammate("grace@example.com", auth.hash_password("a long enough password"))
    ada = await store.create_contact(ws, "user", external_id="42", email="ada@example.com", name="Ada")
    body = {
        "message_type": "inapp",
        "body": '<p>Hi <b>Ada</b> <script>alert(1)</script><a href="javascript:x()" onclick="y()">see</a></p>',
        "from": {"type": "admin", "id": str(teammate.id)},
        "to": {"type": "user", "user_id": "42"},
    }
    r = await c.post("/messages", json=body, headers=harness.auth)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["type"] == "admin_message" and out["message_type"] == "inapp"
    assert out["body"] == '<p>Hi <b>Ada</b> <a rel="noopener noreferrer nofollow">see</a></p>'
    assert out["owner"]["id"] == str(teammate.id)
    [pending] = await store.messages.pending_for_contact(ws, ada.id)
    assert pending.kind == "chat" and pending.content["text"] == "Hi Ada see"
    assert pending.content["from"] == "grace@example.com"
    found = await store.conversations.conversation(ws, int(out["conversation_id"]))
    assert found is not None
    conversation, parts = found
    assert conversation.owner_id == ada.id and parts[-1].body == "Hi Ada see" and parts[-1].author_type == "teammate"
    assert await store.conversations.unread_for_contact(ws, ada.id) == 1
    # By email and by contact id too; a lead can be written to.
    lead = await store.create_contact(ws, "lead", email="lee@example.com")
    for to in ({"type": "contact", "email": "LEE@example.com"}, {"type": "lead", "id": lead.id}):
        r = await c.post("/messages", json={**body, "to": to}, headers=harness.auth)
        assert r.status_code == 200, r.text
    assert len(await store.messages.pending_for_contact(ws, lead.id)) == 2


async def test_post_messages_errors(harness):
    store, ws, c = harness.store, harness.workspace, harness.client
    teammate = await store.create_teammate("grace@example.com", auth.hash_password("a long enough password"))
    await store.create_contact(ws, "user", external_id="42")
    ok = {
        "message_type": "inapp",
        "body": "Hi",
        "from": {"type": "admin", "id": teammate.id},
        "to": {"type": "user", "user_id": "42"},
    }
    cases = [
        ({**ok, "message_type": "email"}, 422, "message_type"),
        ({**ok, "body": ""}, 400, "body"),
        ({**ok, "body": "<script>x</script>"}, 400, "body"),
        ({**ok, "from": {"type": "admin", "id": "999"}}, 404, "from.id"),
        ({**ok, "to": {"type": "user", "user_id": "nobody"}}, 404, "to"),
        ({**ok, "to": {"type": "user"}}, 400, "to.id"),
        ({k: v for k, v in ok.items() if k != "to"}, 400, "to"),
    ]
    for body, status, field in cases:
        r = await c.post("/messages", json=body, headers=harness.auth)
        assert r.status_code == status, (body, r.text)
        assert r.json()["errors"][0].get("field") == field
    assert (await c.post("/messages", json=ok)).status_code == 401
