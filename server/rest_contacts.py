"""REST contacts and visitors, in Intercom's shapes (docs/api.md).

Contacts are live users and leads: create, get, update (PUT), delete, list, search, find by external id,
merge a lead into a user. Visitors: get by ``user_id``, update (PUT), convert to a lead or a user. A contact
merged into another one is gone for this API (404), as in Intercom 2.16.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .errors import ApiError, bad_request, missing, not_found
from .http_edge import path_param, query_param, read_json
from .identity import is_generic_user_id
from .limits import EMAIL, MAX_ATTRIBUTE_LENGTH, MAX_ATTRIBUTES, MAX_SAFE_INT, MAX_TIMESTAMP, ascii_int
from .metadata import MAX_URL_LENGTH, is_http_url
from .rest_auth import rest_workspace
from .rest_search import cursor_param, encode_cursor, parse_search
from .store import SQLStore
from .store.contacts_store import ContactPage, ContactView
from .store.models import LEAD, USER, VISITOR, Contact, Workspace

API_PROOF = "REST access token"

DEFAULT_PER_PAGE = 50  # Intercom's default page size for contact lists and search
MAX_PER_PAGE = 150  # Intercom's maximum for contact lists


# ------------------------------------------------------------------------------------------ shapes
def _empty_list(url: str) -> dict[str, Any]:
    return {"type": "list", "data": [], "url": url, "total_count": 0, "has_more": False}


def avatar_json(url: str | None) -> dict[str, Any] | None:
    """Intercom's contact ``avatar``: an object ``{"type": "avatar", "image_url": …}``, null when there is none
    (requests still set it as a URL string, as Intercom's do)."""
    return {"type": "avatar", "image_url": url} if url else None


def contact_json(contact: Contact | ContactView) -> dict[str, Any]:
    """Intercom's contact object (fields Trailmark does not track are null)."""
    view = contact if isinstance(contact, ContactView) else ContactView(contact)
    c = view.contact
    return {
        "type": "contact", "id": c.id, "workspace_id": str(c.workspace_id), "external_id": c.external_id,
        "role": c.role, "email": c.email,
        "email_domain": c.email.split("@", 1)[1] if c.email and "@" in c.email else None,
        "phone": c.phone, "name": c.name, "avatar": avatar_json(view.avatar), "owner_id": view.owner_id,
        "social_profiles": {"type": "list", "data": []},
        "has_hard_bounced": False, "marked_email_as_spam": False,
        "unsubscribed_from_emails": view.unsubscribed_from_emails,
        "created_at": c.created_at, "updated_at": c.updated_at, "signed_up_at": c.signed_up_at,
        "last_seen_at": c.last_seen_at, "last_replied_at": None, "last_contacted_at": c.contacted_at,
        "last_email_opened_at": None, "last_email_clicked_at": None, "language_override": None,
        "browser": None, "browser_version": None, "browser_language": None, "os": None,
        "location": {"type": "location", "country": None, "region": None, "city": None,
                     "country_code": None, "continent_code": None},
        "android_app_name": None, "android_app_version": None, "android_device": None,
        "android_os_version": None, "android_sdk_version": None, "android_last_seen_at": None,
        "ios_app_name": None, "ios_app_version": None, "ios_device": None, "ios_os_version": None,
        "ios_sdk_version": None, "ios_last_seen_at": None,
        "custom_attributes": c.custom_attributes,
        "tags": _empty_list(f"/contacts/{c.id}/tags"), "notes": _empty_list(f"/contacts/{c.id}/notes"),
        "companies": _empty_list(f"/contacts/{c.id}/companies"),
        "opted_out_subscription_types": _empty_list(f"/contacts/{c.id}/subscriptions"),
        "opted_in_subscription_types": _empty_list(f"/contacts/{c.id}/subscriptions"),
        "utm_campaign": None, "utm_content": None, "utm_medium": None, "utm_source": None, "utm_term": None,
        "referrer": None, "enabled_push_messaging": None,
    }


def visitor_json(contact: Contact, app_id: str) -> dict[str, Any]:
    """Intercom's visitor object (§5)."""
    return {
        "type": "visitor", "id": contact.id, "user_id": contact.visitor_id, "anonymous": True,
        "email": contact.email or "", "phone": contact.phone, "name": contact.name, "pseudonym": None,
        "avatar": {"type": "avatar", "image_url": None}, "app_id": app_id,
        "companies": {"type": "company.list", "companies": []}, "location_data": {},
        "last_request_at": contact.last_seen_at, "created_at": contact.created_at,
        "remote_created_at": contact.created_at,
        # Intercom's visitors carry signed_up_at (their creation time, without one): never null.
        "signed_up_at": contact.signed_up_at if contact.signed_up_at is not None else contact.created_at,
        "updated_at": contact.updated_at, "session_count": 0,
        "social_profiles": {"type": "social_profile.list", "social_profiles": []}, "owner_id": None,
        "unsubscribed_from_emails": False, "marked_email_as_spam": False, "has_hard_bounced": False,
        "tags": {"type": "tag.list", "tags": []}, "segments": {"type": "segment.list", "segments": []},
        "custom_attributes": contact.custom_attributes, "referrer": None, "utm_campaign": None,
        "utm_content": None, "utm_medium": None, "utm_source": None, "utm_term": None, "do_not_track": None,
    }


def list_json(page: ContactPage, per_page: int) -> dict[str, Any]:
    """Intercom's contact list: ``pages.next.starting_after`` is the cursor the SDKs page with."""
    pages: dict[str, Any] = {"type": "pages", "page": page.page, "per_page": per_page,
                             "total_pages": math.ceil(page.total_count / per_page)}
    if page.next_after:
        pages["next"] = {"per_page": per_page, "starting_after": encode_cursor(*page.next_after)}
    return {"type": "list", "data": [contact_json(v) for v in page.contacts], "total_count": page.total_count,
            "pages": pages}


# ------------------------------------------------------------------------------------------ input checks
def _obj(data: dict[str, Any], field: str) -> dict[str, Any]:
    value = data.get(field)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_request(f"{field} must be an object", field)
    return value


def _str(obj: dict[str, Any], key: str, prefix: str | None = None) -> str | None:
    """An identifier (a string, or an integer taken as one) from ``obj[key]``; ``None`` when absent."""
    value = obj.get(key)
    if value is None:
        return None
    field = f"{prefix}.{key}" if prefix else key
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    if not text or len(text) > MAX_ATTRIBUTE_LENGTH:
        raise bad_request(f"{field} must be a non-empty string", field)
    return text


def _text(value: Any, field: str, *, allow_int: bool = False) -> str:
    if allow_int and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise bad_request(f"{field} must be a string", field)
    value = value.strip()
    if not value:
        raise bad_request(f"{field} must not be empty", field)
    if len(value) > MAX_ATTRIBUTE_LENGTH:
        raise bad_request(f"{field} is longer than {MAX_ATTRIBUTE_LENGTH} characters", field)
    return str(value)


def _url(value: Any, field: str) -> str:
    """An http(s) URL: anything else (``javascript:``, ``data:``, a bare path) is refused, not stored."""
    if not isinstance(value, str) or not value.strip():
        raise bad_request(f"{field} must be an http or https URL", field)
    text = value.strip()
    if not is_http_url(text):
        raise bad_request(f"{field} must be an http or https URL (at most {MAX_URL_LENGTH} characters)", field)
    return text


def _timestamp(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TIMESTAMP:
        raise bad_request(f"{field} must be a unix timestamp in seconds", field)
    return value


def _email(value: Any, field: str = "email") -> str:
    text = _text(value, field)
    if not EMAIL.match(text):
        raise bad_request(f"{field} is not a valid email address", field)
    return text


def _external_id(value: Any, field: str = "external_id") -> str:
    text = _text(value, field, allow_int=True)
    if is_generic_user_id(text):
        raise bad_request(f"'{text}' is not accepted as an external_id", field)
    return text


def custom_attributes(value: Any, field: str = "custom_attributes") -> dict[str, Any]:
    """Flat custom attributes: strings (≤ 255), numbers, booleans or null, at most 100 keys."""
    if not isinstance(value, dict):
        raise bad_request(f"{field} must be an object", field)
    if len(value) > MAX_ATTRIBUTES:
        raise bad_request(f"at most {MAX_ATTRIBUTES} custom attributes", field)
    out: dict[str, Any] = {}
    for key, item in value.items():
        where = f"{field}.{key}"
        if not key.strip() or len(key) > MAX_ATTRIBUTE_LENGTH:
            raise bad_request(f"custom attribute names must be 1 to {MAX_ATTRIBUTE_LENGTH} characters", where)
        if isinstance(item, str):
            if len(item) > MAX_ATTRIBUTE_LENGTH:
                raise bad_request(f"{where} is longer than {MAX_ATTRIBUTE_LENGTH} characters", where)
        elif isinstance(item, float) and not math.isfinite(item):
            raise bad_request(f"{where} must be a finite number", where)
        elif isinstance(item, int) and not isinstance(item, bool) and abs(item) > MAX_SAFE_INT:
            raise bad_request(f"{where} is too large", where)
        elif item is not None and not isinstance(item, (bool, int, float)):
            raise bad_request(f"{where} must be a string, number, boolean or null", where)
        out[key] = item
    return out


def contact_fields(data: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    """The writable contact fields present in ``data``, checked. With ``partial`` (PUT) an explicit null
    clears a field; on create a null is the same as leaving the field out."""
    out: dict[str, Any] = {}
    checks: dict[str, Callable[[Any], Any]] = {
        "role": lambda v: v if v in (USER, LEAD) else _raise(bad_request("role must be 'user' or 'lead'", "role")),
        "external_id": _external_id,
        "email": _email,
        "phone": lambda v: _text(v, "phone"),
        "name": lambda v: _text(v, "name"),
        "avatar": lambda v: _url(v, "avatar"),
        "signed_up_at": lambda v: _timestamp(v, "signed_up_at"),
        "last_seen_at": lambda v: _timestamp(v, "last_seen_at"),
        "owner_id": lambda v: v if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_SAFE_INT
        else _raise(bad_request("owner_id must be an admin id (an integer)", "owner_id")),
        "unsubscribed_from_emails": lambda v: v if isinstance(v, bool)
        else _raise(bad_request("unsubscribed_from_emails must be a boolean", "unsubscribed_from_emails")),
    }
    for key, check in checks.items():
        if key not in data:
            continue
        if data[key] is None:
            if partial and key != "role":
                out[key] = False if key == "unsubscribed_from_emails" else None
            continue
        out[key] = check(data[key])
    return out


def _raise(exc: ApiError) -> Any:
    raise exc


def _per_page(raw: Any, field: str = "per_page") -> int:
    if raw is None:
        return DEFAULT_PER_PAGE
    if isinstance(raw, str):  # query strings; "²".isdigit() is True but int("²") raises: ASCII digits only
        raw = ascii_int(raw, minimum=1, maximum=MAX_PER_PAGE)
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_PER_PAGE:
        raise bad_request(f"per_page must be an integer between 1 and {MAX_PER_PAGE}", field)
    return raw


def _store(request: Request) -> SQLStore:
    store: SQLStore = request.app.state.store
    return store


# ------------------------------------------------------------------------------------------ contacts
async def create_contact(request: Request) -> Response:
    """``POST /contacts``: a user (default) or a lead; at least one of role, external_id, email."""
    store = _store(request)
    ws = await rest_workspace(request)
    data = await read_json(request)
    fields = contact_fields(data, partial=False)
    if not any(k in fields for k in ("role", "external_id", "email")):
        raise ApiError(400, "parameter_not_found", "at least one of role, external_id or email is required",
                       "email")
    attrs = custom_attributes(data["custom_attributes"]) if data.get("custom_attributes") is not None else {}
    view = await store.create_api_contact(ws, fields, attrs)
    return JSONResponse(contact_json(view))


async def list_contacts(request: Request) -> Response:
    """``GET /contacts?per_page&starting_after``: newest first."""
    store = _store(request)
    ws = await rest_workspace(request)
    per_page = _per_page(query_param(request, "per_page"))
    after = cursor_param(query_param(request, "starting_after"))
    page = await store.contact_page(ws, per_page=per_page, after=after)
    return JSONResponse(list_json(page, per_page))


async def search_contacts(request: Request) -> Response:
    """``POST /contacts/search`` ``{"query": …, "pagination": {"per_page", "starting_after"}}``."""
    store = _store(request)
    ws = await rest_workspace(request)
    data = await read_json(request)
    if data.get("query") is None:
        raise missing("query", "query is required")
    query = parse_search(data["query"])
    pagination = _obj(data, "pagination")
    per_page = _per_page(pagination.get("per_page"), "pagination.per_page")
    after = cursor_param(pagination.get("starting_after"), "pagination.starting_after")
    page = await store.contact_page(ws, per_page=per_page, after=after, query=query)
    return JSONResponse(list_json(page, per_page))


async def _live_contact(store: SQLStore, ws: Workspace, contact_id: str) -> ContactView:
    view = await store.contact_view(ws, contact_id)
    if view is None:
        raise not_found("Contact Not Found")
    return view


async def get_contact(request: Request) -> Response:
    """``GET /contacts/{id}``: a user or lead; 404 for visitors and merged-away contacts."""
    store = _store(request)
    ws = await rest_workspace(request)
    return JSONResponse(contact_json(await _live_contact(store, ws, path_param(request, "contact_id"))))


async def find_by_external_id(request: Request) -> Response:
    """``GET /contacts/find_by_external_id/{external_id}``: users only."""
    store = _store(request)
    ws = await rest_workspace(request)
    view = await store.contact_by_external_id(ws, path_param(request, "external_id"))
    if view is None:
        raise not_found("User Not Found")
    return JSONResponse(contact_json(view))


async def update_contact(request: Request) -> Response:
    """``PUT /contacts/{id}``: the fields sent; custom attributes are merged key by key."""
    store = _store(request)
    ws = await rest_workspace(request)
    data = await read_json(request)
    fields = contact_fields(data, partial=True)
    attrs = custom_attributes(data["custom_attributes"]) if data.get("custom_attributes") is not None else None
    view = await store.update_api_contact(ws, path_param(request, "contact_id"), fields, attrs)
    return JSONResponse(contact_json(view))


async def delete_contact(request: Request) -> Response:
    """``DELETE /contacts/{id}``: the contact, its events and the contacts merged into it."""
    store = _store(request)
    ws = await rest_workspace(request)
    view = await store.delete_api_contact(ws, path_param(request, "contact_id"))
    return JSONResponse({"type": "contact", "id": view.contact.id, "external_id": view.contact.external_id,
                         "deleted": True})


async def merge_contacts(request: Request) -> Response:
    """``POST /contacts/merge`` ``{"from": lead id, "into": user id}`` → the surviving user."""
    store = _store(request)
    ws = await rest_workspace(request)
    data = await read_json(request)
    source, target = data.get("from"), data.get("into")
    for field, value in (("from", source), ("into", target)):
        if value is None:
            raise missing(field, f"{field} must be a contact id")
        if not isinstance(value, str) or not value:
            raise bad_request(f"{field} must be a contact id", field)
    assert isinstance(source, str) and isinstance(target, str)
    contact = await store.merge_contacts(ws, source, target, reason="POST /contacts/merge", proof=API_PROOF)
    return JSONResponse(contact_json(await store.contact_view(ws, contact.id) or contact))


# ------------------------------------------------------------------------------------------ visitors
async def _find_visitor(store: SQLStore, ws: Workspace, vid: str | None, user_id: str | None,
                        field: str) -> Contact:
    """A live (anonymous, unmerged) visitor by contact id or visitor ``user_id``; 404 otherwise."""
    contact = await (store.get_contact(ws, vid) if vid is not None else store.find_contact(ws, visitor_id=user_id))
    if contact is None or contact.role != VISITOR or contact.merged_into:
        raise not_found("Visitor Not Found", field)
    return contact


async def convert_visitor(request: Request) -> Response:
    """``POST /visitors/convert``: ``type`` lead (the visitor becomes a lead) or user (merged into an existing
    user, or becomes that user)."""
    store = _store(request)
    ws = await rest_workspace(request)
    data = await read_json(request)
    kind = data.get("type")
    if kind not in (LEAD, USER):
        raise bad_request("type must be 'lead' or 'user'", "type")
    visitor_obj, user_obj = _obj(data, "visitor"), _obj(data, "user")
    if kind == USER:
        uid, user_id, email = (_str(user_obj, k, "user") for k in ("id", "user_id", "email"))
        if uid is None and user_id is None and email is None:
            raise missing("user", "user.id, user.user_id or user.email is required to convert to a user")
        if user_id is not None and is_generic_user_id(user_id):
            raise bad_request(f"'{user_id}' is not accepted as a user_id", "user.user_id")
    vid, visitor_user_id = _str(visitor_obj, "id", "visitor"), _str(visitor_obj, "user_id", "visitor")
    if vid is None and visitor_user_id is None:
        raise missing("visitor", "visitor.id or visitor.user_id is required (an email alone does not identify "
                      "a visitor)")
    visitor = await _find_visitor(store, ws, vid, visitor_user_id, "visitor")
    if kind == LEAD:
        contact = await store.convert_to_lead(ws, visitor.id, reason="POST /visitors/convert", proof=API_PROOF)
        return JSONResponse(contact_json(await store.contact_view(ws, contact.id) or contact))
    existing = None
    if uid is not None:
        existing = await store.find_contact(ws, contact_id=uid)
        if existing is None or existing.role != USER:
            raise not_found("User Not Found", "user.id")
    elif user_id is not None:
        existing = await store.find_contact(ws, user_id=user_id)
    elif email is not None:
        existing = await store.find_contact(ws, email=email)
    if existing is not None:
        contact = await store.merge_contacts(ws, visitor.id, existing.id, reason="POST /visitors/convert",
                                             proof=API_PROOF)
    else:
        contact = await store.identify_user(ws, visitor.id, user_id=user_id, email=email,
                                            reason="POST /visitors/convert", proof=API_PROOF)
    return JSONResponse(contact_json(await store.contact_view(ws, contact.id) or contact))


async def get_visitor(request: Request) -> Response:
    """``GET /visitors?user_id=``: a visitor by the id ``Intercom('getVisitorId')`` returns."""
    store = _store(request)
    ws = await rest_workspace(request)
    user_id = query_param(request, "user_id")
    if not user_id:
        raise missing("user_id")
    contact = await store.find_contact(ws, visitor_id=user_id)
    if contact is None or contact.role != VISITOR:
        raise not_found("Visitor Not Found", "user_id")
    return JSONResponse(visitor_json(contact, ws.app_id))


async def update_visitor(request: Request) -> Response:
    """``PUT /visitors`` ``{id | user_id, name?, custom_attributes?}``."""
    store = _store(request)
    ws = await rest_workspace(request)
    data = await read_json(request)
    name = _text(data["name"], "name") if data.get("name") is not None else None
    attrs = custom_attributes(data["custom_attributes"]) if data.get("custom_attributes") is not None else None
    vid, user_id = _str(data, "id"), _str(data, "user_id")
    if vid is None and user_id is None:
        raise missing("id", "id or user_id is required")
    visitor = await _find_visitor(store, ws, vid, user_id, "id" if vid is not None else "user_id")
    updated = await store.update_visitor(ws, visitor.id, name=name, custom_attributes=attrs)
    if updated is None:
        raise not_found("Visitor Not Found", "id" if vid is not None else "user_id")
    return JSONResponse(visitor_json(updated, ws.app_id))
