"""Secure by default, in Chromium: a new workspace enforces identity verification. The demo's "Sign in as Ada"
asks the demo site's own server for Ada's ``user_hash`` (the identity secret never reaches the browser) and the
visitor becomes the verified user; a ``user_id`` booted without proof is refused, and the console says why."""

from __future__ import annotations

import pytest

from .conftest import Stack, screenshot, visitor_id, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_sign_in_as_ada_is_verified_by_user_hash_and_an_unproven_user_id_is_refused(stack: Stack, new_page):
    page, watch = new_page()
    page.goto(stack.page_url("index.html"))
    vid = visitor_id(page)
    page.evaluate("() => Intercom('trackEvent', 'before-sign-in')")
    stack.server.wait_for_events(["before-sign-in"], user_id=vid, page=page)
    page.click("#login-button")
    page.wait_for_function("() => document.getElementById('status').textContent.includes('verified')")

    def ada() -> dict[str, object] | None:
        found = stack.server.rest("GET", "/contacts", params={"per_page": 150}).json()["data"]
        return next((c for c in found if c.get("external_id") == "demo-ada"), None)

    user = wait_until(ada, what="Ada as a user", page=page)
    assert user["role"] == "user" and user["email"] == "ada@example.com"
    # The visit's event now belongs to Ada: the visitor was converted by a verified boot.
    events = stack.server.events(user_id="demo-ada")
    assert "before-sign-in" in [e["event_name"] for e in events]
    screenshot(page, "demo-signed-in-as-ada")

    # The same page booting someone else without proof: refused, and the console says why.
    page.evaluate("() => { Intercom('shutdown'); Intercom('boot', {...window.intercomSettings, user_id: 'mallory'}); }")
    wait_until(lambda: [w for w in watch.warnings if "identity verification" in w], what="the console warning",
               page=page)
    found = stack.server.rest("GET", "/contacts", params={"per_page": 150}).json()["data"]
    assert "mallory" not in [c.get("external_id") for c in found]
    assert watch.js_errors() == []
