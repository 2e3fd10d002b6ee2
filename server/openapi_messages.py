"""The OpenAPI description of the messages endpoints (server/rest_messages.py), added to ``openapi``'s
registry when that module is imported (the app imports it), so ``/openapi.json`` lists them."""

from __future__ import annotations

from typing import Any

from . import openapi
from .openapi import BOOLEAN, INTEGER, STRING, TIMESTAMP, _param, nullable, obj, ref, rest

_ID: dict[str, Any] = {"type": ["string", "integer"]}

openapi.SCHEMAS.update(
    {
        "MessageDocument": obj(
            {
                "key": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,99}$"},
                "name": STRING,
                "kind": {"enum": ["banner", "post", "chat"]},
                "state": {"enum": ["draft", "live", "paused", "archived"]},
                "trigger": obj(
                    {
                        "event": STRING,
                        "when": {"enum": ["every_time", "first_time"]},
                        "metadata": {"type": "array", "items": {"type": "object"}},
                    },
                    ("event",),
                ),
                "audience": {"type": "object"},
                "frequency": {"type": "object"},
                "schedule": {"type": "object"},
                "content": {"type": "object"},
                "banner": {"type": "object"},
                "chat": {"type": "object"},
            },
            ("key", "kind", "trigger", "content"),
            description="An event-triggered message (docs/messages.md); answers carry the normalised document.",
        ),
        "MessageList": obj(
            {
                "type": {"const": "list"},
                "data": {"type": "array", "items": ref("MessageDocument")},
                "total_count": INTEGER,
            },
            ("type", "data"),
        ),
        "MessageApplyRequest": {
            "anyOf": [
                ref("MessageDocument"),
                obj({"messages": {"type": "array", "items": ref("MessageDocument")}}, ("messages",)),
            ]
        },
        "MessageApplyResult": obj(
            {
                "type": {"const": "list"},
                "total_count": INTEGER,
                "data": {
                    "type": "array",
                    "items": obj(
                        {
                            "key": STRING,
                            "outcome": {"enum": ["created", "updated", "unchanged"]},
                            "message": ref("MessageDocument"),
                        },
                        ("key", "outcome", "message"),
                    ),
                },
            },
            ("type", "data"),
        ),
        "CreateMessageRequest": obj(
            {
                "message_type": {"enum": ["inapp", "email"]},
                "body": STRING,
                "from": obj({"type": {"const": "admin"}, "id": _ID}, ("id",)),
                "to": obj(
                    {"type": {"enum": ["user", "lead", "contact"]}, "id": STRING, "user_id": STRING, "email": STRING}
                ),
                "create_conversation_without_contact_reply": BOOLEAN,
            },
            ("body", "from", "to"),
            description="Intercom's admin-initiated message; only in-app messages are sent.",
        ),
        "AdminMessage": obj(
            {
                "type": {"const": "admin_message"},
                "id": STRING,
                "created_at": TIMESTAMP,
                "message_type": {"const": "inapp"},
                "subject": STRING,
                "body": STRING,
                "conversation_id": nullable("string"),
                "owner": obj({"type": {"const": "admin"}, "id": STRING, "email": STRING, "name": STRING}),
            },
            ("type", "id", "created_at", "subject", "message_type", "body"),
        ),
    }
)

_KEY = _param("key", "path", STRING, "The message's key")
openapi.operation(
    "/trailmark/messages",
    "get",
    rest(
        "List the workspace's messages (their documents)",
        "Messages",
        ok=(200, "Every message, by key", ref("MessageList")),
        errors=(400,),
    ),
)
openapi.operation(
    "/trailmark/messages",
    "post",
    rest(
        "Apply one message document, or {messages: [...]} (create or update by key; idempotent)",
        "Messages",
        body=ref("MessageApplyRequest"),
        ok=(200, "What each document did", ref("MessageApplyResult")),
        errors=(400, 413, 422),
        description="Invalid: 422, one error per bad field with its JSON pointer as `field`; nothing applied.",
    ),
)
openapi.operation(
    "/trailmark/messages/{key}",
    "get",
    rest(
        "Get a message's document",
        "Messages",
        params=(_KEY,),
        ok=(200, "The document", ref("MessageDocument")),
        errors=(400, 404),
    ),
)
_put = rest(
    "Create or replace the message with this key",
    "Messages",
    params=(_KEY,),
    body=ref("MessageDocument"),
    ok=(200, "Updated (or unchanged): the document", ref("MessageDocument")),
    errors=(400, 413, 422),
)
_put["responses"]["201"] = {**_put["responses"]["200"], "description": "Created: the document"}
openapi.operation("/trailmark/messages/{key}", "put", _put)
openapi.operation(
    "/messages",
    "post",
    rest(
        "Send an in-app chat from a teammate to a contact (Intercom's admin-initiated message)",
        "Messages",
        body=ref("CreateMessageRequest"),
        ok=(200, "The message; shown on the contact's next page view", ref("AdminMessage")),
        errors=(400, 404, 413, 422),
        description="The body keeps only p, a (http/https href), b, i and br. It is also a comment in the contact's "
        "conversation, so the inbox shows it and the contact can reply.",
    ),
)
