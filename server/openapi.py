"""``GET /openapi.json``: an OpenAPI 3.1 description of every HTTP endpoint Trailmark serves.

Written by hand, next to nothing else: the shapes are Intercom's (docs/api.md) and the code
that produces them is in ``rest_events``, ``rest_contacts``, ``messenger`` and ``sources``. The document
lists only operations the running app routes (so a source that is not mounted is not described), and
``tests/test_openapi.py`` fails when a routed endpoint is missing here, then runs schemathesis against it.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .rest_search import SEARCH_FIELDS

Schema = dict[str, Any]

# Routes that are not part of the HTTP API: HTML pages for people (the admin) and static files.
UNDOCUMENTED_PREFIXES = ("/admin", "/static")


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(kind: str, **extra: Any) -> Schema:
    return {"type": [kind, "null"], **extra}


def obj(properties: dict[str, Schema], required: tuple[str, ...] = (), **extra: Any) -> Schema:
    schema: Schema = {"type": "object", "properties": properties, **extra}
    if required:
        schema["required"] = list(required)
    return schema


def json_body(schema: Schema) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


STRING, INTEGER, BOOLEAN = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
TIMESTAMP = {"type": "integer", "description": "Unix seconds, UTC"}
ID = {"type": "string", "minLength": 1, "maxLength": 255}

_EMPTY_LIST = obj({"type": {"const": "list"}, "data": {"type": "array"}, "url": STRING,
                   "total_count": INTEGER, "has_more": BOOLEAN})
_FLAT_VALUE: Schema = {"type": ["string", "number", "boolean", "null"]}

SCHEMAS: dict[str, Schema] = {
    "Error": obj({
        "type": {"const": "error.list"},
        "request_id": nullable("string"),
        "errors": {"type": "array", "minItems": 1, "items": obj(
            {"code": STRING, "message": nullable("string"), "field": nullable("string")}, ("code",))},
    }, ("type", "errors"), description="Intercom's error list; every 4xx/5xx answer has this shape."),
    "CustomAttributes": {"type": "object", "additionalProperties": _FLAT_VALUE, "maxProperties": 100,
                         "description": "Flat values: strings (≤ 255 characters), numbers, booleans or null."},
    "Contact": obj({
        "type": {"const": "contact"}, "id": STRING, "workspace_id": STRING, "external_id": nullable("string"),
        "role": {"enum": ["user", "lead"]}, "email": nullable("string"), "email_domain": nullable("string"),
        "phone": nullable("string"), "name": nullable("string"),
        "avatar": {"anyOf": [{"type": "null"}, obj({"type": {"const": "avatar"}, "image_url": nullable("string")},
                                                   ("type", "image_url"))]},
        "owner_id": nullable("integer"), "has_hard_bounced": BOOLEAN, "marked_email_as_spam": BOOLEAN,
        "unsubscribed_from_emails": BOOLEAN, "created_at": TIMESTAMP, "updated_at": TIMESTAMP,
        "signed_up_at": nullable("integer"), "last_seen_at": nullable("integer"),
        "last_replied_at": nullable("integer"), "last_contacted_at": nullable("integer"),
        "last_email_opened_at": nullable("integer"), "last_email_clicked_at": nullable("integer"),
        "location": obj({"type": {"const": "location"}}), "custom_attributes": ref("CustomAttributes"),
        "tags": _EMPTY_LIST, "notes": _EMPTY_LIST, "companies": _EMPTY_LIST,
        "social_profiles": obj({"type": {"const": "list"}, "data": {"type": "array"}}),
    }, ("type", "id", "role", "created_at", "updated_at", "custom_attributes"),
        description="Intercom's contact object: a user or a lead. Fields Trailmark does not track are null."),
    "ContactList": obj({
        "type": {"const": "list"}, "data": {"type": "array", "items": ref("Contact")}, "total_count": INTEGER,
        "pages": obj({"type": {"const": "pages"}, "page": INTEGER, "per_page": INTEGER, "total_pages": INTEGER,
                      "next": obj({"per_page": INTEGER, "starting_after": STRING}, ("starting_after",))},
                     ("type", "page", "per_page", "total_pages")),
    }, ("type", "data", "total_count", "pages")),
    "ContactDeleted": obj({"type": {"const": "contact"}, "id": STRING, "external_id": nullable("string"),
                           "deleted": {"const": True}}, ("type", "id", "deleted")),
    "ContactFields": obj({
        "role": {"enum": ["user", "lead"]}, "external_id": ID, "email": {"type": "string", "format": "email"},
        "phone": STRING, "name": STRING, "avatar": {"type": "string", "format": "uri", "pattern": "^https?://"},
        "signed_up_at": TIMESTAMP, "last_seen_at": TIMESTAMP,
        "owner_id": {"type": "integer", "minimum": 0}, "unsubscribed_from_emails": BOOLEAN,
        "custom_attributes": ref("CustomAttributes"),
    }, description="Create: at least one of role, external_id or email (role defaults to user). Update (PUT): "
                   "only the fields sent change; null clears a field; custom attributes merge key by key."),
    "SearchFilter": obj({"field": {"anyOf": [{"enum": [*SEARCH_FIELDS]},
                                             {"type": "string", "pattern": "^custom_attributes\\..+"}]},
                         "operator": {"enum": ["=", "!=", "IN", "NIN", ">", "<", "~", "!~", "^", "$"]},
                         "value": {}}, ("field", "operator", "value")),
    "SearchGroup": obj({"operator": {"enum": ["AND", "OR"]},
                        "value": {"type": "array", "minItems": 1, "maxItems": 15,
                                  "items": {"anyOf": [ref("SearchFilter"), ref("SearchGroup")]}}},
                       ("operator", "value")),
    "SearchRequest": obj({
        "query": {"anyOf": [ref("SearchFilter"), ref("SearchGroup")]},
        "pagination": obj({"per_page": {"type": "integer", "minimum": 1, "maximum": 150},
                           "starting_after": nullable("string")}),
    }, ("query",), description="Fields: id, role, name, avatar, owner_id, email, email_domain, phone, external_id, "
                               "created_at, signed_up_at, updated_at, last_seen_at, last_contacted_at, "
                               "unsubscribed_from_emails, custom_attributes.<name>. Timestamps match by UTC day. "
                               "At most 2 levels of AND/OR, 15 filters per group."),
    "Visitor": obj({
        "type": {"const": "visitor"}, "id": STRING, "user_id": STRING, "anonymous": BOOLEAN, "email": STRING,
        "phone": nullable("string"), "name": nullable("string"), "app_id": STRING,
        "created_at": TIMESTAMP, "updated_at": TIMESTAMP, "last_request_at": nullable("integer"),
        "custom_attributes": ref("CustomAttributes"),
    }, ("type", "id", "user_id", "custom_attributes")),
    "Event": obj({
        "type": {"const": "event"}, "id": STRING, "event_name": STRING, "created_at": TIMESTAMP,
        "user_id": nullable("string"), "intercom_user_id": STRING, "email": nullable("string"),
        "metadata": {"type": "object"},
    }, ("type", "event_name", "created_at")),
    "EventList": obj({
        "type": {"const": "event.list"}, "events": {"type": "array", "items": ref("Event")},
        "pages": obj({"next": {"type": "string", "format": "uri", "description": "older events (before=epoch ms)"},
                      "since": {"type": "string", "format": "uri", "description": "newer events (since=epoch ms)"}}),
    }, ("type", "events", "pages")),
    "EventSummary": obj({
        "type": {"const": "event.summary"}, "email": nullable("string"), "intercom_user_id": STRING,
        "user_id": nullable("string"),
        "events": {"type": "array", "items": obj({
            "name": STRING, "first": {"type": "string", "format": "date-time"},
            "last": {"type": "string", "format": "date-time"}, "count": INTEGER,
            "description": nullable("string")}, ("name", "first", "last", "count"))},
    }, ("type", "events")),
    "CreateEventRequest": obj({
        "event_name": {"type": "string", "minLength": 1, "maxLength": 255},
        "created_at": {"type": "integer", "minimum": 0, "description": "Unix seconds; default: now"},
        "user_id": ID, "id": ID, "email": ID,
        "metadata": {"type": "object", "description": "Up to 20 keys; strings (≤ 255), numbers, *_date "
                                                      "timestamps, links, {url, value}, {amount, currency}."},
    }, ("event_name",), description="One of user_id, id or email names the contact (events never create one)."),
    "EventSummaryInput": obj({"event_name": {"type": "string", "minLength": 1, "maxLength": 255},
                              "count": {"type": "integer", "minimum": 1}, "first": TIMESTAMP, "last": TIMESTAMP},
                             ("event_name",)),
    "CreateEventSummariesRequest": obj({
        "user_id": ID, "id": ID, "email": ID,
        "event_summaries": {"anyOf": [ref("EventSummaryInput"),
                                      {"type": "array", "minItems": 1, "maxItems": 100,
                                       "items": ref("EventSummaryInput")}]},
    }, ("event_summaries",)),
    "MergeRequest": obj({"from": {**STRING, "description": "the lead (or visitor) id"},
                         "into": {**STRING, "description": "the user id"}}, ("from", "into")),
    "ConvertVisitorRequest": obj({
        "type": {"enum": ["lead", "user"]},
        "visitor": obj({"id": ID, "user_id": ID}),
        "user": obj({"id": ID, "user_id": ID, "email": ID}),
    }, ("type", "visitor")),
    "UpdateVisitorRequest": obj({"id": ID, "user_id": ID, "name": STRING,
                                 "custom_attributes": ref("CustomAttributes")}),
    # The Messenger protocol (docs/protocol.md): the shim sends JSON as text/plain, so no CORS preflight.
    "PingRequest": obj({"app_id": STRING, "device": nullable("string"), "session": nullable("string"),
                        "user": {"type": "object"}, "page": STRING, "referrer": STRING}, ("app_id",)),
    "PingResponse": obj({"type": {"const": "ping"}, "device": STRING, "session": STRING, "visitor_id": STRING,
                         "contact": obj({"id": STRING, "role": {"enum": ["visitor", "lead", "user"]}}, ("id", "role")),
                         "warnings": {"type": "array", "items": STRING}, "unread": INTEGER,
                         "messages": {"type": "array", "items": ref("BrowserMessage")},
                         "conversation": obj({"id": STRING, "new": {"type": "boolean"},
                                              "duplicate": {"type": "boolean"}})},
                        ("type", "device", "session", "visitor_id", "contact", "warnings")),
    # What the shim's renderer shows (docs/protocol.md, "Messages"): text only, except a POST /messages chat's
    # server-sanitised html.
    "BrowserMessage": obj({
        "id": INTEGER, "key": STRING, "kind": {"enum": ["banner", "post", "chat"]}, "text": STRING,
        "title": STRING, "body": STRING, "image_url": STRING, "button": obj({"label": STRING, "url": STRING}),
        "banner": obj({"position": {"enum": ["top", "bottom"]}, "style": {"enum": ["floating", "push"]},
                       "dismissible": BOOLEAN}),
        "from": STRING, "html": STRING}, ("id", "key", "kind")),
    "MessageMarkRequest": obj({"app_id": STRING, "session": STRING}, ("app_id", "session")),
    "BrowserEventsRequest": obj({
        "app_id": STRING, "session": STRING, "page": STRING,
        "events": {"type": "array", "minItems": 1, "maxItems": 100, "items": obj({
            "id": {"type": "string", "minLength": 1, "maxLength": 64}, "event_name": STRING,
            "created_at": INTEGER, "metadata": {"type": "object"}}, ("id", "event_name"))},
    }, ("app_id", "session", "events")),
    "BrowserEventsResponse": obj({"type": {"const": "event.batch"}, "results": {"type": "array", "items": obj({
        "id": STRING, "status": {"enum": ["accepted", "duplicate", "dropped"]}, "reason": STRING,
        "dropped_metadata": {"type": "array", "items": obj({"key": STRING, "reason": STRING})}},
        ("id", "status"))}, "messages": {"type": "array", "items": ref("BrowserMessage")}}, ("type", "results")),
    "ConversationRequest": obj({"app_id": STRING, "device": nullable("string"), "session": nullable("string"),
                                "email": STRING, "message": STRING, "client_id": STRING}, ("app_id", "message")),
    "ThreadRequest": obj({"app_id": STRING, "session": nullable("string")}, ("app_id",)),
    "ThreadResponse": obj({"type": {"const": "thread"}, "email_known": {"type": "boolean"}, "unread": INTEGER,
                           "conversations": {"type": "array", "items": obj({
                               "id": STRING, "state": {"enum": ["open", "closed"]},
                               "parts": {"type": "array", "items": obj({
                                   "id": STRING, "from": {"enum": ["you", "team"]}, "name": nullable("string"),
                                   "body": STRING, "created_at": INTEGER})}})}},
                          ("type", "conversations")),
    # Segment's HTTP tracking API (server/sources/segment.py).
    "SegmentMessage": obj({
        "type": STRING, "userId": nullable("string"), "anonymousId": nullable("string"), "event": STRING,
        "name": STRING, "properties": {"type": "object"}, "traits": {"type": "object"},
        "context": {"type": "object"}, "timestamp": STRING, "messageId": STRING, "writeKey": STRING,
    }, description="Segment's track/page/screen/identify/alias/group message."),
    "SegmentResult": obj({"success": {"const": True}, "status": STRING, "dropped": {"type": "array"}},
                         ("success",)),
    "SegmentBatchRequest": obj({"batch": {"type": "array", "items": ref("SegmentMessage")}, "sentAt": STRING,
                                "writeKey": STRING}, ("batch",)),
    "SegmentBatchResult": obj({"success": {"const": True}, "accepted": INTEGER, "duplicate": INTEGER,
                               "identified": INTEGER, "ignored": INTEGER, "archived": INTEGER,
                               "rejected": {"type": "array"}, "dropped": {"type": "array"}}, ("success",)),
    "StripeEvent": obj({"id": STRING, "type": STRING, "data": {"type": "object"}}, ("id", "type", "data")),
    "StripeResult": obj({"received": {"const": True}, "id": STRING, "type": STRING}, ("received",)),
    "StripeUnmatchedList": obj({"type": {"const": "list"}, "data": {"type": "array", "items": {"type": "object"}}},
                               ("type", "data")),
}

_ERROR_TEXT = {
    400: "Invalid request (parameter_invalid, parameter_not_found, intercom_version_invalid, …)",
    401: "Missing or invalid credentials (unauthorized)",
    403: "Origin not allowed for this workspace (forbidden)",
    404: "Not found (not_found): unknown contact, user, visitor or app_id",
    409: "Conflict: a contact with this external_id (or a user with this email) exists",
    413: "Request body too large (request_too_large)",
    422: "Unprocessable: e.g. more than 120 active event names, or metadata refused in strict mode",
    429: "Rate limit exceeded (rate_limit_exceeded); see Retry-After",
}
_RATE_HEADERS = {
    "X-RateLimit-Limit": {"$ref": "#/components/headers/X-RateLimit-Limit"},
    "X-RateLimit-Remaining": {"$ref": "#/components/headers/X-RateLimit-Remaining"},
    "X-RateLimit-Reset": {"$ref": "#/components/headers/X-RateLimit-Reset"},
}
HEADERS = {
    "X-RateLimit-Limit": {"required": True, "schema": {"type": "integer"},
                          "description": "Requests allowed per window, per workspace"},
    "X-RateLimit-Remaining": {"required": True, "schema": {"type": "integer"},
                              "description": "Requests left in the current window"},
    "X-RateLimit-Reset": {"required": True, "schema": {"type": "integer"},
                          "description": "Unix time (seconds) at which the window resets"},
}


def _errors(*codes: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for code in codes:
        response: dict[str, Any] = {"description": _ERROR_TEXT[code], "content": json_body(ref("Error"))}
        if code == 429:
            response["headers"] = {**_RATE_HEADERS, "Retry-After": {
                "required": True, "schema": {"type": "integer"}, "description": "Seconds until the window resets"}}
        out[str(code)] = response
    return out


def _param(name: str, where: str, schema: Schema, description: str = "", required: bool = False) -> Schema:
    param: Schema = {"name": name, "in": where, "schema": schema, "required": required or where == "path"}
    if description:
        param["description"] = description
    return param


# What rest_auth accepts (Intercom's versions); anything else is 400 intercom_version_invalid.
VERSIONS = [*(f"1.{i}" for i in range(5)), *(f"2.{i}" for i in range(18)), "Unstable", "Preview"]
INTERCOM_VERSION = _param("Intercom-Version", "header", {"enum": VERSIONS},
                          "Optional (the Python SDK sends none); other values get 400 intercom_version_invalid.")


def rest(summary: str, tag: str, *, ok: tuple[int, str, Schema | None], errors: tuple[int, ...],
         params: tuple[Schema, ...] = (), body: Schema | None = None, description: str = "") -> dict[str, Any]:
    """A Bearer-token REST operation (Intercom's shapes): rate-limit headers on every authenticated answer."""
    status, text, schema = ok
    success: dict[str, Any] = {"description": text, "headers": dict(_RATE_HEADERS)}
    if schema is not None:
        success["content"] = json_body(schema)
    op: dict[str, Any] = {
        "summary": summary, "tags": [tag], "security": [{"bearerAuth": []}],
        "parameters": [*params, INTERCOM_VERSION],
        "responses": {str(status): success, **_errors(401, 429, *errors)},
    }
    if description:
        op["description"] = description
    if body is not None:
        op["requestBody"] = {"required": True, "content": json_body(body)}
    return op


def public(summary: str, tag: str, *, responses: dict[str, Any], body: Schema | None = None,
           params: tuple[Schema, ...] = (), security: list[dict[str, list[str]]] | None = None,
           description: str = "") -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "tags": [tag], "security": security or [], "responses": responses}
    if params:
        op["parameters"] = list(params)
    if body is not None:
        op["requestBody"] = {"required": True, "content": json_body(body)}
    if description:
        op["description"] = description
    return op


