"""Google Tag Manager, in Chromium (experience issue): the snippet installed as a Custom HTML tag, injected the way
GTM does it (after the page loaded, its script re-created by the container), and an event tracked from a second
tag (the product document's exit-intent example). The demo page gtm.html carries both tags and a stand-in
container (demo_site/tag-manager.js); docs/gtm.md is the recipe."""

from __future__ import annotations

import pytest

from .conftest import Stack, screenshot, visitor_id

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_the_snippet_injected_by_a_tag_manager_tracks_an_event_from_another_tag(stack: Stack, new_page):
    page, watch = new_page()
    page.goto(stack.page_url("gtm.html"))
    # No snippet in the page itself: the loader's stub appears only once the container fires the tag.
    vid = visitor_id(page)
    injected = page.evaluate("() => Array.from(document.scripts).filter((s) => !s.src && "
                             "s.text.includes('intercomSettings') && s.parentElement === document.body).length")
    assert injected == 1
    # Exit intent: the pointer leaves through the top of the window.
    page.mouse.move(400, 300)
    page.mouse.move(400, 2)
    page.evaluate("() => document.dispatchEvent(new MouseEvent('mouseout', {clientY: 0, relatedTarget: null}))")
    page.wait_for_function("() => document.getElementById('status').textContent.includes('exit-intent')")
    [event] = stack.server.wait_for_events(["exit-intent"], user_id=vid, page=page)
    assert event["metadata"] == {"page": "/gtm.html"}
    screenshot(page, "gtm-exit-intent")
    assert watch.js_errors() == []
