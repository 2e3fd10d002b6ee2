"""The README's "Run the demo" steps, followed in Chromium exactly as a newcomer would (experience issue, Must
show): ``trailmark demo`` prints a one-time sign-in link beside the demo site's address; the visitor browses,
gets in touch and becomes a lead; the printed link signs the teammate in, and the lead's profile shows the
visit's history; "Sign in as Ada" (verified by user_hash) merges the lead into the user Ada, whose profile then
shows the lead's history merged."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from .conftest import ROOT, _stop, _wait_http, free_port, screenshot, visitor_id

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def start_demo(tmp_path: Path) -> tuple[subprocess.Popen[bytes], str, str, str]:
    port, demo_port = free_port(), free_port()
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "trailmark", "demo", "--port", str(port), "--demo-port",
                                 str(demo_port), "--database", str(tmp_path / "demo.db")], cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT)
    server, demo = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{demo_port}"
    try:
        _wait_http(server + "/health", proc, log)
        _wait_http(demo + "/", proc, log)
    except BaseException:
        _stop(proc)
        raise
    printed = log.read_text()
    link = re.search(r"(http://127\.0\.0\.1:\d+/admin/login/link/\S+)", printed)
    assert link, printed
    assert demo in printed and "1. Browse as an anonymous visitor" in printed
    return proc, server, demo, link.group(1)


def test_the_readme_demo_steps_end_with_the_leads_merged_history(tmp_path: Path, new_page):
    proc, server, demo, link = start_demo(tmp_path)
    try:
        # 1. Browse as an anonymous visitor: each page says what it tracks.
        page, watch = new_page()
        page.goto(demo + "/pricing.html")
        expect(page.locator("[data-tracking-note]")).to_contain_text("viewed-pricing-page")
        visitor_id(page)
        page.get_by_role("button", name=re.compile("Choose Pro|Pro", re.I)).first.click()
        page.goto(demo + "/upload.html")
        expect(page.locator("[data-tracking-note]")).to_contain_text("upload-complete")

        # 2. Get in touch: the chat button, an email and a message.
        page.get_by_role("button", name="Contact us").click()
        page.get_by_label("Your email", exact=True).fill("newcomer@pebble.example")
        page.get_by_label("Message", exact=True).fill("Do you print on matte paper?")
        page.get_by_role("button", name="Send").click()
        expect(page.get_by_text("Thanks! We got your message")).to_be_visible()

        # 3. The printed one-time link signs in; the new lead is there with the visit's history.
        admin, admin_watch = new_page()
        admin.goto(link)
        expect(admin).to_have_url(re.compile(r"/admin/contacts"))
        admin.get_by_role("link", name="newcomer@pebble.example").click()
        body = admin.locator("body")
        expect(body).to_contain_text("Viewed pricing page")
        expect(body).to_contain_text("Do you print on matte paper?")
        expect(admin.locator("h1")).to_contain_text("lead")
        screenshot(admin, "demo-lead-profile", full_page=True)
        # The link works once.
        other, _ = new_page()
        other.goto(link)
        expect(other.get_by_role("heading", name="This sign-in link no longer works")).to_be_visible()

        # 4. Sign in as Ada: the lead is merged into the verified user Ada.
        page.goto(demo + "/")
        page.click("#login-button")
        page.wait_for_function("() => document.getElementById('status').textContent.includes('verified')")
        deadline = time.time() + 10
        while time.time() < deadline:
            admin.goto(server + "/admin/contacts?role=user")
            if admin.get_by_role("link", name="Ada Lovelace").count():
                break
            time.sleep(0.2)
        admin.get_by_role("link", name="Ada Lovelace").click()
        body = admin.locator("body")
        expect(body).to_contain_text("Viewed pricing page")  # the lead's visit, on Ada's timeline
        expect(body).to_contain_text("came from the lead")
        expect(body).to_contain_text("Do you print on matte paper?")  # the conversation followed
        screenshot(admin, "demo-ada-merged", full_page=True)
        assert watch.js_errors() == [] and admin_watch.js_errors() == []
    finally:
        _stop(proc)
