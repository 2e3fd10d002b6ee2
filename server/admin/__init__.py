"""The signed-in admin pages (``/admin``): contacts with Intercom's event filters, a contact's merged
timeline, event settings. Routes: ``routes.py``; sign-in: ``auth.py``; how values look: ``render.py``;
the daily chart: ``charts.py``; queries: ``server/store/admin_reads.py``; pages: ``server/templates/``."""

from .routes import admin_routes

__all__ = ["admin_routes"]
