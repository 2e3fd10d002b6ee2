"""Search in Chromium: a teammate types a visitor's email into the header's search box and lands on the lead's
profile; the timeline filter narrows it to one event name."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import expect

from .conftest import Stack, screenshot, visitor_id
from .test_inbox import sign_in_teammate

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_the_header_search_finds_a_lead_by_email(stack: Stack, new_page):
    page, _ = new_page()
    page.goto(stack.page_url("pricing.html"))
    vid = visitor_id(page)
    email = f"searchable+{uuid.uuid4().hex[:6]}@pebble.example"
    page.evaluate("(e) => Intercom('update', {email: e})", email)
    page.evaluate("() => Intercom('trackEvent', 'searched-for-me')")
    stack.server.wait_for_events(["searched-for-me"], user_id=vid, page=page)

    admin, watch = sign_in_teammate(stack, new_page, f"finder+{uuid.uuid4().hex[:6]}@pebble.example")
    admin.get_by_role("searchbox", name="Search contacts").fill(email.split("@")[0])
    admin.keyboard.press("Enter")
    expect(admin.locator("h1")).to_contain_text(email)
    expect(admin.locator("h1")).to_contain_text("lead")
    admin.get_by_label("Show only").select_option("searched-for-me")
    expect(admin.locator(".timeline .event")).to_have_count(1)
    screenshot(admin, "admin-search-result")
    assert watch.js_errors() == []
