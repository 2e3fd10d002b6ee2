"""A person's right of access (GDPR): everything kept about one contact, for ``trailmark export --contact``.
Erasure is the store's ``delete_contact`` (the CLI's ``delete-contact`` and REST ``DELETE /contacts/{id}``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .contact_lookup import find_person
from .store import SQLStore
from .store.models import Workspace


async def export_contact(store: SQLStore, ws: Workspace, ident: str,
                         progress: Callable[[int, int], None] | None = None) -> dict[str, Any] | None:
    """The contact ``ident`` names (id, user_id, email or visitor id), the contacts merged into it, their events,
    page views and conversations (``progress`` as in ``store.contact_export``); None when nobody matches."""
    contact = await find_person(store, ws, ident)
    if contact is None:
        return None
    data: dict[str, Any] | None = await store.contact_export(ws, contact.id, progress=progress)
    if data is not None:
        # Everything the person wrote and was answered, with the closes and assignments.
        found = await store.conversations.for_contact(ws, data["contact"]["id"])
        data["conversations"] = []
        for conv in found:
            full = await store.conversations.conversation(ws, conv.id)
            parts = full[1] if full else []
            data["conversations"].append({
                "id": str(conv.id), "state": conv.state, "created_at": conv.created_at, "contact_id": conv.contact_id,
                "parts": [{"kind": p.kind, "author_type": p.author_type, "body": p.body, "created_at": p.created_at}
                          for p in parts]})
    return data

