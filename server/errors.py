"""Intercom's error shape, built in one place.

Every 4xx/5xx answer of Trailmark is an *error list* (Intercom's REST API, as docs/api.md describes it):
``{"type": "error.list", "request_id": "...", "errors": [{"code", "message", "field"?}]}``.
Handlers raise :class:`ApiError`; the store and the rules raise domain errors (``domain_errors.py``),
which :func:`api_error` maps to status and code here, once. The app's exception handlers render both
(``http_edge.error_response``). No web framework is imported here.
"""

from __future__ import annotations

import uuid
from typing import Any

from .domain_errors import (
    Conflict,
    DomainError,
    InvalidInput,
    InvalidMerge,
    NameLimitReached,
    NotFound,
    UnknownIdentity,
)


class ApiError(Exception):
    """A client-visible error: an HTTP status and one or more ``(code, message, field)`` items."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.errors: list[dict[str, Any]] = [_item(code, message, field)]
        self.headers = headers or {}

    def also(self, code: str, message: str, field: str | None = None) -> ApiError:
        self.errors.append(_item(code, message, field))
        return self


def _item(code: str, message: str, field: str | None) -> dict[str, Any]:
    item: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        item["field"] = field
    return item


def error_body(errors: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "error.list", "request_id": uuid.uuid4().hex, "errors": errors}


# Domain error → (HTTP status, Intercom's error code): the statuses and codes the API has always answered.
_STATUS: dict[type[DomainError], tuple[int, str]] = {
    NotFound: (404, "not_found"),
    Conflict: (409, "conflict"),
    InvalidMerge: (400, "invalid_merge"),
    NameLimitReached: (422, "422"),  # Intercom's own code for "Cannot have more than 120 active event names"
    InvalidInput: (400, "parameter_invalid"),
    UnknownIdentity: (401, "invalid_identity"),
}


def api_error(exc: DomainError) -> ApiError:
    status, code = next(v for k, v in _STATUS.items() if isinstance(exc, k))
    return ApiError(status, code, exc.message, exc.field)


# Shorthands for the errors the API raises most often.
def bad_request(message: str, field: str | None = None, code: str = "parameter_invalid") -> ApiError:
    return ApiError(400, code, message, field)


def missing(field: str, message: str | None = None) -> ApiError:
    return ApiError(400, "parameter_not_found", message or f"{field} is required", field)


def not_found(message: str = "Resource Not Found", field: str | None = None) -> ApiError:
    return ApiError(404, "not_found", message, field)


def unauthorized(message: str = "Access Token Invalid") -> ApiError:
    return ApiError(401, "unauthorized", message)


def unprocessable(message: str, field: str | None = None, code: str = "unprocessable_entity") -> ApiError:
    return ApiError(422, code, message, field)