def _ok(text: str, schema: Schema | None = None, content_type: str = "application/json") -> dict[str, Any]:
    response: dict[str, Any] = {"description": text}
    if schema is not None:
        response["content"] = {content_type: {"schema": schema}}
    return response


CONTACT_ID = _param("contact_id", "path", STRING, "The contact's id (Intercom's `id`)")
EVENT_IDENTIFIERS = (
    _param("user_id", "query", STRING, "A user's external id (or a visitor's user_id)"),
    _param("intercom_user_id", "query", STRING, "The contact's id: how leads are listed"),
    _param("email", "query", STRING, "A user's email"),
    _param("filter[user_id]", "query", STRING, "Alias of user_id (python-intercom's unstable client)"),
    _param("filter[intercom_user_id]", "query", STRING, "Alias of intercom_user_id"),
    _param("filter[email]", "query", STRING, "Alias of email"),
    _param("filter", "query", STRING, 'The identifier as a JSON object, e.g. {"user_id": "314159"} '
           "(what intercom-client's, Node, unstable dataEvents.lisDataEvents sends)"),
)
PAGING = (_param("per_page", "query", {"type": "integer", "minimum": 1, "maximum": 150}, "Default 50"),
          _param("starting_after", "query", STRING, "The cursor from pages.next.starting_after"))

