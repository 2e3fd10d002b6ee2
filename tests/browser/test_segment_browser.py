"""Segment's browser library in Chromium (issue "trust": Segment's browser library): analytics.js
(``@segment/analytics-next``, its UMD bundle from tests/node/node_modules) on a page of the demo site's origin,
pointed at the real Trailmark server (another origin: CORS preflights and answers) with inline settings
(``cdnSettings``), so nothing is fetched from Segment's CDN. What the server then holds is read back through
REST ``GET /events`` with each workspace's access token.

The library comes from the npm registry with the Node clients (tests/node/package.json, ``npm ci --prefix
tests/node``); without it these tests skip and say so.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import ROOT, Stack, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PACKAGE = ROOT / "tests" / "node" / "node_modules" / "@segment" / "analytics-next"
BUNDLE = PACKAGE / "dist" / "umd" / "index.js"  # exposes window.AnalyticsNext
DEMO_PAGE, BUNDLE_PATH = "/segment-demo.html", "/vendor/analytics-next.js"

# The setup docs/sources.md shows: the write key as Segment.io's apiKey in inline cdnSettings (analytics.js
# reads its write key there, not from load()'s writeKey, once the CDN is not asked), no remote metrics
# (analytics.js would post its own telemetry to <apiHost>/m), and apiHost naming Trailmark's /v1.
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Segment demo</title>
<script src="%(bundle)s"></script>
<script>
  const KEY = %(key)s;
  window.ajs = AnalyticsNext.AnalyticsBrowser.load(
    {writeKey: KEY,
     cdnSettings: {integrations: {'Segment.io': {apiKey: KEY}}, metrics: {sampleRate: 0}}},
    {integrations: {'Segment.io': {apiHost: %(host)s, protocol: 'http', ...%(extra)s}}});
</script></head>
<body><main><h1>Segment demo</h1></main></body></html>
"""


