"""Page views in Chromium (docs/protocol.md, "Page views"): the demo site's page at boot and a single-page app's
navigations (History API, popstate) reach the server once each, stay out of REST ``GET /events``, and show on
the contact's timeline in the admin (screenshot: test-output/page-views-timeline.png). Consent mode: none
before consent. Switched off: the ping answer stops the shim.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import uuid

import pytest

from .conftest import ROOT, Stack, screenshot, visitor_id, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORD = "correct horse battery staple"
QUIET_MS = 1500  # long enough for the shim's requests to have gone out, were it going to send them


def page_views(stack: Stack) -> list[tuple[str, str | None, str | None, str]]:
    """``(url, title, referrer, contact_id)`` of every stored page view, in arrival order."""
    with sqlite3.connect(stack.server.database) as db:
        rows = db.execute("SELECT url, title, referrer, contact_id FROM page_views ORDER BY id").fetchall()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def contact_of(stack: Stack, visitor: str) -> str:
    with sqlite3.connect(stack.server.database) as db:
        row = db.execute("SELECT id FROM contacts WHERE visitor_id = ?", (visitor,)).fetchone()
    return str(row[0])


def test_page_views_of_a_single_page_app_land_on_the_timeline(make_stack, new_page) -> None:
    stack = make_stack()
    page, watch = new_page()
    sent: list[str] = []  # the page views' URLs, each time the shim sends one
    page.on("request", lambda r: sent.extend(e["url"] for e in json.loads(r.post_data)["events"]
                                             if e.get("type") == "page_view")
            if r.url.endswith("/messenger/web/events") else None)
    page.goto(stack.page_url("index.html"))
    vid = visitor_id(page)
    home = stack.page_url("index.html")
    wait_until(lambda: len(page_views(stack)) == 1, what="the first page view", page=page)

    # A single-page app's router: pushState, then the title; replaceState to the same URL is no new page;
    # back() fires popstate. A page's own history call that throws still throws, as without the shim.
    page.evaluate("""() => {
        history.pushState({}, '', '/app/pricing?plan=pro'); document.title = 'Pricing (SPA)';
        history.replaceState({step: 2}, '', '/app/pricing?plan=pro');
    }""")
    wait_until(lambda: len(page_views(stack)) == 2, what="the pushState page view", page=page)
    page.evaluate("() => { history.pushState({}, '', '/app/checkout'); document.title = 'Checkout (SPA)'; }")
    wait_until(lambda: len(page_views(stack)) == 3, what="the second pushState page view", page=page)
    # The router sets the title on popstate too, after the shim's listener: the page view reads it a tick later.
    page.evaluate("() => addEventListener('popstate', () => { document.title = 'Pricing (SPA)'; })")
    page.go_back()
    wait_until(lambda: len(page_views(stack)) == 4, what="the popstate page view", page=page)
    thrown = page.evaluate("""() => { try { history.pushState({}, '', 'https://elsewhere.example/'); return null; }
                                       catch (e) { return e.name; } }""")
    assert thrown == "SecurityError"
    page.evaluate("() => Intercom('trackEvent', 'clicked-upgrade')")
    stack.server.wait_for_events(["clicked-upgrade"], user_id=vid, page=page)
    page.wait_for_timeout(QUIET_MS)  # a duplicate would have gone out by now

    origin = stack.demo_url
    contact = contact_of(stack, vid)
    views = page_views(stack)
    assert [(u, t, ref) for u, t, ref, _ in views] == [
        (home, "Home · Pebble", None),
        (f"{origin}/app/pricing?plan=pro", "Pricing (SPA)", home),
        (f"{origin}/app/checkout", "Checkout (SPA)", f"{origin}/app/pricing?plan=pro"),
        (f"{origin}/app/pricing?plan=pro", "Pricing (SPA)", f"{origin}/app/checkout"),
    ]
    assert {c for _, _, _, c in views} == {contact}
    assert sent == [v[0] for v in views]  # each sent once: acknowledged, forgotten
    # Not events: REST GET /events lists the one event only.
    assert stack.server.event_names(user_id=vid) == ["clicked-upgrade"]
    assert watch.js_errors() == []

    # The admin: the contact's timeline shows the page views, typed, with title and URL, among the event.
    email = f"pv-{uuid.uuid4().hex[:6]}@pebble.example"
    subprocess.run([sys.executable, "-m", "trailmark", "admin", "create", "--email", email, "--password-stdin",
                    "--database", str(stack.server.database)], cwd=ROOT, input=PASSWORD + "\n", text=True,
                   capture_output=True, check=True)
    admin, _ = new_page()
    admin.set_viewport_size({"width": 1200, "height": 1100})
    admin.goto(f"{stack.server.url}/admin/login?next=/admin/contacts/{contact}")
    admin.fill("#email", email)
    admin.fill("#password", PASSWORD)
    admin.click("form.stack button[type=submit]")
    admin.wait_for_url(f"**/admin/contacts/{contact}")
    rows = admin.locator("ol.timeline > li")
    assert rows.count() == 5
    assert admin.locator("li.page-view").count() == 4
    first_view = admin.locator("li.page-view").first
    assert "Page view" in first_view.inner_text() and "Pricing (SPA)" in first_view.inner_text()
    assert first_view.locator("a[href]").last.get_attribute("href") == f"{origin}/app/pricing?plan=pro"
    assert "Clicked upgrade" in rows.first.inner_text()  # the newest: the event after the page views
    screenshot(admin, "page-views-timeline", full_page=True)

    # "Visited a URL containing …" in the contact list.
    admin.goto(f"{stack.server.url}/admin/contacts")
    admin.fill("#url-filter", "/app/checkout")
    admin.click("text=Apply filters")
    admin.wait_for_selector(".summary-line >> text=visited a URL containing")
    assert admin.locator(f'a[href="/admin/contacts/{contact}"]').count() == 1
    screenshot(admin, "page-views-filter", full_page=True)


def test_no_page_view_before_consent(make_stack, new_page) -> None:
    stack = make_stack("--consent-required")
    page, _ = new_page()
    page.goto(stack.page_url("index.html"))
    page.wait_for_function("() => window.Intercom && window.Intercom.booted === true")
    page.evaluate("() => history.pushState({}, '', '/app/before-consent')")
    page.wait_for_timeout(QUIET_MS)
    assert page_views(stack) == []
    page.evaluate("() => Intercom('consent', 'granted')")
    visitor_id(page)
    wait_until(lambda: len(page_views(stack)) == 1, what="the page view on grant", page=page)
    page.wait_for_timeout(QUIET_MS)  # a second one would have gone out by now
    # The page being viewed when consent came, once; nothing of the page before it.
    assert [v[0] for v in page_views(stack)] == [f"{stack.demo_url}/app/before-consent"]


def test_switched_off_the_shim_stops_sending_page_views(make_stack, new_page) -> None:
    stack = make_stack("--no-page-views")
    page, watch = new_page()
    sent: list[str] = []  # the URLs of the page views the shim sends
    page.on("request", lambda r: sent.extend(e["url"] for e in json.loads(r.post_data)["events"]
                                             if e.get("type") == "page_view")
            if r.url.endswith("/messenger/web/events") else None)
    with page.expect_response(lambda r: r.url.endswith("/messenger/web/ping")) as answer:
        page.goto(stack.page_url("index.html"))
    assert answer.value.json()["page_views"] is False
    vid = visitor_id(page)
    page.evaluate("() => { history.pushState({}, '', '/app/after-off'); Intercom('trackEvent', 'still-tracked'); }")
    stack.server.wait_for_events(["still-tracked"], user_id=vid, page=page)
    page.wait_for_timeout(QUIET_MS)
    # The page view queued at boot, before the ping answer, may have gone out (the server dropped it, without
    # a warning in the console); none after the answer.
    assert not any(url.endswith("/app/after-off") for url in sent), "the shim sent a page view after the switch"
    assert page_views(stack) == []
    assert not any("page view" in w for w in watch.warnings)
    assert watch.js_errors() == []
