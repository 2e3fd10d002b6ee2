"""The contact panel in Chromium (issue "lifecycle", first contact): the launcher, show / showNewMessage / hide,
keyboard and focus, isolation from the page's CSS, server errors inline, and the visitor becoming a lead."""

from __future__ import annotations

import json
import sqlite3
import uuid
from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import Stack, screenshot, shim_ready, visitor_id, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CALLBACKS = """() => {
    window.calls = [];
    for (const k of ['onShow', 'onHide', 'onUserEmailSupplied', 'onActivatorClick']) {
        Intercom(k, () => calls.push(k));
    }
}"""
# Where the focus is: the page's active element, and inside the panel's shadow root.
FOCUS = """() => {
    const host = document.querySelector('trailmark-messenger');
    const inner = host && host.shadowRoot.activeElement;
    const outer = document.activeElement;
    return {outer: outer && (outer.id || outer.localName), inner: inner && (inner.id || inner.name)};
}"""
# Page CSS that would wreck a panel living in the page's own DOM.
HOSTILE_CSS = """
* { color: red !important; font: italic 30px serif !important; letter-spacing: 4px !important; }
button { display: none !important; background: lime !important; }
label { visibility: hidden !important; }
trailmark-messenger { display: none !important; opacity: 0 !important; position: static !important; }
"""


def launcher(page: Any) -> Any:
    return page.locator("trailmark-messenger #l")


def dialog(page: Any) -> Any:
    return page.get_by_role("dialog", name="Contact us")


def test_the_launcher_opens_an_accessible_panel_that_the_page_css_cannot_touch(stack: Stack, new_page):
    page, watch = new_page()
    page.goto(stack.page_url("index.html"))
    shim_ready(page)
    page.evaluate(CALLBACKS)
    page.add_style_tag(content=HOSTILE_CSS)
    button = page.get_by_role("button", name="Contact us")
    expect(button).to_be_visible()
    assert button.get_attribute("aria-expanded") == "false"
    assert button.get_attribute("aria-controls") == "p"
    assert page.locator("trailmark-messenger #p").get_attribute("role") == "dialog"
    box = button.bounding_box()
    assert box and box["x"] > 1000 and box["y"] > 650, "bottom-right by default"

    # Keyboard only: focus the launcher, Enter opens, the focus moves into the panel.
    button.focus()
    page.keyboard.press("Enter")
    expect(dialog(page)).to_be_visible()
    assert button.get_attribute("aria-expanded") == "true"
    assert page.evaluate(FOCUS) == {"outer": "trailmark-messenger", "inner": "email"}
    # Real labels name the fields.
    expect(page.get_by_label("Your email", exact=True)).to_be_focused()
    expect(page.get_by_label("Message", exact=True)).to_be_editable()
    styles = page.evaluate("""() => {
        const root = document.querySelector('trailmark-messenger').shadowRoot;
        const css = (el) => getComputedStyle(el);
        const label = root.querySelector('label');
        return {host: css(root.host).display, opacity: css(root.host).opacity,
                launcher: css(root.getElementById('l')).backgroundColor, labelVisibility: css(label).visibility,
                labelSize: css(label).fontSize, labelStyle: css(label).fontStyle, labelColor: css(label).color,
                spacing: css(label).letterSpacing};
    }""")
    assert styles == {"host": "inline", "opacity": "1", "launcher": "rgb(31, 111, 235)", "labelVisibility": "visible",
                      "labelSize": "15px", "labelStyle": "normal", "labelColor": "rgb(29, 36, 51)",
                      "spacing": "normal"}
    screenshot(page, "panel-open-under-hostile-page-css")

    # Escape closes it and gives the focus back to the launcher.
    page.keyboard.press("Escape")
    expect(dialog(page)).to_be_hidden()
    assert button.get_attribute("aria-expanded") == "false"
    assert page.evaluate(FOCUS) == {"outer": "trailmark-messenger", "inner": "l"}
    # The close button too.
    button.click()
    page.get_by_role("button", name="Close").click()
    expect(dialog(page)).to_be_hidden()
    assert page.evaluate("() => calls") == ["onActivatorClick", "onShow", "onHide", "onActivatorClick", "onShow",
                                            "onHide"]
    assert watch.js_errors() == []