# (OpenAPI path, method) → (Starlette route path, operation)
OPERATIONS: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}


def operation(path: str, method: str, op: dict[str, Any], route: str | None = None) -> None:
    OPERATIONS[(path, method)] = (route or path, op)


# ---------------------------------------------------------------- events
operation("/events", "post", rest(
    "Submit a data event", "Events", body=ref("CreateEventRequest"),
    ok=(202, "Accepted (duplicates too); empty body. X-Trailmark-Dropped-Metadata lists dropped metadata.", None),
    errors=(400, 404, 409, 413, 422),
    description="Intercom's POST /events. Dedupe key: (workspace, contact, event_name, created_at)."))
operation("/events", "get", rest(
    "List a contact's events, or their summary", "Events",
    params=(_param("type", "query", {"const": "user"}, "Must be user", required=True), *EVENT_IDENTIFIERS,
            _param("filter[type]", "query", STRING, "Alias of type"),
            _param("summary", "query", {"enum": ["true", "false"]}, "true: per-name counts, first and last"),
            _param("per_page", "query", {"type": "integer", "minimum": 1, "maximum": 250}, "Default 50"),
            _param("before", "query", INTEGER, "Epoch milliseconds: events before this (pages.next)"),
            _param("before_id", "query", INTEGER, "Tie-breaker our pages.next links add"),
            _param("since", "query", INTEGER, "Epoch milliseconds: events after this (pages.since)")),
    ok=(200, "event.list (last 90 days, newest first) or event.summary (all time)",
        {"anyOf": [ref("EventList"), ref("EventSummary")]}),
    errors=(400, 404)))
