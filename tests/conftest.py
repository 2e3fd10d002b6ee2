"""Shared fixtures. Fixtures are factories: ``make_client(**workspace_settings)`` builds an app on a fresh
store, enters its lifespan (httpx's ASGITransport does not) and hands back a ready client.

The ``store_url`` fixture is parametrized over the backends; every test that uses it runs on each, on a database
the migrations have already made (tests/backends.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from trailmark.app import create_app
from trailmark.settings import Settings
from trailmark.store import SQLStore, open_store
from trailmark.store.models import Workspace

from .backends import BACKENDS, backend_url, drop_pooled_schemas


@pytest.fixture(params=BACKENDS)
async def store_url(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[str]:
    """A migrated database on each backend; an empty one for a test marked ``empty_store``."""
    empty = request.node.get_closest_marker("empty_store") is not None
    async with backend_url(request.param, tmp_path, empty=empty) as url:
        yield url


def pytest_sessionfinish(session: pytest.Session) -> None:
    asyncio.run(drop_pooled_schemas())  # this process's reusable PostgreSQL schemas


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[SQLStore]:
    """An open store on a fresh database of each backend (the store-level tests' fixture)."""
    s = open_store(store_url)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


@dataclass
class Harness:
    """An app on a fresh store, its store, one workspace and an in-process client."""

    app: Any
    store: SQLStore
    workspace: Workspace
    client: httpx.AsyncClient

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.workspace.access_token}"}

    async def ping(self, **body: Any) -> httpx.Response:
        return await self.client.post("/messenger/web/ping",
                                      content=json.dumps({"app_id": self.workspace.app_id, **body}),
                                      headers={"content-type": "text/plain"})

    async def visitor(self, **body: Any) -> dict[str, Any]:
        response = await self.ping(**body)
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def track(self, session: str, *events: dict[str, Any], **extra: Any) -> httpx.Response:
        return await self.client.post("/messenger/web/events", content=json.dumps(
            {"app_id": self.workspace.app_id, "session": session, "events": list(events), **extra}))

    async def event_count(self) -> int:
        return await self.store.count_events(self.workspace)


@pytest.fixture
def make_harness(store_url: str) -> Callable[..., contextlib.AbstractAsyncContextManager[Harness]]:
    @contextlib.asynccontextmanager
    async def factory(**workspace_settings: Any) -> AsyncIterator[Harness]:
        store = open_store(store_url)
        app = create_app(Settings(database_url=store_url), store=store)
        async with app.router.lifespan_context(app):
            # Most tests boot users without a proof: they opt out of the secure default, as an operator can;
            # the tests of identity verification pass enforce_identity_verification=True.
            ws = await store.create_workspace(
                "Test", allowed_origins=workspace_settings.pop("allowed_origins", ()),
                enforce_identity_verification=workspace_settings.pop("enforce_identity_verification", False))
            if workspace_settings:
                await store.update_workspace(ws.id, **workspace_settings)
                fresh = await store.workspace_by_app_id(ws.app_id, cached=False)
                assert fresh is not None
                ws = dataclasses.replace(fresh, access_token=ws.access_token)  # the token is only known when made
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                yield Harness(app, store, ws, client)

    return factory


@pytest.fixture
async def harness(make_harness: Callable[..., Any]) -> AsyncIterator[Harness]:
    async with make_harness() as h:
        yield h
