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
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from . import (
    messenger,
    messenger_conversations,
    messenger_messages,
    openapi,
    rest_contacts,
    rest_events,
    rest_messages,
    snippet,
)
from .admin import admin_routes
from .domain_errors import DomainError
from .errors import ApiError, api_error, error_body
from .http_edge import error_response, route_path
from .live import LiveHub
from .ratelimit import RateLimitMiddleware
from .retention import purge_forever
from .settings import Settings
from .sources import segment
from .sources import stripe as stripe_source
from .store import SQLStore, open_store
from .visitor_limit import NewVisitorLimit

log = logging.getLogger("trailmark")


async def handle_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(request, exc)


async def handle_domain_error(request: Request, exc: Exception) -> Response:
    """What the store or the rules refused, answered with its status and code (``errors.api_error``)."""
    assert isinstance(exc, DomainError)
    return error_response(request, api_error(exc))


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


EVENTS_PATH = "/messenger/web/events"


def routes() -> list[BaseRoute]:
    return [
        # Served by TrailmarkApp without the router for POST; listed for the other methods' 404 and the docs.
        Route(EVENTS_PATH, messenger.events, methods=["POST"]),
        Route("/health", health),
        *admin_routes(),  # the signed-in admin pages (server/admin/)
        Route("/widget/{app_id}", messenger.widget),
        Route("/widget/{app_id}/panel.js", snippet.widget_panel),
        Route("/widget/{app_id}/messages.js", snippet.widget_messages),
        Route("/messenger/web/ping", messenger.ping, methods=["POST"]),
        Route("/messenger/web/conversations", messenger_conversations.conversations, methods=["POST"]),
        Route("/messenger/web/thread", messenger_conversations.thread, methods=["POST"]),
        Route("/messenger/web/messages/{delivery_id}/{what}", messenger_messages.mark, methods=["POST"]),
        Route("/messenger/web/{path:path}", messenger.preflight, methods=["OPTIONS"]),
        Route("/events", rest_events.create_event, methods=["POST"]),
        Route("/events", rest_events.list_events, methods=["GET"]),
        Route("/events/summaries", rest_events.create_summaries, methods=["POST"]),
        Route("/visitors/convert", rest_contacts.convert_visitor, methods=["POST"]),
        Route("/visitors", rest_contacts.get_visitor, methods=["GET"]),
        Route("/visitors", rest_contacts.update_visitor, methods=["PUT"]),
        Route("/contacts", rest_contacts.create_contact, methods=["POST"]),
        Route("/contacts", rest_contacts.list_contacts, methods=["GET"]),
        Route("/contacts/search", rest_contacts.search_contacts, methods=["POST"]),
        Route("/contacts/merge", rest_contacts.merge_contacts, methods=["POST"]),
        Route("/contacts/find_by_external_id/{external_id}", rest_contacts.find_by_external_id, methods=["GET"]),
        Route("/contacts/{contact_id}", rest_contacts.get_contact, methods=["GET"]),
        Route("/contacts/{contact_id}", rest_contacts.update_contact, methods=["PUT"]),
        Route("/contacts/{contact_id}", rest_contacts.delete_contact, methods=["DELETE"]),
        *rest_messages.routes(),  # /trailmark/messages and Intercom's POST /messages (server/rest_messages.py)
        Route("/openapi.json", openapi.openapi_json, methods=["GET"]),
        # Event sources (server/sources/, docs/sources.md): Segment's HTTP tracking API, Stripe webhooks.
        Route("/v1/batch", segment.batch, methods=["POST"]),
        Route("/v1/import", segment.batch, methods=["POST"]),
        Route("/v1/b", segment.batch, methods=["POST"]),  # analytics.js's short paths: /v1/b, /v1/{t|p|i|…}
        Route("/v1/{kind}", segment.single, methods=["POST"]),
        Route("/v1/{path:path}", segment.preflight, methods=["OPTIONS"]),  # CORS, for Segment's browser library
        Route("/integrations/stripe/webhook", stripe_source.webhook, methods=["POST"]),
        Route("/integrations/stripe/webhook/{app_id}", stripe_source.webhook, methods=["POST"]),
        Route("/integrations/stripe/unmatched", stripe_source.unmatched, methods=["GET"]),
    ]


class TrailmarkApp(Starlette):
    """Starlette, with its busiest route taken straight to its handler.

    ``POST /messenger/web/events`` is nearly every request a busy site sends. Through the app it crosses three
    middlewares, the router and two wrappers, built for what this route never uses (the REST rate limit counts
    Bearer requests; it has no path parameters): about a third of its event-loop CPU in-process
    (bench/ingest_costs.py). Here it gets the same handler and the same error answers without them."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and route_path(scope) == EVENTS_PATH:
            scope["app"] = self
            await _serve_direct(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


async def _serve_direct(scope: Scope, receive: Receive, send: Send) -> None:
    request = Request(scope, receive)
    try:
        response = await messenger.events(request)
    except ApiError as exc:
        response = await handle_api_error(request, exc)
    except DomainError as exc:
        response = await handle_domain_error(request, exc)
    except Exception as exc:  # what ServerErrorMiddleware would answer: logged, 500 in Intercom's shape
        response = await handle_unexpected(request, exc)
    await response(scope, receive, send)


def create_app(settings: Settings | None = None, store: SQLStore | None = None) -> Starlette:
    """Build the ASGI app. The lifespan opens the store (a given ``store`` is opened there too)."""
    settings = settings or Settings.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.store = store or open_store(settings.database_url)
        await app.state.store.open()
        app.state.live = LiveHub()
        app.state.store.on_commit.append(app.state.live.notify)
        if app.state.store.db.dialect.notifies_other_processes:
            await app.state.live.listen(app.state.store.db.url)
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
            await app.state.live.close()
            await app.state.store.close()

    app = TrailmarkApp(routes=routes(), lifespan=lifespan,
                       exception_handlers={ApiError: handle_api_error, DomainError: handle_domain_error,
                                           HTTPException: handle_http_error,
                                           Exception: handle_unexpected})
    app.add_middleware(RateLimitMiddleware)  # X-RateLimit-* and 429 on the Bearer REST API (server/ratelimit.py)
    app.state.settings = settings
    app.state.new_visitor_limit = NewVisitorLimit(settings.new_visitors_per_minute)
    return app
