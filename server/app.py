"""``create_app(settings)``: routes, error handlers and the lifespan. The logic lives elsewhere."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import messenger, rest_contacts, rest_events
from .errors import ApiError, error_body, error_response
from .retention import purge_forever
from .settings import Settings
from .store import SQLStore, open_store

log = logging.getLogger("trailmark")


async def handle_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def handle_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    # Intercom answers an unsupported method on a path with 404, too.
    code, message = ("not_found", "Resource Not Found") if status in (404, 405) else ("bad_request", str(exc.detail))
    return JSONResponse(error_body([{"code": code, "message": message}]), status_code=404 if status == 405 else status)


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return JSONResponse(error_body([{"code": "server_error", "message": "Internal server error"}]), status_code=500)


async def health(request: Request) -> Response:
    return JSONResponse({"ok": True})


def routes() -> list[Route]:
    return [
        Route("/health", health),
        Route("/widget/{app_id}", messenger.widget),
        Route("/messenger/web/ping", messenger.ping, methods=["POST"]),
        Route("/messenger/web/events", messenger.events, methods=["POST"]),
        Route("/messenger/web/conversations", messenger.conversations, methods=["POST"]),
        Route("/messenger/web/{path:path}", messenger.preflight, methods=["OPTIONS"]),
        Route("/events", rest_events.create_event, methods=["POST"]),
        Route("/events", rest_events.list_events, methods=["GET"]),
        Route("/visitors/convert", rest_contacts.convert_visitor, methods=["POST"]),
        Route("/visitors", rest_contacts.get_visitor, methods=["GET"]),
        Route("/contacts/merge", rest_contacts.merge_contacts, methods=["POST"]),
        Route("/contacts/{contact_id}", rest_contacts.get_contact, methods=["GET"]),
    ]


def create_app(settings: Settings | None = None, store: SQLStore | None = None) -> Starlette:
    """Build the ASGI app. The lifespan opens the store (a given ``store`` is opened there too)."""
    settings = settings or Settings.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.store = store or open_store(settings.database_url)
        await app.state.store.open()
        purger = None
        if settings.purge_interval_seconds > 0:
            purger = asyncio.create_task(purge_forever(app.state.store, settings.purge_interval_seconds))
        try:
            yield
        finally:
            if purger:
                purger.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await purger
            await app.state.store.close()

    app = Starlette(routes=routes(), lifespan=lifespan,
                    exception_handlers={ApiError: handle_api_error, HTTPException: handle_http_error,
                                        Exception: handle_unexpected})
    app.state.settings = settings
    return app
