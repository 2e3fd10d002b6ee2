"""REST contacts and visitors, in Intercom's shapes: the lifecycle calls (convert a visitor, merge a lead into
a user) and reading a contact."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .errors import ApiError, bad_request, missing, not_found
from .identity import is_generic_user_id
from .ingest import parse_body
from .rest_auth import rest_workspace
from .store import SQLStore
from .store.models import LEAD, USER, VISITOR, Contact, Workspace

API_PROOF = "REST access token"


def _empty_list(url: str) -> dict[str, Any]:
    return {"type": "list", "data": [], "url": url, "total_count": 0, "has_more": False}


def contact_json(contact: Contact) -> dict[str, Any]:
    """Intercom's contact object (abridged: fields Trailmark does not track are null)."""
    return {
        "type": "contact", "id": contact.id, "workspace_id": str(contact.workspace_id),
        "external_id": contact.external_id, "role": contact.role, "email": contact.email,
        "phone": contact.phone, "name": contact.name, "avatar": None, "owner_id": None,
        "has_hard_bounced": False, "marked_email_as_spam": False, "unsubscribed_from_emails": False,
        "created_at": contact.created_at, "updated_at": contact.updated_at,
        "signed_up_at": contact.signed_up_at, "last_seen_at": contact.last_seen_at,
        "last_contacted_at": contact.contacted_at, "custom_attributes": contact.custom_attributes,
        "tags": _empty_list(f"/contacts/{contact.id}/tags"), "notes": _empty_list(f"/contacts/{contact.id}/notes"),
        "companies": _empty_list(f"/contacts/{contact.id}/companies"),
        "location": {"type": "location", "country": None, "region": None, "city": None},
        "social_profiles": {"type": "list", "data": []},
    }


def visitor_json(contact: Contact, app_id: str) -> dict[str, Any]:
    return {
        "type": "visitor", "id": contact.id, "user_id": contact.visitor_id, "anonymous": True,
        "email": contact.email or "", "phone": contact.phone, "name": contact.name, "app_id": app_id,
        "created_at": contact.created_at, "updated_at": contact.updated_at,
        "last_request_at": contact.last_seen_at, "custom_attributes": contact.custom_attributes,
    }


def _obj(data: dict[str, Any], field: str) -> dict[str, Any]:
    value = data.get(field)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_request(f"{field} must be an object", field)
    return value


def _str(obj: dict[str, Any], key: str, field: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        raise bad_request(f"{field}.{key} must be a non-empty string", f"{field}.{key}")
    return str(value).strip()


async def _find_visitor(store: SQLStore, ws: Workspace, visitor: dict[str, Any]) -> Contact:
    vid, user_id = _str(visitor, "id", "visitor"), _str(visitor, "user_id", "visitor")
    if vid is None and user_id is None:
        raise missing("visitor", "visitor.id or visitor.user_id is required (an email alone does not identify a visitor)")
    contact = await (store.get_contact(ws, vid) if vid is not None else store.find_contact(ws, visitor_id=user_id))
    if contact is None or contact.role != VISITOR or contact.merged_into:
        raise not_found("Visitor Not Found", "visitor")
    return contact


async def convert_visitor(request: Request) -> Response:
    """``POST /visitors/convert``: ``type`` lead (the visitor becomes a lead) or user (merged into an existing
    user, or becomes that user)."""
    store: SQLStore = request.app.state.store
    ws = await rest_workspace(request)
    data = await parse_body(request)
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
    visitor = await _find_visitor(store, ws, visitor_obj)
    if kind == LEAD:
        contact = await store.convert_to_lead(ws, visitor.id, reason="POST /visitors/convert", proof=API_PROOF)
        return JSONResponse(contact_json(contact))
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
    return JSONResponse(contact_json(contact))


async def merge_contacts(request: Request) -> Response:
    """``POST /contacts/merge`` ``{"from": lead id, "into": user id}`` → the surviving user."""
    store: SQLStore = request.app.state.store
    ws = await rest_workspace(request)
    data = await parse_body(request)
    source, target = data.get("from"), data.get("into")
    for field, value in (("from", source), ("into", target)):
        if not isinstance(value, str) or not value:
            raise missing(field, f"{field} must be a contact id")
    assert isinstance(source, str) and isinstance(target, str)
    contact = await store.merge_contacts(ws, source, target, reason="POST /contacts/merge", proof=API_PROOF)
    return JSONResponse(contact_json(contact))


async def get_contact(request: Request) -> Response:
    store: SQLStore = request.app.state.store
    ws = await rest_workspace(request)
    contact = await store.get_contact(ws, request.path_params["contact_id"])
    if contact is None or contact.merged_into:
        raise not_found("Contact Not Found")
    return JSONResponse(contact_json(contact))


async def get_visitor(request: Request) -> Response:
    """``GET /visitors?user_id=``: a visitor by the id ``Intercom('getVisitorId')`` returns."""
    store: SQLStore = request.app.state.store
    ws = await rest_workspace(request)
    user_id = request.query_params.get("user_id")
    if not user_id:
        raise missing("user_id")
    contact = await store.find_contact(ws, visitor_id=user_id)
    if contact is None or contact.role != VISITOR:
        raise not_found("Visitor Not Found", "user_id")
    return JSONResponse(visitor_json(contact, ws.app_id))