def test_alignment_hidden_launcher_custom_launcher_and_the_api(stack: Stack, new_page):
    page, watch = new_page()
    page.goto(stack.page_url("index.html"))
    vid = visitor_id(page)
    expect(launcher(page)).to_be_visible()
    page.evaluate("() => Intercom('update', {alignment: 'left'})")
    box = launcher(page).bounding_box()
    assert box and box["x"] < 100, "alignment: 'left' moves the launcher"

    # No default launcher; the site's own button opens the panel (custom_launcher_selector).
    page.evaluate("""() => {
        document.querySelector('main').insertAdjacentHTML('beforeend', '<button id="help" type="button">Help</button>');
        Intercom('update', {hide_default_launcher: true, custom_launcher_selector: '#help'});
    }""")
    expect(launcher(page)).to_be_hidden()
    page.click("#help")
    expect(dialog(page)).to_be_visible()
    panel_box = dialog(page).bounding_box()
    assert panel_box and panel_box["x"] < 100, "the panel opens on the launcher's side"
    assert page.evaluate(FOCUS)["inner"] == "email"
    page.keyboard.press("Escape")
    expect(dialog(page)).to_be_hidden()
    assert page.evaluate(FOCUS)["outer"] == "help", "with no launcher, the focus goes back where it was"
    # The shim sends the settings as they are; the server keeps the Messenger's own keys out of the visitor's
    # attributes (docs/protocol.md, ping).
    page.evaluate("() => Intercom('update', {favourite_lens: '35mm'})")
    visitor = wait_until(lambda: (v := stack.server.rest("GET", "/visitors", params={"user_id": vid}).json())
                         .get("custom_attributes", {}).get("favourite_lens") and v, page=page)
    assert not {"alignment", "hide_default_launcher", "custom_launcher_selector", "app_id", "api_base"} & set(
        visitor["custom_attributes"])

    # The JavaScript API.
    page.evaluate("() => Intercom('show')")
    expect(dialog(page)).to_be_visible()
    page.evaluate("() => Intercom('hide')")
    expect(dialog(page)).to_be_hidden()
    page.evaluate("() => Intercom('showNewMessage', 'Prefilled')")
    expect(page.get_by_label("Message", exact=True)).to_have_value("Prefilled")
    # Messenger features Trailmark lacks are accepted silently; an unknown command is a console warning.
    page.evaluate("""() => { Intercom('showSpace', 'home'); Intercom('startTour', 1); Intercom('showArticle', 2);
        Intercom('hideNotifications', true); Intercom('setAuthTokens', {a: 'b'}); Intercom('reattach_activator');
        Intercom('bogusCommand'); }""")
    assert [w for w in watch.warnings if "command" in w] == ["[Trailmark] unknown command ignored: bogusCommand"]
    # shutdown takes the Messenger away; the next boot brings a fresh one.
    page.evaluate("() => Intercom('shutdown')")
    expect(page.locator("trailmark-messenger")).to_have_count(0)
    page.evaluate("() => Intercom('boot', window.intercomSettings)")
    expect(launcher(page)).to_be_visible()
    assert watch.js_errors() == []


