"""Consent mode in Chromium (docs/privacy.md): a workspace made with ``--consent-required --honour-gpc``. Until the
page calls ``Intercom('consent', 'granted')`` the shim sets no cookie, writes no storage and sends nothing; the
events wait in memory and go out on grant, are dropped on refusal; Global Privacy Control keeps it refused."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import Stack, screenshot, start_stack, visitor_id

pytestmark = pytest.mark.browser

QUIET_MS = 1500  # long enough for the shim's ping and events to have gone out, were it allowed to


@pytest.fixture(scope="module")
def consent_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = start_stack(tmp_path_factory.mktemp("consent"), "--consent-required", "--honour-gpc")
    yield s
    s.stop()


def server_calls(stack: Stack, watch: Any) -> list[str]:
    """What the page asked of the Trailmark server, apart from the shim itself."""
    return [u for u in watch.requests if u.startswith(stack.server.url) and "/widget/" + stack.server.app_id != u[
        len(stack.server.url):]]


def nothing_kept(page: Any) -> None:
    assert page.context.cookies() == []
    assert page.evaluate("() => localStorage.length") == 0


def shim_loaded(page: Any) -> None:
    page.wait_for_function("() => window.Intercom && window.Intercom.booted === true")


def test_nothing_before_consent_and_everything_after_grant_on_every_page(consent_stack: Stack, new_page) -> None:
    stack = consent_stack
    page, watch = new_page()
    page.goto(stack.page_url("index.html"))
    shim_loaded(page)
    page.evaluate("() => Intercom('trackEvent', 'before-consent', {step: 1})")
    page.wait_for_timeout(QUIET_MS)
    assert server_calls(stack, watch) == [], "the shim talked to the server before consent"
    nothing_kept(page)
    assert page.evaluate("() => Intercom('getVisitorId')") is None

    page.evaluate("() => Intercom('consent', 'granted')")
    vid = visitor_id(page)
    stack.server.wait_for_events(["before-consent"], user_id=vid, page=page)
    assert any(c["name"] == stack.id_cookie for c in page.context.cookies())
    screenshot(page, "consent-granted")

    # The next page: the consent manager calls consent again on every load; until it does, nothing goes out,
    # even though the cookies of the earlier grant are there.
    watch.requests.clear()
    page.reload()
    shim_loaded(page)
    page.evaluate("() => Intercom('trackEvent', 'second-page')")
    page.wait_for_timeout(QUIET_MS)
    assert server_calls(stack, watch) == []
    page.evaluate("() => Intercom('consent', 'granted')")
    stack.server.wait_for_events(["before-consent", "second-page"], user_id=vid, page=page)
    assert watch.js_errors() == []


def test_refused_consent_drops_the_waiting_events_and_removes_what_was_kept(consent_stack: Stack, new_page) -> None:
    stack = consent_stack
    page, watch = new_page()
    page.goto(stack.page_url("index.html"))
    shim_loaded(page)
    page.evaluate("() => Intercom('trackEvent', 'refused-event')")
    page.evaluate("() => Intercom('consent', 'denied')")
    page.wait_for_timeout(QUIET_MS)
    assert server_calls(stack, watch) == []
    nothing_kept(page)
    # The visitor changes their mind on the same page: what was tracked before the refusal stays dropped.
    page.evaluate("() => { Intercom('consent', 'granted'); Intercom('trackEvent', 'after-grant'); }")
    vid = visitor_id(page)
    stack.server.wait_for_events(["after-grant"], user_id=vid, page=page)
    assert stack.server.event_names(user_id=vid) == ["after-grant"]
    # A later refusal removes the cookies and the stored queue again.
    page.evaluate("() => Intercom('consent', 'denied')")
    nothing_kept(page)
    assert watch.js_errors() == []


def test_global_privacy_control_is_honoured(consent_stack: Stack, browser: Any, new_page) -> None:
    stack = consent_stack
    context = browser.new_context()
    try:
        context.add_init_script("Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', "
                                "{get: () => true, configurable: true})")
        page, watch = new_page(context)
        page.goto(stack.page_url("index.html"))
        shim_loaded(page)
        assert page.evaluate("() => navigator.globalPrivacyControl") is True
        page.evaluate("() => { Intercom('trackEvent', 'gpc-event'); Intercom('consent', 'granted'); }")
        page.wait_for_timeout(QUIET_MS)
        assert server_calls(stack, watch) == []
        nothing_kept(page)
        assert watch.js_errors() == []
    finally:
        context.close()
