"""The admin's Settings page in Chromium: sign in, change a setting, turn identity verification off through the
confirmation page, reveal the identity secret without JavaScript's help, rotate it (confirmation, grace date).
Screenshots: test-output/settings-*.png."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from typing import Any

import pytest

from .conftest import ROOT, screenshot

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"


def workspace(database: Any) -> dict[str, Any]:
    listed = subprocess.run([sys.executable, "-m", "trailmark", "workspace", "list", "--json", "--database",
                             str(database)], cwd=ROOT, capture_output=True, text=True, check=True)
    found: dict[str, Any] = json.loads(listed.stdout)[0]
    return found


def test_change_settings_and_rotate_the_secret(make_stack, new_page) -> None:
    stack = make_stack()
    server = stack.server
    email = f"settings-{uuid.uuid4().hex[:6]}@pebble.example"
    subprocess.run([sys.executable, "-m", "trailmark", "admin", "create", "--email", email, "--password-stdin",
                    "--database", str(server.database)], cwd=ROOT, input=PASSWORD + "\n", text=True,
                   capture_output=True, check=True)
    page, watch = new_page()
    page.set_viewport_size({"width": 1200, "height": 1600})
    page.goto(server.url + "/admin/login?next=/admin/settings")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("form.stack button[type=submit]")
    page.wait_for_url("**/admin/settings")
    assert page.locator("nav.nav a[aria-current=page]").inner_text() == "Settings"
    # The secret is hidden until revealed.
    assert not page.locator("#identity-secret").is_visible()
    screenshot(page, "settings-page", full_page=True)

    # A plain setting: saved at once.
    page.check("#strict_metadata")
    page.fill("#allowed_origins", "https://Shop.Example/\nhttp://127.0.0.1:9")
    page.click("text=Save settings")
    page.wait_for_selector(".flash >> text=Settings saved")
    ws = workspace(server.database)
    assert ws["strict_metadata"] is True
    assert ws["allowed_origins"] == ["https://shop.example", "http://127.0.0.1:9"]

    # A destructive one: a confirmation page first, nothing changed until confirmed.
    page.uncheck("#enforce_identity_verification")
    page.click("text=Save settings")
    page.wait_for_selector("h1 >> text=Confirm these changes")
    assert workspace(server.database)["enforce_identity_verification"] is True
    screenshot(page, "settings-confirm-verification-off")
    page.click("text=Yes, save these changes")
    page.wait_for_selector(".flash >> text=Settings saved")
    ws = workspace(server.database)
    assert ws["enforce_identity_verification"] is False and ws["strict_metadata"] is True
    assert ws["allowed_origins"] == ["https://shop.example", "http://127.0.0.1:9"]  # carried through the confirmation

    # Reveal the secret (a <details>: no script involved), then rotate it.
    page.click("details.secret summary")
    assert page.locator("#identity-secret").inner_text() == server.identity_secret
    page.select_option("#grace_days", "14")
    page.click("text=Rotate secret…")
    page.wait_for_selector("h1 >> text=Rotate the identity secret?")
    screenshot(page, "settings-confirm-rotate")
    page.click("text=Rotate the secret")
    page.wait_for_selector(".flash >> text=New identity secret made")
    ws = workspace(server.database)
    assert ws["identity_secret"] != server.identity_secret
    assert ws["previous_identity_secret_expires_at"] is not None
    page.click("details.secret summary")
    assert page.locator("#identity-secret").inner_text() == ws["identity_secret"]
    assert page.locator("text=The previous secret keeps verifying until").is_visible()
    screenshot(page, "settings-rotated", full_page=True)
    assert watch.js_errors() == []
