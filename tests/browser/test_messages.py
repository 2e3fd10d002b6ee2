"""Event-triggered messages in Chromium (issue "messages": Delivery, Must show): the demo's upload banner built
from the event's metadata, the rules that keep a message away (a REST event, the cap, first time, the audience,
a metadata condition), markup in metadata shown as text, dismissal and clicks counted, a post triggered over
REST and a chat from Intercom's POST /messages shown on the next page view, and no page errors.

Two floating banners stack, Intercom('shutdown') removes what was shown, and a chat sits beside the
launcher on either side.

A private server for this module: the live messages it applies must not show in other modules' pages."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from trailmark.demo import demo_messages

from .conftest import ROOT, Stack, screenshot, shim_ready, start_stack, visitor_id, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = start_stack(tmp_path_factory.mktemp("messages"))
    for doc in demo_messages(s.demo_url):
        apply(s, doc)
    yield s
    s.stop()


def apply(stack: Stack, doc: dict[str, Any]) -> None:
    r = stack.server.rest("PUT", f"/trailmark/messages/{doc['key']}", json=doc)
    assert r.status_code in (200, 201), r.text


def banner(key: str, event: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"key": key, "kind": "banner", "state": "live", "trigger": {"event": event},
            "frequency": {"max": None}, "content": {"text": text}, **extra}


def host(page: Any, key: str) -> Any:
    return page.locator(f'[data-trailmark-message="{key}"]')


def track(page: Any, name: str, metadata: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """trackEvent in the page; the messages the events answer carried."""
    # The answer to the batch carrying this event (not one carrying the page view alone).
    with page.expect_response(lambda r: r.url.endswith("/messenger/web/events")
                              and f'"event_name":{json.dumps(name)}' in (r.request.post_data or "")) as answer:
        page.evaluate("([n, m]) => Intercom('trackEvent', n, m)", [name, metadata])
    messages: list[dict[str, Any]] = answer.value.json().get("messages", [])
    return messages


def stats(stack: Stack, key: str) -> dict[str, int]:
    with sqlite3.connect(stack.server.database) as db:
        row = db.execute("SELECT COALESCE(SUM(s.sent), 0), COALESCE(SUM(s.shown), 0), COALESCE(SUM(s.clicked), 0), "
                         "COALESCE(SUM(s.dismissed), 0) FROM message_daily_stats s JOIN messages m "
                         "ON m.id = s.message_id WHERE m.key = ?", (key,)).fetchone()
    return dict(zip(("sent", "shown", "clicked", "dismissed"), row, strict=True))


def upload(page: Any) -> None:
    page.click("#upload-button")


def test_the_upload_banner_each_time_with_its_metadata_and_dismissal_counted(stack: Stack, new_page):
    before = stats(stack, "upload-done")
    page, watch = new_page()
    page.goto(stack.page_url("upload.html"))
    shim_ready(page)
    upload(page)
    shown = host(page, "upload-done")
    shown.locator("p").wait_for()
    assert shown.locator("p").text_content() == "Your JPEG upload is ready"
    assert shown.get_by_role("link", name="Order prints").get_attribute("href") == stack.page_url("order.html")
    assert shown.get_by_role("region", name="Announcement").is_visible()
    screenshot(page, "messages-upload-banner")
    # The page's styles do not reach in: the banner keeps its own font and colours.
    assert shown.locator("p").evaluate("e => getComputedStyle(e).color") == "rgb(255, 255, 255)"
    shown.get_by_role("button", name="Dismiss").click()
    wait_until(lambda: host(page, "upload-done").count() == 0, what="the banner gone", page=page)
    # Again: a new event, a new delivery, shown again.
    upload(page)
    host(page, "upload-done").locator("p").wait_for()
    page.keyboard.press("Tab")  # focus into the page, then Escape in the banner dismisses it
    host(page, "upload-done").get_by_role("link").focus()
    page.keyboard.press("Escape")
    wait_until(lambda: host(page, "upload-done").count() == 0, what="Escape dismissed it", page=page)
    wait_until(lambda: stats(stack, "upload-done")["dismissed"] - before["dismissed"] == 2, page=page,
               what="two dismissals counted")
    after = stats(stack, "upload-done")
    assert {k: after[k] - before[k] for k in after} == {"sent": 2, "shown": 2, "clicked": 0, "dismissed": 2}
    assert watch.js_errors() == []


def test_a_click_is_counted_and_a_reload_does_not_show_the_same_delivery_again(stack: Stack, new_page):
    before = stats(stack, "upload-done")
    page, watch = new_page()
    page.goto(stack.page_url("upload.html"))
    shim_ready(page)
    upload(page)
    link = host(page, "upload-done").get_by_role("link", name="Order prints")
    link.click()
    page.wait_for_url("**/order.html")
    wait_until(lambda: stats(stack, "upload-done")["clicked"] - before["clicked"] == 1, page=page,
               what="the click counted")
    after = stats(stack, "upload-done")
    assert after["shown"] - before["shown"] == 1 and after["sent"] - before["sent"] == 1
    # The same delivery again (a retried event is answered with it): the tab does not show it twice.
    page.go_back()
    shim_ready(page)
    delivered = page.evaluate("() => JSON.parse(localStorage.getItem('trailmark-shown-' + intercomSettings.app_id))")
    assert len(delivered) == 1
    page.wait_for_timeout(300)
    assert host(page, "upload-done").count() == 0
    assert watch.js_errors() == []


def test_what_keeps_a_message_away(stack: Stack, new_page):
    apply(stack, banner("capped", "tried-it", "Tried it", frequency={"max": 1, "per_days": 1}))
    apply(stack, banner("first", "opened-app", "Welcome back", trigger={"event": "opened-app", "when": "first_time"}))
    apply(stack, banner("users-only", "saw-users", "Users only", audience={"roles": ["user"]}))
    page, watch = new_page()
    page.goto(stack.page_url("upload.html"))
    vid = visitor_id(page)
    # A metadata condition that excludes: the demo banner wants a JPEG.
    assert track(page, "upload-complete", {"type": "PNG"}) == []
    # The cap: once a day.
    assert [m["key"] for m in track(page, "tried-it")] == ["capped"]
    assert track(page, "tried-it") == []
    # First time only.
    assert [m["key"] for m in track(page, "opened-app")] == ["first"]
    assert track(page, "opened-app") == []
    # An audience rule that excludes: an anonymous visitor is not a user.
    assert track(page, "saw-users") == []
    # What showed: "capped" and "first", once each.
    assert sorted(host.get_attribute("data-trailmark-message")
                  for host in page.locator("[data-trailmark-message]").all()) == ["capped", "first"]
    # An event tracked over REST for this visitor never shows a banner, now or on the next page view.
    r = stack.server.rest("POST", "/events", json={"event_name": "upload-complete", "user_id": vid,
                                                   "metadata": {"type": "JPEG"}})
    assert r.status_code == 202, r.text
    with page.expect_response(lambda r: r.url.endswith("/messenger/web/ping")) as ping:
        page.reload()
    assert "messages" not in ping.value.json()
    page.wait_for_timeout(300)
    assert page.locator("[data-trailmark-message]").count() == 0
    assert watch.js_errors() == []


def test_markup_in_metadata_is_shown_as_text(stack: Stack, new_page):
    apply(stack, banner("hello", "said-hello", "Hello {{event.name}}"))
    page, watch = new_page()
    page.goto(stack.page_url("index.html"))
    shim_ready(page)
    evil = '<img src=x onerror="window.pwned=1"><b>bold</b><script>window.pwned=2</script>'
    assert [m["key"] for m in track(page, "said-hello", {"name": evil})] == ["hello"]
    text = host(page, "hello").locator("p")
    text.wait_for()
    assert text.text_content() == "Hello " + evil
    assert host(page, "hello").locator("img, b, script").count() == 0
    page.wait_for_timeout(200)
    assert page.evaluate("() => window.pwned") is None
    screenshot(page, "messages-inert-markup")
    assert watch.js_errors() == []


def test_a_post_triggered_over_rest_shows_on_the_next_page_view(stack: Stack, new_page):
    apply(stack, {"key": "prints-post", "kind": "post", "state": "live", "trigger": {"event": "ordered-prints"},
                  "content": {"title": "Your prints are on their way", "body": "Ten {{event.size}} prints.\nThanks!",
                              "button": {"label": "Track them", "url": stack.page_url("order.html")}}})
    page, watch = new_page()
    page.goto(stack.page_url("index.html"))
    vid = visitor_id(page)
    page.focus("#nav-pricing")
    r = stack.server.rest("POST", "/events", json={"event_name": "ordered-prints", "user_id": vid,
                                                   "metadata": {"size": "10x15"}})
    assert r.status_code == 202, r.text
    assert page.locator("[data-trailmark-message]").count() == 0
    page.goto(stack.page_url("pricing.html"))
    post = host(page, "prints-post")
    dialog = post.get_by_role("dialog", name="Your prints are on their way")
    dialog.wait_for()
    assert post.locator("p").text_content() == "Ten 10x15 prints.\nThanks!"
    # The post takes the focus (its close button); Escape closes it and counts a dismissal.
    assert post.evaluate("h => h.shadowRoot.activeElement && h.shadowRoot.activeElement.getAttribute('aria-label')") \
        == "Dismiss"
    screenshot(page, "messages-rest-post")
    page.keyboard.press("Escape")
    wait_until(lambda: host(page, "prints-post").count() == 0, what="the post closed", page=page)
    wait_until(lambda: stats(stack, "prints-post")["dismissed"] == 1, what="dismissal counted", page=page)
    assert stats(stack, "prints-post") == {"sent": 1, "shown": 1, "clicked": 0, "dismissed": 1}
    # Handed over once: the next page view has nothing.
    page.goto(stack.page_url("index.html"))
    shim_ready(page)
    page.wait_for_timeout(300)
    assert page.locator("[data-trailmark-message]").count() == 0
    assert watch.js_errors() == []


def test_a_chat_from_intercom_post_messages_shows_with_its_allowed_markup(stack: Stack, new_page):
    subprocess.run([sys.executable, "-m", "trailmark", "admin", "create", "--email", "grace@pebble.example",
                    "--password-stdin", "--database", str(stack.server.database)], input="a long enough password\n",
                   cwd=ROOT, capture_output=True, text=True, check=True)
    with sqlite3.connect(stack.server.database) as db:
        [teammate_id] = db.execute("SELECT id FROM teammates WHERE email = ?", ("grace@pebble.example",)).fetchone()
    page, watch = new_page()
    page.goto(stack.page_url("index.html"))
    shim_ready(page)
    with page.expect_response(lambda r: r.url.endswith("/messenger/web/ping")) as ping:
        page.evaluate("() => Intercom('update', {email: 'chat-lead@example.com'})")  # first contact: a lead
    assert ping.value.json()["contact"]["role"] == "lead"
    r = stack.server.rest("POST", "/messages", json={
        "message_type": "inapp", "from": {"type": "admin", "id": str(teammate_id)},
        "to": {"type": "contact", "email": "chat-lead@example.com"},
        "body": '<p>Hi! Your <b>prints</b> shipped: <a href="http://127.0.0.1/track">track</a>'
                '<img src=x onerror="window.pwned=1"></p>'})
    assert r.status_code == 200, r.text
    page.goto(stack.page_url("pricing.html"))
    chat = host(page, "api-messages")
    chat.get_by_role("region", name="Message from grace@pebble.example").wait_for()
    assert chat.locator("p").text_content() == "Hi! Your prints shipped: track"
    assert chat.locator("p b").text_content() == "prints"
    assert chat.locator("p a").get_attribute("href") == "http://127.0.0.1/track"
    assert chat.locator("img, script").count() == 0
    screenshot(page, "messages-api-chat")
    # Reply opens the contact panel.
    chat.get_by_role("button", name="Reply").click()
    page.locator("trailmark-messenger").get_by_role("dialog", name="Contact us").wait_for()
    assert host(page, "api-messages").count() == 0
    assert page.evaluate("() => window.pwned") is None
    assert watch.js_errors() == []


def test_the_demo_applies_its_message_document(stack: Stack) -> None:
    r = stack.server.rest("GET", "/trailmark/messages/upload-done")
    assert r.status_code == 200
    assert r.json()["content"]["text"] == "Your {{event.type}} upload is ready"
    assert json.loads(json.dumps(demo_messages()))[0]["state"] == "live"


def box(locator: Any) -> dict[str, float]:
    found = locator.bounding_box()
    assert found is not None
    return dict(found)


def test_two_banners_stack_and_shutdown_removes_every_message(stack: Stack, new_page):
    apply(stack, banner("stack-first", "saved-album", "Your album is saved"))
    apply(stack, banner("stack-second", "saved-album", "Share it with your family: they can order prints too, "
                        "in any size, from the album's page"))
    apply(stack, {"key": "stack-chat", "kind": "chat", "state": "live", "trigger": {"event": "saved-album"},
                  "frequency": {"max": None}, "chat": {"from": "Grace"}, "content": {"text": "Need a hand?"}})
    page, watch = new_page()
    page.goto(stack.page_url("index.html"))
    shim_ready(page)
    assert sorted(m["key"] for m in track(page, "saved-album")) == ["stack-chat", "stack-first", "stack-second"]
    first, second = host(page, "stack-first").locator(".m"), host(page, "stack-second").locator(".m")
    first.wait_for()
    second.wait_for()
    host(page, "stack-chat").locator(".m").wait_for()
    second.evaluate("e => Promise.all(e.getAnimations().map(a => a.finished))")  # faded in, for the screenshot
    screenshot(page, "messages-two-banners")
    # Stacked: one below the other at the top, neither covering the other.
    a, b = sorted((box(first), box(second)), key=lambda r: r["y"])
    assert a["y"] == 0 and b["y"] >= a["y"] + a["height"] - 0.5
    # The first dismissed: the second moves up to the top.
    upper = host(page, "stack-first") if box(first)["y"] == 0 else host(page, "stack-second")
    upper.get_by_role("button", name="Dismiss").click()
    wait_until(lambda: page.locator('[data-trailmark-message^="stack-"] >> .banner').count() == 1, page=page,
               what="one banner left")
    left = page.locator('[data-trailmark-message^="stack-"] >> .banner')
    wait_until(lambda: box(left)["y"] == 0, page=page, what="the banner left at the top")
    # Intercom's shutdown: the messages shown go with the visitor.
    page.evaluate("() => Intercom('shutdown')")
    assert page.locator("[data-trailmark-message]").count() == 0
    assert watch.js_errors() == []


def test_a_floating_banner_sits_below_a_pushing_one_until_it_scrolls_away(stack: Stack, new_page):
    apply(stack, banner("push-top", "opened-album", "Your album has 40 new photos", banner={"style": "push"}))
    apply(stack, banner("float-top", "opened-album", "Prints are 20% off this week"))
    page, watch = new_page()
    page.goto(stack.page_url("index.html"))
    shim_ready(page)
    page.evaluate("() => { document.body.style.minHeight = '3000px'; }")  # room to scroll
    got = track(page, "opened-album")
    assert sorted(m["key"] for m in got) == ["float-top", "push-top"]
    pushing, floating = host(page, "push-top").locator(".m"), host(page, "float-top").locator(".m")
    pushing.wait_for()
    floating.wait_for()
    floating.evaluate("e => Promise.all(e.getAnimations().map(a => a.finished))")
    screenshot(page, "messages-push-and-floating-banner")
    # At the top of the page the floating banner starts where the pushing one ends: neither covers the other.
    assert box(pushing)["y"] == 0
    wait_until(lambda: abs(box(floating)["y"] - box(pushing)["height"]) < 1, page=page,
               what="the floating banner below the pushing one")
    # Scrolled past it, the pushing banner has gone up with the page and the floating one takes the top.
    page.mouse.wheel(0, 600)
    wait_until(lambda: box(floating)["y"] == 0, page=page, what="the floating banner at the top once scrolled")
    page.mouse.wheel(0, -600)
    wait_until(lambda: abs(box(floating)["y"] - box(pushing)["height"]) < 1, page=page,
               what="below the pushing banner again at the top")
    assert watch.js_errors() == []


def test_a_chat_sits_beside_the_launcher_on_either_side(stack: Stack, new_page):
    apply(stack, {"key": "side-chat", "kind": "chat", "state": "live", "trigger": {"event": "asked-about-sizes"},
                  "frequency": {"max": None}, "chat": {"from": "Grace"},
                  "content": {"text": "Prints come in 10x15, 13x18 and 20x30"}})
    page, watch = new_page()
    page.goto(stack.page_url("index.html"))
    shim_ready(page)
    launcher = page.locator("trailmark-messenger").get_by_role("button", name="Contact us")
    launcher.wait_for()
    for side in ("right", "left"):
        if side == "left":
            with page.expect_response(lambda r: r.url.endswith("/messenger/web/ping")):
                page.evaluate("() => Intercom('update', {alignment: 'left'})")
            wait_until(lambda: box(launcher)["x"] < 550, page=page, what="the launcher on the left")
            page.locator('[data-trailmark-message="side-chat"]').evaluate_all("hs => hs.forEach(h => h.remove())")
        assert [m["key"] for m in track(page, "asked-about-sizes")] == ["side-chat"]
        chat = host(page, "side-chat").locator(".m")
        chat.wait_for()
        chat.evaluate("e => Promise.all(e.getAnimations().map(a => a.finished))")  # faded in, for the screenshot
        screenshot(page, f"messages-chat-{side}")
        c, button = box(chat), box(launcher)
        assert c["y"] + c["height"] <= button["y"]  # above the launcher
        if side == "right":
            assert abs((c["x"] + c["width"]) - (button["x"] + button["width"])) <= 1
        else:
            assert abs(c["x"] - button["x"]) <= 1
    assert watch.js_errors() == []


def test_the_admin_preview_is_drawn_by_the_messengers_renderer_as_the_document_is_edited(stack: Stack, new_page):
    email = "preview@pebble.example"
    subprocess.run([sys.executable, "-m", "trailmark", "admin", "create", "--email", email, "--password-stdin",
                    "--database", str(stack.server.database)], input="a long enough password\n", cwd=ROOT,
                   capture_output=True, text=True, check=True)
    page, watch = new_page()
    page.goto(stack.server.url + "/admin/login")
    page.locator("input[name=email]").fill(email)
    page.locator("input[type=password]").fill("a long enough password")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/admin/contacts")
    page.goto(stack.server.url + "/admin/messages/upload-done")
    frame = page.locator("#message-preview")
    shown = frame.locator('trailmark-message[data-trailmark-message="upload-done"]')
    shown.locator(".banner p").wait_for()
    assert shown.locator(".banner p").text_content() == "Your {{event.type}} upload is ready"
    # Styled by the renderer's own sheet (the admin's CSP forbids inline styles), inside the frame.
    assert shown.locator(".banner p").evaluate("e => getComputedStyle(e).color") == "rgb(255, 255, 255)"
    inner, outer = box(shown.locator(".banner")), box(frame)
    assert inner["y"] == outer["y"] + 1 and inner["width"] <= outer["width"]  # at the frame's top, in its border
    # Edited: drawn again, the focus left in the document.
    document = page.locator("#document")
    doc = json.loads(document.input_value())
    doc.update(kind="post", content={"title": "Prints are 20% off", "body": "Until Sunday",
                                     "button": {"label": "Order prints", "url": "https://pebble.example/order"}})
    doc.pop("banner", None)
    document.fill(json.dumps(doc, indent=2))
    post = frame.locator('trailmark-message[data-trailmark-message="upload-done"] .post')
    post.get_by_role("heading", name="Prints are 20% off").wait_for()
    assert frame.locator("trailmark-message").count() == 1
    assert page.evaluate("() => document.activeElement.id") == "document"
    post.evaluate("e => Promise.all(e.getAnimations().map(a => a.finished))")  # faded in, for the screenshot
    frame.scroll_into_view_if_needed()
    screenshot(page, "messages-admin-preview")
    document.fill("{ not json")
    page.locator("#message-preview-note").get_by_text("not valid JSON").wait_for()
    assert frame.locator("trailmark-message").count() == 1  # the last valid one stays
    # The very file the shim loads, and nothing reported: a preview is never counted.
    assert any(u.endswith("/messages.js") and "/widget/" in u for u in watch.requests)
    assert not [u for u in watch.requests if "/messenger/web/messages/" in u]
    assert watch.js_errors() == []