operation("/events/summaries", "post", rest(
    "Import event summaries", "Events", body=ref("CreateEventSummariesRequest"),
    ok=(200, "Merged into the contact's per-name aggregates (count added, first = min, last = max); empty body",
        None),
    errors=(400, 404, 413)))

# ---------------------------------------------------------------- contacts
operation("/contacts", "post", rest(
    "Create a contact (user or lead)", "Contacts", body=ref("ContactFields"),
    ok=(200, "The new contact", ref("Contact")), errors=(400, 409, 413)))
operation("/contacts", "get", rest(
    "List contacts (users and leads), newest first", "Contacts", params=PAGING,
    ok=(200, "A page of contacts", ref("ContactList")), errors=(400,)))
operation("/contacts/search", "post", rest(
    "Search contacts", "Contacts", body=ref("SearchRequest"),
    ok=(200, "A page of matching contacts", ref("ContactList")), errors=(400, 413)))
operation("/contacts/merge", "post", rest(
    "Merge a lead into a user", "Contacts", body=ref("MergeRequest"),
    ok=(200, "The surviving user; the lead's events now show on it, and GET of the lead is 404",
        ref("Contact")), errors=(400, 404, 413)))
operation("/contacts/find_by_external_id/{external_id}", "get", rest(
    "Find a user by external id", "Contacts", params=(_param("external_id", "path", STRING),),
    ok=(200, "The user", ref("Contact")), errors=(400, 404)))