@dataclass
class Workspace:
    app_id: str
    access_token: str
    write_key: str
    url: str

    def rest(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(self.url + path, params=params, timeout=10,
                         headers={"Authorization": f"Bearer {self.access_token}", "Accept": "application/json"})

    def events(self, contact: str) -> list[dict[str, Any]]:
        """The contact's events (``user_id``: a user's external id, or a visitor's or lead's anonymousId)."""
        r = self.rest("/events", type="user", user_id=contact, per_page=100)
        if r.status_code == 404:
            return []
        assert r.status_code == 200, r.text
        return list(r.json()["events"])

    def has_user(self, user_id: str) -> bool:
        r = self.rest(f"/contacts/find_by_external_id/{user_id}")
        assert r.status_code in (200, 404), r.text
        return r.status_code == 200


def cli(stack: Stack, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "trailmark", *args, "--database", str(stack.server.database)],
                          cwd=ROOT, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def workspace(stack: Stack, name: str, *flags: str) -> Workspace:
    """A workspace in the running server's database (made through the CLI; the server reads write keys from the
    database on each call), and its Segment write key."""
    ws = json.loads(cli(stack, "workspace", "create", "--json", "--name", name, *flags))
    key = cli(stack, "segment", "write-key", "--app-id", ws["app_id"])
    assert key.startswith("wk_")
    return Workspace(ws["app_id"], ws["access_token"], key, stack.server.url)


@pytest.fixture(scope="module")
def workspaces(stack: Stack) -> dict[str, Workspace]:
    if not BUNDLE.exists():
        pytest.skip(f"@segment/analytics-next is not installed ({BUNDLE}): run `npm ci --prefix tests/node`")
    return {"enforcing": workspace(stack, "Segment enforcing"),  # the CLI's secure default
            "open": workspace(stack, "Segment open", "--no-enforce-identity-verification"),
            "elsewhere": workspace(stack, "Segment elsewhere", "--no-enforce-identity-verification",
                                   "--allowed-origin", "https://shop.example")}


def open_demo(stack: Stack, new_page: Any, ws: Workspace, **segment_settings: Any) -> tuple[Any, Any]:
    """The demo page (on the demo site's origin) with analytics.js loaded and pointed at Trailmark."""
    page, watch = new_page()
    html = PAGE % {"bundle": BUNDLE_PATH, "key": json.dumps(ws.write_key),
                   "host": json.dumps(stack.server.url.removeprefix("http://") + "/v1"),
                   "extra": json.dumps(segment_settings)}
    page.route(stack.demo_url + BUNDLE_PATH,
               lambda route: route.fulfill(path=str(BUNDLE), content_type="text/javascript"))
    # A document the demo server really sent (its 404 page), then our HTML written into it: a document
    # fulfilled by page.route would have no address space, and Chromium's Local Network Access checks would
    # then refuse its requests to 127.0.0.1 before any CORS.
    page.goto(stack.demo_url + DEMO_PAGE)
    page.set_content(html)
    page.wait_for_function("() => window.ajs && window.ajs.instance && window.ajs.instance.initialized")
    return page, watch


CALLS = """async (calls) => {
    const [analytics] = await window.ajs;
    const failed = [];
    for (const [method, ...args] of calls) {
        const ctx = await analytics[method](...args);
        if (ctx.failedDelivery()) failed.push([method, String(ctx.failedDelivery().reason)]);
    }
    return {anonymousId: analytics.user().anonymousId(), failed};
}"""


def segment_requests(watch: Any, server_url: str) -> list[str]:
    return [u.removeprefix(server_url) for u in watch.requests if u.startswith(server_url + "/v1/")]


def test_track_page_identify_arrive_and_identify_makes_the_user_where_identity_is_not_enforced(
        stack: Stack, new_page: Any, workspaces: dict[str, Workspace]) -> None:
    ws = workspaces["open"]
    page, watch = open_demo(stack, new_page, ws)
    done = page.evaluate(CALLS, [["page"], ["track", "Clicked Buy", {"plan": "pro", "revenue": 12.5}],
                                 ["identify", "ajs-user-1", {"email": "ajs1@example.com", "plan": "pro"}],
                                 ["track", "After Identify"]])
    assert done["failed"] == [], done
    assert segment_requests(watch, stack.server.url) == ["/v1/p", "/v1/t", "/v1/i", "/v1/t"]
    events = wait_until(lambda: len(ws.events("ajs-user-1")) >= 3 and ws.events("ajs-user-1"), page=page,
                        what="the events on the user")
    by_name = {e["event_name"]: e for e in events}
    assert sorted(by_name) == ["after identify", "clicked buy", "viewed-page"]
    assert by_name["clicked buy"]["metadata"] == {"plan": "pro", "revenue": 12.5,
                                                  "price": {"amount": 1250, "currency": "usd"}}
    viewed = by_name["viewed-page"]["metadata"]
    assert viewed["url"] == stack.demo_url + DEMO_PAGE and viewed["path"] == DEMO_PAGE, viewed
    assert viewed["title"] == "Segment demo" and "referrer" not in viewed and "search" not in viewed  # empty
    user = ws.rest("/contacts/find_by_external_id/ajs-user-1").json()
    assert user["email"] == "ajs1@example.com" and user["custom_attributes"] == {"plan": "pro"}
    assert ws.events(done["anonymousId"]) == events  # the device became the user: same contact
    assert watch.js_errors() == []


def test_batching_delivery_posts_to_v1_b(stack: Stack, new_page: Any, workspaces: dict[str, Workspace]) -> None:
    ws = workspaces["open"]
    page, watch = open_demo(stack, new_page, ws, deliveryStrategy={"strategy": "batching",
                                                                   "config": {"size": 3, "timeout": 300}})
    done = page.evaluate(CALLS, [["track", "Batched One"], ["track", "Batched Two"], ["page"]])
    names = wait_until(lambda: sorted(e["event_name"] for e in ws.events(done["anonymousId"])) or None, page=page,
                       what="the batched events")
    assert names == ["batched one", "batched two", "viewed-page"]
    assert segment_requests(watch, stack.server.url) == ["/v1/b"]
    assert watch.js_errors() == []


def test_in_an_enforcing_workspace_identify_cannot_make_or_change_a_user(
        stack: Stack, new_page: Any, workspaces: dict[str, Workspace]) -> None:
    """The write key ships in the page: with identity verification enforced, identify(userId) is applied to the
    anonymousId's visitor (its email makes it a lead), the userId is ignored, no user is made."""
    ws = workspaces["enforcing"]
    page, watch = open_demo(stack, new_page, ws)
    done = page.evaluate(CALLS, [["page"], ["identify", "ajs-victim", {"email": "ajs2@example.com", "plan": "x"}],
                                 ["track", "After Identify"]])
    assert done["failed"] == [], done  # the answers are 200s, with a warning the library does not show
    anon = done["anonymousId"]
    events = wait_until(lambda: len(ws.events(anon)) >= 2 and ws.events(anon), page=page,
                        what="the events on the visitor")
    assert sorted(e["event_name"] for e in events) == ["after identify", "viewed-page"]
    assert {e["user_id"] for e in events} == {anon} and {e["email"] for e in events} == {"ajs2@example.com"}
    assert not ws.has_user("ajs-victim")
    # A user made by the server (REST) is not changed by the page either.
    made = httpx.post(ws.url + "/contacts", json={"role": "user", "external_id": "ajs-real", "email": "r@example.com"},
                      headers={"Authorization": f"Bearer {ws.access_token}"}, timeout=10)
    assert made.status_code == 200, made.text
    done = page.evaluate(CALLS, [["identify", "ajs-real", {"email": "attacker@example.com"}],
                                 ["track", "Pretending"]])
    assert done["failed"] == []
    anon = done["anonymousId"]  # analytics.js starts a new anonymousId when the userId changes
    wait_until(lambda: "pretending" in [e["event_name"] for e in ws.events(anon)], page=page, what="the track")
    assert ws.rest("/contacts/find_by_external_id/ajs-real").json()["email"] == "r@example.com"
    assert ws.events("ajs-real") == []
    assert watch.js_errors() == []


def test_an_origin_the_workspace_does_not_list_is_refused(
        stack: Stack, new_page: Any, workspaces: dict[str, Workspace]) -> None:
    ws = workspaces["elsewhere"]  # lists https://shop.example only
    page, watch = open_demo(stack, new_page, ws)
    done = page.evaluate(CALLS, [["track", "From The Wrong Site"]])
    # The refusal is readable by the page (CORS on the 403): analytics.js drops the event instead of retrying it.
    assert done["failed"] == [["track", "NonRetryableError: Non-retryable error: 403"]], done
    assert ws.events(done["anonymousId"]) == []
    assert watch.js_errors() == []


def test_the_bundle_is_the_pinned_version() -> None:
    if not BUNDLE.exists():
        pytest.skip(f"@segment/analytics-next is not installed ({BUNDLE})")
    pinned = json.loads((ROOT / "tests" / "node" / "package.json").read_text())["dependencies"]
    installed = json.loads(Path(PACKAGE / "package.json").read_text())["version"]
    assert pinned["@segment/analytics-next"] == installed
