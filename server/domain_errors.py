"""What the store and the product rules refuse, in the product's words: no HTTP here.

The edge (``errors.api_error``, used by the app's exception handler) gives each one its status and
Intercom's error code; the store raises these (or returns them per request) and knows nothing of HTTP.
"""

from __future__ import annotations


class DomainError(Exception):
    """A refusal the client caused; ``field`` names the part of the request at fault, when one is."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(DomainError):
    """The contact, visitor or merge named does not exist (or is merged away)."""


class Conflict(DomainError):
    """Another contact already holds this external id or email."""


class InvalidMerge(DomainError):
    """A merge (or its undo) that the identity rules do not allow."""


class NameLimitReached(DomainError):
    """A new event name past the workspace's limit of active names."""


class InvalidInput(DomainError):
    """A value the rules or the database cannot take (e.g. a NUL character PostgreSQL refuses)."""


class UnknownIdentity(DomainError):
    """An identity token that names no contact (a contact deleted since it was signed)."""