operation("/contacts/{contact_id}", "get", rest(
    "Get a contact", "Contacts", params=(CONTACT_ID,), ok=(200, "The contact", ref("Contact")),
    errors=(400, 404)))
operation("/contacts/{contact_id}", "put", rest(
    "Update a contact", "Contacts", params=(CONTACT_ID,), body=ref("ContactFields"),
    ok=(200, "The updated contact", ref("Contact")), errors=(400, 404, 409, 413)))
operation("/contacts/{contact_id}", "delete", rest(
    "Delete a contact and its events", "Contacts", params=(CONTACT_ID,),
    ok=(200, "Deleted", ref("ContactDeleted")), errors=(400, 404)))

# ---------------------------------------------------------------- visitors
operation("/visitors", "get", rest(
    "Get a visitor by user_id", "Visitors",
    params=(_param("user_id", "query", STRING, "What Intercom('getVisitorId') returns", required=True),),
    ok=(200, "The visitor", ref("Visitor")), errors=(400, 404)))
operation("/visitors", "put", rest(
    "Update a visitor", "Visitors", body=ref("UpdateVisitorRequest"),
    ok=(200, "The visitor", ref("Visitor")), errors=(400, 404, 413)))
operation("/visitors/convert", "post", rest(
    "Convert a visitor to a lead or a user", "Visitors", body=ref("ConvertVisitorRequest"),
    ok=(200, "The lead, or the user the visitor became or was merged into", ref("Contact")),
    errors=(400, 404, 413)))

