"""Finding a contact by what a teammate knows of them: email, name, phone (contains, any case), user_id,
visitor id or contact id (exact). A store part of its own (it needs only ``db``).

A match on a contact that was merged away (a visitor id of a visitor who became a user) answers with the
contact that holds it now, so a search always lands on a live profile.
"""

from __future__ import annotations

from .db import Database
from .models import Contact, Workspace

MAX_QUERY = 200


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class ContactSearch:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def search(self, workspace: Workspace, query: str, limit: int = 50) -> list[Contact]:
        q = query.strip()[:MAX_QUERY]
        if not q:
            return []
        like = _like(q.lower())
        async with self.db.read() as conn:
            rows = await conn.fetch_all(
                "SELECT l.*, MIN(m.rank) AS rank FROM ("
                "  SELECT COALESCE(c.merged_into, c.id) AS live_id, CASE WHEN c.id = ? OR c.visitor_id = ? "
                "    OR c.external_id = ? OR lower(c.email) = ? THEN 0 ELSE 1 END AS rank"
                "  FROM contacts c WHERE c.workspace_id = ? AND (c.id = ? OR c.visitor_id = ? OR c.external_id = ?"
                "    OR lower(c.email) LIKE ? ESCAPE '\\' OR lower(c.name) LIKE ? ESCAPE '\\'"
                "    OR c.phone LIKE ? ESCAPE '\\')"
                ") AS m JOIN contacts l ON l.id = m.live_id "
                "GROUP BY l.id ORDER BY rank, COALESCE(l.last_seen_at, l.created_at) DESC, l.id LIMIT ?",
                (q, q, q, q.lower(), workspace.id, q, q, q, like, like, _like(q), limit))
        return [Contact.from_row(r) for r in rows]
