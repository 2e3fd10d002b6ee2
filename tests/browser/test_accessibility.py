"""Accessibility in Chromium (experience issue): axe-core — the engine behind Lighthouse's accessibility audit —
over the admin pages, the contact panel and the demo site. No serious or critical violation may remain.

axe-core comes from the npm registry with the Node clients (tests/node/package.json, installed by
``./scripts/test`` when npm is present); without it these tests skip and say so."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import ROOT, Stack, visitor_id

pytestmark = [pytest.mark.browser, pytest.mark.slow]

AXE = ROOT / "tests" / "node" / "node_modules" / "axe-core" / "axe.min.js"
PASSWORD = "correct horse battery staple"


def audit(page: Any, what: str) -> list[str]:
    """Serious and critical violations on the page as it is now, one line each."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [f"{what}: {v['id']} ({v['impact']}): {v['help']} — "
            + "; ".join(json.dumps(n["target"]) for n in v["nodes"][:3])
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


@pytest.fixture
def audited_page(browser: Any) -> Any:
    if not AXE.exists():
        pytest.skip(f"axe-core is not installed ({AXE}): run `npm ci --prefix tests/node`")
    # The admin's Content-Security-Policy forbids inline scripts, which is how axe is injected.
    context = browser.new_context(viewport={"width": 1200, "height": 800}, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def sign_in(page: Any, stack: Stack) -> None:
    email = f"a11y+{uuid.uuid4().hex[:6]}@pebble.example"
    made = subprocess.run([sys.executable, "-m", "trailmark", "admin", "create", "--email", email, "--password-stdin",
                           "--database", str(stack.server.database)], cwd=ROOT, capture_output=True, text=True,
                          input=PASSWORD + "\n", check=False)
    assert made.returncode == 0, made.stderr
    page.goto(stack.server.url + "/admin/login")
    assert not (problems := audit(page, "sign-in")), "\n".join(problems)
    page.locator("input[name=email]").fill(email)
    page.locator("input[type=password]").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/admin/contacts")


def test_the_admin_pages_have_no_serious_accessibility_violations(stack: Stack, audited_page: Any, new_page):
    # Something to show: a visitor who tracked events and wrote from the panel (a lead with a conversation).
    visitor, _ = new_page()
    visitor.goto(stack.page_url("pricing.html"))  # tracks viewed-pricing-page
    visitor_id(visitor)
    visitor.get_by_role("button", name="Contact us").click()
    visitor.get_by_label("Your email", exact=True).fill(f"a11y+{uuid.uuid4().hex[:6]}@pebble.example")
    visitor.get_by_label("Message", exact=True).fill("Is this accessible?")
    visitor.get_by_role("button", name="Send").click()
    expect(visitor.get_by_text("Thanks! We got your message")).to_be_visible()

    page = audited_page
    sign_in(page, stack)
    problems: list[str] = []
    base = stack.server.url + "/admin"
    problems += audit(page, "contacts")
    page.goto(base + "/contacts?role=lead&e0=placed-order&op0=done")
    problems += audit(page, "contacts, filtered")
    page.goto(base + "/contacts?role=lead")
    page.locator("table.table tbody a").first.click()
    page.wait_for_load_state()
    problems += audit(page, "a lead's profile")
    page.goto(base + "/events")
    problems += audit(page, "event list")
    page.locator("table a").first.click()
    page.wait_for_load_state()
    problems += audit(page, "event settings")
    page.goto(base + "/inbox")
    problems += audit(page, "inbox")
    page.locator(".inbox-item a").first.click()
    page.wait_for_load_state()
    problems += audit(page, "conversation")
    page.goto(base + "/settings")
    page.locator("details.secret summary").click()
    problems += audit(page, "settings")
    page.get_by_role("button", name="Rotate secret…").click()  # the confirmation page; not confirmed
    page.wait_for_load_state()
    problems += audit(page, "settings, confirm rotation")
    assert not problems, "\n".join(problems)


def test_the_demo_site_and_the_contact_panel_have_no_serious_violations(stack: Stack, audited_page: Any):
    page = audited_page
    problems: list[str] = []
    for name in ("index.html", "pricing.html", "upload.html", "order.html", "gtm.html"):
        page.goto(stack.page_url(name))
        visitor_id(page)
        problems += audit(page, name)
    page.get_by_role("button", name="Contact us").click()
    expect(page.get_by_role("dialog", name="Contact us")).to_be_visible()
    problems += audit(page, "the contact panel, open")
    assert not problems, "\n".join(problems)
