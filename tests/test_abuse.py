"""Limits that can't be abused (the trust issue): new visitors per client address, new event names from
unverified browsers, per-event refusals in a browser batch.

Every test runs on each store backend (the ``store_url`` fixture behind ``harness``)."""

from __future__ import annotations

import json
from typing import Any

import httpx

from trailmark.visitor_limit import NewVisitorLimit


def from_address(h: Any, address: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=h.app, client=(address, 40000)),
                             base_url="http://testserver")


async def ping_from(client: httpx.AsyncClient, h: Any, **body: Any) -> httpx.Response:
    return await client.post("/messenger/web/ping", content=json.dumps({"app_id": h.workspace.app_id, **body}),
                             headers={"origin": "https://shop.example"})


# ------------------------------------------------------------------------------------------ new visitors
async def test_token_less_pings_create_a_bounded_number_of_visitors_per_address(harness: Any) -> None:
    """Trust finding: 934 contacts in 8 s from one client. New visitors are now counted per client address."""
    h = harness
    h.app.state.new_visitor_limit = NewVisitorLimit(5)
    async with from_address(h, "203.0.113.5") as flood, from_address(h, "198.51.100.7") as other:
        answers = [await ping_from(flood, h) for _ in range(8)]
        assert [r.status_code for r in answers] == [200] * 5 + [429] * 3
        refused = answers[-1]
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert refused.headers["access-control-allow-origin"] == "*"  # the shim can read the refusal
        body = refused.json()
        assert body["type"] == "error.list" and body["errors"][0]["code"] == "rate_limit_exceeded"
        # A visitor the address already has keeps working: only *new* visitors are limited.
        known = answers[0].json()
        again = await ping_from(flood, h, device=known["device"], session=known["session"])
        assert again.status_code == 200 and again.json()["visitor_id"] == known["visitor_id"]
        # Another address has its own budget.
        assert (await ping_from(other, h)).status_code == 200
    # The contact form (first contact) creates visitors too: the same budget applies.
    async with from_address(h, "203.0.113.5") as flood:
        r = await flood.post("/messenger/web/conversations", content=json.dumps(
            {"app_id": h.workspace.app_id, "email": "a@b.example", "message": "hi"}))
        assert r.status_code == 429
    assert sum((await h.store.admin_role_counts(h.workspace)).values()) == 6