# ---------------------------------------------------------------- messenger (the snippet's shim)
_CORS = "CORS: allowed origins only (any when the workspace lists none); the shim sends JSON as text/plain."
_MESSENGER_ERRORS = _errors(400, 401, 403, 404, 413)
operation("/messenger/web/ping", "post", public(
    "Boot/update: resolve the browser's identity, record attributes", "Messenger", body=ref("PingRequest"),
    responses={"200": _ok("Signed device and session tokens", ref("PingResponse")), **_MESSENGER_ERRORS},
    description=_CORS))
operation("/messenger/web/events", "post", public(
    "Track a batch of the browser's events", "Messenger", body=ref("BrowserEventsRequest"),
    responses={"200": _ok("Per-event results", ref("BrowserEventsResponse")), **_MESSENGER_ERRORS,
               **_errors(422)}, description=_CORS))
operation("/messenger/web/conversations", "post", public(
    "A message from the contact panel (an anonymous visitor leaves an email and becomes a lead)", "Messenger",
    body=ref("ConversationRequest"),
    responses={"200": _ok("Tokens naming the lead, and the conversation", ref("PingResponse")),
               **_MESSENGER_ERRORS}, description=_CORS))
operation("/messenger/web/thread", "post", public(
    "The contact's recent conversations with the team's replies (marks them read)", "Messenger",
    body=ref("ThreadRequest"),
    responses={"200": _ok("Conversations, newest first", ref("ThreadResponse")), **_MESSENGER_ERRORS},
    description=_CORS))
