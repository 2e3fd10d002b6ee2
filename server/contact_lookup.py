"""Finding a contact from whatever a person typed: the CLI's ``--contact``, the live view's contact filter."""

from __future__ import annotations

from .store import SQLStore
from .store.models import Contact, Workspace


async def find_person(store: SQLStore, ws: Workspace, ident: str) -> Contact | None:
    """A contact by its id, else a user's external id (user_id), else an email, else a visitor id."""
    return (await store.find_contact(ws, contact_id=ident)
            or await store.find_contact(ws, user_id=ident)
            or (await store.contact_by_email(ws, ident) if "@" in ident else None)
            or await store.find_contact(ws, visitor_id=ident))