def test_a_visitor_leaves_an_email_and_a_message_and_becomes_a_lead(stack: Stack, new_page):
    page, watch = new_page()
    page.goto(stack.page_url("pricing.html"))
    vid = visitor_id(page)
    page.evaluate(CALLBACKS)
    email = f"ada+{uuid.uuid4().hex[:8]}@pebble.example"

    page.click("#ask-button")  # Intercom('showNewMessage', '...')
    expect(dialog(page)).to_be_visible()
    message = page.get_by_label("Message", exact=True)
    expect(message).to_have_value("Hi! Does the Business plan include invoices for my accountant?")
    email_field = page.get_by_label("Your email", exact=True)
    expect(email_field).to_be_focused()

    # The browser accepts "ada@pebble"; the server does not (400, error.list naming the field): shown inline.
    email_field.fill("ada@pebble")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("trailmark-messenger #e0")).to_have_text("Please enter a valid email address")
    expect(email_field).to_have_attribute("aria-invalid", "true")
    expect(email_field).to_be_focused()
    screenshot(page, "panel-field-error")

    # A server error without a field: a general message under the button, the field errors cleared.
    page.route("**/messenger/web/conversations", lambda route: route.fulfill(
        status=500, content_type="application/json", headers={"Access-Control-Allow-Origin": "*"},
        body=json.dumps({"type": "error.list", "errors": [{"code": "server_error", "message": "boom"}]})))
    email_field.fill(email)
    page.get_by_role("button", name="Send").click()
    expect(page.locator("trailmark-messenger small[role=alert]")).to_have_text("Not sent. Please try again.")
    expect(page.locator("trailmark-messenger #e0")).to_have_text("")
    expect(email_field).to_have_attribute("aria-invalid", "false")
    page.unroute("**/messenger/web/conversations")

    page.get_by_role("button", name="Send").click()
    thanks = page.get_by_text("Thanks! We got your message")
    expect(thanks).to_be_visible()
    expect(thanks).to_be_focused()
    assert "onUserEmailSupplied" in page.evaluate("() => calls")
    screenshot(page, "panel-thanks")

    # The visitor is a lead now: its earlier events are on it, and so are later ones (the shim stored the
    # tokens the answer named).
    page.evaluate("() => Intercom('trackEvent', 'after-contact')")
    events = stack.server.wait_for_events(["viewed-pricing-page", "after-contact"], user_id=vid, page=page)
    assert {(e["intercom_user_id"], e["email"]) for e in events} == {(events[0]["intercom_user_id"], email)}
    assert page.evaluate("() => Intercom('getVisitorId')") == vid
    with sqlite3.connect(f"file:{stack.server.database}?mode=ro", uri=True) as db:
        row = db.execute("SELECT c.role, p.body FROM contacts c JOIN conversations cv ON cv.contact_id = c.id "
                         "JOIN conversation_parts p ON p.conversation_id = cv.id WHERE c.email = ?",
                         (email,)).fetchone()
    assert row == ("lead", "Hi! Does the Business plan include invoices for my accountant?")
    # The panel now shows the conversation: the message, as text.
    expect(page.locator("trailmark-messenger #m li.you")).to_contain_text("Does the Business plan include invoices")

    # showNewMessage brings the form back after a sent message.
    page.evaluate("() => Intercom('showNewMessage', 'One more thing')")
    expect(message).to_have_value("One more thing")
    expect(thanks).to_be_hidden()
    assert watch.js_errors() == []


def test_the_panel_is_loaded_only_when_needed(stack: Stack, new_page):
    """hide_default_launcher and no show: the page downloads the shim only."""
    page, watch = new_page()
    # A site that adds hide_default_launcher: true to the pasted intercomSettings. (Rewriting the HTML with
    # route.fulfill would do too, but Chromium then treats the page as public and blocks its requests to
    # 127.0.0.1, so the setting goes in as the loader assigns window.intercomSettings.)
    page.add_init_script("""Object.defineProperty(window, 'intercomSettings', {configurable: true, set(v) {
        Object.defineProperty(window, 'intercomSettings', {value: Object.assign(v, {hide_default_launcher: true}),
                                                           writable: true, configurable: true});
    }});""")
    page.goto(stack.page_url("index.html"))
    shim_ready(page)
    page.wait_for_timeout(300)
    assert not [u for u in watch.requests if u.endswith("/panel.js")]
    # Asked to open and then to close while panel.js is on its way: it arrives closed.
    held: list[Any] = []
    page.route("**/panel.js", lambda route: held.append(route))
    page.evaluate("() => { Intercom('showNewMessage', 'Hello'); Intercom('hide'); }")
    wait_until(lambda: held, what="the panel.js request", page=page)
    held[0].continue_()
    page.wait_for_selector("trailmark-messenger #p", state="attached")
    expect(page.locator("trailmark-messenger #p")).to_be_hidden()
    expect(launcher(page)).to_be_hidden()
    page.evaluate("() => Intercom('show')")
    expect(dialog(page)).to_be_visible()
    assert len([u for u in watch.requests if u.endswith("/panel.js")]) == 1
    assert watch.js_errors() == []