operation("/messenger/web/messages/{delivery_id}/{what}", "post", public(
    "Report that a delivered message was shown, clicked or dismissed (each counted once)", "Messenger",
    body=ref("MessageMarkRequest"),
    params=(_param("delivery_id", "path", STRING, "The delivery's id (a message's `id` in an answer)"),
            _param("what", "path", {"enum": ["shown", "clicked", "dismissed"]})),
    responses={"204": _ok("Recorded (a repeat changes nothing)"), **_MESSENGER_ERRORS},
    description=_CORS + " Sent with navigator.sendBeacon; only the contact the message went to can mark it."))
operation("/messenger/web/{path}", "options", public(
    "CORS preflight", "Messenger", params=(_param("path", "path", STRING),),
    responses={"204": _ok("Preflight answer")}), route="/messenger/web/{path:path}")
operation("/widget/{app_id}", "get", public(
    "The shim script, where Intercom's loader looks for the widget", "Messenger",
    params=(_param("app_id", "path", STRING),),
    responses={"200": _ok("JavaScript", STRING, "text/javascript"),
               "404": _ok("Unknown app_id (a JavaScript comment)", STRING, "text/javascript")}))
operation("/widget/{app_id}/messages.js", "get", public(
    "The messages renderer (banners, posts, chats), which the shim loads when an answer carries messages",
    "Messenger", params=(_param("app_id", "path", STRING),),
    responses={"200": _ok("JavaScript", STRING, "text/javascript"),
               "404": _ok("Unknown app_id (a JavaScript comment)", STRING, "text/javascript")}))
operation("/widget/{app_id}/panel.js", "get", public(
    "The contact panel script, which the shim loads when it is first needed", "Messenger",
    params=(_param("app_id", "path", STRING),),
    responses={"200": _ok("JavaScript", STRING, "text/javascript"),
               "404": _ok("Unknown app_id (a JavaScript comment)", STRING, "text/javascript")}))

# ---------------------------------------------------------------- sources (when mounted)
_SEGMENT_AUTH: list[dict[str, list[str]]] = [{"segmentWriteKey": []}, {}]
_SEGMENT_CORS = ("CORS: the preflight is answered for any origin; the POST from a browser (an Origin header) is "
                 "refused (403) when the workspace lists allowed origins and not this one. The body may be sent "
                 "as text/plain (Segment's browser library, analytics.js, does).")
operation("/v1/{kind}", "post", public(
    "Segment tracking API: one message", "Segment",
    params=(_param("kind", "path", {"enum": ["track", "page", "screen", "identify", "alias", "group",
                                             "t", "p", "s", "i", "a", "g"]},
                   "The message type, or its first letter (analytics.js's short paths)"),),
    body=ref("SegmentMessage"), security=_SEGMENT_AUTH,
    responses={"200": _ok("Stored (or deduplicated); dropped metadata listed", ref("SegmentResult")),
               **_errors(400, 401, 403, 404, 413, 422)},
    description="HTTP Basic with the write key as user name (or writeKey in the body). " + _SEGMENT_CORS))
