"""Which contact holds a tracked contact's history now, for many contacts at once: its own id, or the survivor
it was merged into. Every writer of events and page views resolves its requests' contacts here, with one look-up
per 500 ids (and one more for the survivors) instead of one or two per request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .sql_helpers import placeholders

if TYPE_CHECKING:
    from .db import Conn

LOOKUP_CHUNK = 500  # ids per ``IN (…)`` list


@dataclass(frozen=True)
class Found:
    workspace_id: int
    role: str
    merged_into: str | None


async def find_holders(conn: Conn, ids: list[str]) -> dict[str, Found]:
    """The contacts ``ids`` and the contacts they were merged into, by id (ids that name no contact are absent)."""
    found: dict[str, Found] = {}
    for wanted in (sorted(set(ids)), None):
        if wanted is None:  # the survivors not among them (merges point at the root: one level)
            wanted = sorted({f.merged_into for f in found.values() if f.merged_into and f.merged_into not in found})
        for start in range(0, len(wanted), LOOKUP_CHUNK):
            chunk = wanted[start:start + LOOKUP_CHUNK]
            rows = await conn.fetch_all("SELECT id, workspace_id, role, merged_into FROM contacts "
                                        f"WHERE id IN ({placeholders(len(chunk))})", chunk)
            found.update({r["id"]: Found(r["workspace_id"], r["role"], r["merged_into"]) for r in rows})
    return found


def holder_of(found: dict[str, Found], contact_id: str, workspace_id: int) -> tuple[str, str] | None:
    """``(id, role)`` of the contact now holding ``contact_id``'s history, or None when it names no contact of
    ``workspace_id`` (none at all, or one of another workspace)."""
    own = found.get(contact_id)
    if own is None or own.workspace_id != workspace_id:
        return None
    if own.merged_into is None:
        return contact_id, own.role
    survivor = found.get(own.merged_into)
    return own.merged_into, (survivor.role if survivor else own.role)
