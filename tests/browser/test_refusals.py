"""What the shim does with refusals, in Chromium against the real server: a batch answered per event keeps
the accepted events and forgets only the refused one; a 4xx naming one event drops that one and resends the
rest; a 429 on ping waits for Retry-After. The refused name then shows in the admin's event list."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import pytest

from .conftest import ROOT, Stack, screenshot, visitor_id, wait_until

pytestmark = pytest.mark.browser
CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": "Retry-After"}


def cli(*args: str, stdin: str | None = None) -> None:
    subprocess.run([sys.executable, "-m", "trailmark", *args], cwd=ROOT, input=stdin, capture_output=True,
                   text=True, check=True)


def queue(page: Any, stack: Stack) -> list[str]:
    raw = page.evaluate(f"() => localStorage.getItem('trailmark-q-{stack.server.app_id}')")
    return [e.get("event_name") or "page view" for e in json.loads(raw or "[]")]


def test_the_shim_forgets_only_the_refused_event_and_keeps_sending_the_rest(make_stack, new_page):
    stack = make_stack()
    # Before any page loads (the server keeps a workspace 5 s in memory): browsers may create two names only.
    cli("workspace", "set", "--database", str(stack.server.database), "--browser-event-names", "clicked-buy",
        "read-docs")
    page, watch = new_page()
    sent: list[list[str]] = []
    # Events only: a batch of the page view alone (docs/protocol.md) is left out.
    page.on("request", lambda r: sent.append(names) if r.url.endswith("/messenger/web/events") and (names := [
        e["event_name"] for e in json.loads(r.post_data)["events"] if "event_name" in e]) else None)
    page.goto(stack.page_url("index.html"))
    vid = visitor_id(page)
    page.evaluate("() => { Intercom('trackEvent', 'clicked-buy'); Intercom('trackEvent', 'made-up-name');"
                  " Intercom('trackEvent', 'read-docs'); }")
    stack.server.wait_for_events(["clicked-buy", "read-docs"], user_id=vid, page=page)
    wait_until(lambda: queue(page, stack) == [], what="an empty queue", page=page)
    page.wait_for_timeout(1500)  # a resend would have gone by now
    assert sent == [["clicked-buy", "made-up-name", "read-docs"]]
    assert any('"made-up-name" refused: event name \'made-up-name\' is new and not among' in w for w in watch.warnings)

    # A whole-batch 400 that names one event (field events[1]…): that one is dropped, the other sent again.
    answered: list[int] = []

    def once(route: Any) -> None:
        if answered:
            route.continue_()
            return
        answered.append(400)
        route.fulfill(status=400, content_type="application/json", headers=CORS, body=json.dumps({
            "type": "error.list", "errors": [{"code": "parameter_invalid", "message": "metadata entry refused",
                                              "field": "events[1].metadata.x"}]}))

    page.route("**/messenger/web/events", once)
    page.evaluate("() => { Intercom('trackEvent', 'clicked-buy'); Intercom('trackEvent', 'read-docs'); }")
    events = stack.server.wait_for_events(["clicked-buy", "clicked-buy", "read-docs"], user_id=vid, page=page)
    wait_until(lambda: queue(page, stack) == [], what="an empty queue", page=page)
    assert sorted(e["event_name"] for e in events) == ["clicked-buy", "clicked-buy", "read-docs"]
    assert sent[-2:] == [["clicked-buy", "read-docs"], ["clicked-buy"]]
    assert watch.js_errors() == []

    # The teammate sees what was lost, and why.
    cli("admin", "create", "--email", "ada@example.com", "--password-stdin", "--database",
        str(stack.server.database), stdin="correct horse battery\n")
    admin, _ = new_page()
    admin.goto(stack.server.url + "/admin/login")
    admin.fill("#email", "ada@example.com")
    admin.fill("#password", "correct horse battery")
    admin.click("button[type=submit]")
    admin.goto(stack.server.url + "/admin/events")
    row = admin.locator("table.refused tbody tr")
    assert row.count() == 1
    assert row.locator("td").all_inner_texts() [0:2] == ["made-up-name", "1"]
    assert "not in the names browsers may create" in row.inner_text()
    screenshot(admin, "refused-event-names", full_page=True)


def test_a_429_on_ping_is_retried_after_retry_after(stack: Stack, new_page):
    page, watch = new_page()
    pings: list[float] = []

    def limited(route: Any) -> None:
        pings.append(time.monotonic())
        if len(pings) > 1:
            route.continue_()
            return
        route.fulfill(status=429, content_type="application/json", headers={**CORS, "Retry-After": "3"},
                      body=json.dumps({"type": "error.list", "errors": [{
                          "code": "rate_limit_exceeded", "message": "Too many new visitors from this address"}]}))

    page.route("**/messenger/web/ping", limited)
    page.goto(stack.page_url("index.html"))
    page.evaluate("() => Intercom('trackEvent', 'waited-for-ping')")
    vid = visitor_id(page)  # the second ping went through
    assert len(pings) == 2 and pings[1] - pings[0] >= 2.9, pings
    stack.server.wait_for_events(["waited-for-ping"], user_id=vid, page=page)
    assert watch.js_errors() == []