for _path, _summary in (("/v1/batch", "Segment tracking API: a batch"),
                        ("/v1/b", "Segment tracking API: a batch (analytics.js's short path)"),
                        ("/v1/import", "Segment tracking API: a batch (older name)")):
    operation(_path, "post", public(
        _summary, "Segment", body=ref("SegmentBatchRequest"), security=_SEGMENT_AUTH,
        responses={"200": _ok("Per-status counts; invalid messages listed under rejected",
                              ref("SegmentBatchResult")),
                   **_errors(400, 401, 403, 413, 422)}, description=_SEGMENT_CORS))
operation("/v1/{path}", "options", public(
    "CORS preflight for Segment's browser library", "Segment", params=(_param("path", "path", STRING),),
    responses={"204": _ok("Preflight answer")}), route="/v1/{path:path}")
_STRIPE_SIGNATURE = _param("Stripe-Signature", "header", STRING, "t=<unix>,v1=<hex HMAC-SHA256>")
operation("/integrations/stripe/webhook", "post", public(
    "Stripe webhook (workspace found by the secret that verifies)", "Stripe", body=ref("StripeEvent"),
    params=(_STRIPE_SIGNATURE,),
    responses={"200": _ok("Tracked, recorded as unmatched, or ignored", ref("StripeResult")),
               **_errors(400, 404, 413)}))
operation("/integrations/stripe/webhook/{app_id}", "post", public(
    "Stripe webhook for one workspace", "Stripe", body=ref("StripeEvent"),
    params=(_param("app_id", "path", STRING), _STRIPE_SIGNATURE),
    responses={"200": _ok("Tracked, recorded as unmatched, or ignored", ref("StripeResult")),
               **_errors(400, 404, 413)}))
operation("/integrations/stripe/unmatched", "get", public(
    "Verified Stripe webhooks that matched no contact", "Stripe", security=[{"bearerAuth": []}],
    params=(_param("include_resolved", "query", {"enum": ["true", "false"]}),
            _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 1000})),
    responses={"200": _ok("Unmatched webhooks, newest first", ref("StripeUnmatchedList")), **_errors(400, 401)}))

# ---------------------------------------------------------------- the server itself
operation("/health", "get", public("Liveness", "Server", responses={
    "200": _ok("OK", obj({"ok": BOOLEAN}, ("ok",)))}))
operation("/openapi.json", "get", public("This document", "Server", responses={
    "200": _ok("OpenAPI 3.1", {"type": "object"})}))


def routed(routes: list[Any]) -> set[tuple[str, str]]:
    """``(route path, method)`` for every HTTP route of the app (HEAD, which Starlette adds to GET, left out)."""
    out = set()
    for route in routes:
        if isinstance(route, Route):
            for method in route.methods or ():
                if method != "HEAD":
                    out.add((route.path, method.lower()))
    return out


def document(routes: list[Any], server_url: str) -> dict[str, Any]:
    """The OpenAPI document for the operations these routes serve."""
    present = routed(routes)
    paths: dict[str, dict[str, Any]] = {}
    for (path, method), (route, op) in OPERATIONS.items():
        if (route, method) in present:
            paths.setdefault(path, {})[method] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Trailmark", "version": "1.0",
                 "description": "Self-hosted, Intercom-compatible event tracking. The REST API takes Intercom's "
                                "shapes: point an Intercom SDK's base URL here. Errors are Intercom's error "
                                "list; REST answers carry X-RateLimit-* headers (docs/api.md)."},
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "headers": HEADERS,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer",
                               "description": "The workspace's REST access token (`trailmark workspace list`)"},
                "segmentWriteKey": {"type": "http", "scheme": "basic",
                                    "description": "Segment write key as the user name, empty password"},
            },
        },
    }


async def openapi_json(request: Request) -> Response:
    settings = request.app.state.settings
    base = (settings.public_url or str(request.base_url)).rstrip("/")
    return JSONResponse(document(request.app.routes, base))
