"""The signed-in admin pages (``/admin``): contacts with Intercom's event filters, a contact's merged
timeline, event settings, the inbox, the workspace's settings. Routes: ``routes.py``, ``inbox.py`` and
``settings_page.py``; sign-in: ``auth.py``; how values look: ``render.py``; the daily chart: ``charts.py``;
queries: ``server/store/admin_reads.py`` and ``server/store/conversations.py``; pages: ``server/templates/``."""

from starlette.routing import BaseRoute

from . import routes
from .inbox import inbox_routes
from .live_view import live_routes
from .login_link import login_link_routes
from .messages_admin import messages_routes
from .search import search_routes
from .settings_page import settings_routes


def admin_routes() -> list[BaseRoute]:
    return routes.admin_routes(*inbox_routes(), *live_routes(), *search_routes(), *login_link_routes(),
                               *messages_routes(), *settings_routes())


__all__ = ["admin_routes"]
