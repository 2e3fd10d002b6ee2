"""Search: a contact by email, name, phone, user_id, visitor id or contact id (the header's search box).
One match goes straight to the profile; several are listed. Store: ``store.search`` (store/contact_search.py)."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .routes import Admin, signed_in


@signed_in
async def search(admin: Admin) -> Response:
    assert admin.workspace is not None
    query = admin.request.query_params.get("q", "").strip()[:200]
    found = await admin.store.search.search(admin.workspace, query) if query else []
    if len(found) == 1:
        return admin.redirect(f"/admin/contacts/{found[0].id}")
    return admin.render("search.html", section="contacts", query=query, search_text=query, found=found)


def search_routes() -> list[BaseRoute]:
    return [Route("/search", search, methods=["GET"])]
