"""The admin's Settings page (server/admin/settings_page.py): each setting, CSRF, the confirmation step of
destructive changes, rotating the identity secret, the secret shown masked, the security headers."""

from __future__ import annotations

import html
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from trailmark.admin.settings_form import read_settings
from trailmark.identity import user_hash

from .test_admin import csrf_of, sign_in

URL = "/admin/settings"


@pytest.fixture
async def admin(harness: Any) -> AsyncIterator[Any]:
    """A harness whose client is signed in as a teammate."""
    r = await sign_in(harness)
    assert r.status_code == 303, r.text
    yield harness


async def page(h: Any) -> str:
    r = await h.client.get(URL)
    assert r.status_code == 200, r.text
    return r.text


def form_of(ws: Any, **changes: Any) -> dict[str, str]:
    """The whole form as the page posts it, with ``changes`` applied (a False switch is left out)."""
    fields: dict[str, Any] = {
        "enforce_identity_verification": ws.enforce_identity_verification, "strict_metadata": ws.strict_metadata,
        "consent_required": ws.consent_required, "honour_gpc": ws.honour_gpc, "page_views": ws.page_views,
        "retention_days": str(ws.retention_days), "allowed_origins": "\n".join(ws.allowed_origins), **changes}
    return {k: ("on" if v is True else v) for k, v in fields.items() if v is not False}


async def post(h: Any, **fields: str) -> Any:
    return await h.client.post(URL, data={"csrf": csrf_of(await page(h)), **fields})


async def fresh(h: Any) -> Any:
    ws = await h.store.workspace_by_app_id(h.workspace.app_id, cached=False)
    assert ws is not None
    return ws


async def test_the_page_is_in_the_nav_behind_sign_in_with_the_admin_headers(harness: Any) -> None:
    r = await harness.client.get(URL)
    assert r.status_code == 303 and r.headers["location"].startswith("/admin/login")
    r = await harness.client.post(URL, data={"action": "save"})
    assert r.status_code == 303 and r.headers["location"] == "/admin/login"


async def test_page_shows_settings_masked_secret_and_code(admin: Any) -> None:
    r = await admin.client.get(URL)
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp and "unsafe-inline" not in csp
    assert r.headers["x-frame-options"] == "DENY" and r.headers["cache-control"] == "no-store"
    text = r.text
    assert '<a href="/admin/settings" aria-current="page">Settings</a>' in text
    assert "<script>" not in text and " style=" not in text and "<style" not in text  # CSP: nothing inline
    # The secret: only inside a closed <details> (revealed without JavaScript), never in the code examples.
    secret = admin.workspace.identity_secret
    assert text.count(secret) == 1
    details = re.search(r'<details class="secret">(.*?)</details>', text, re.DOTALL)
    assert details and secret in details.group(1) and "<details class=\"secret\" open" not in text
    for language in ("Python", "Node.js", "PHP", "Ruby"):
        assert f"<summary>{language}</summary>" in text
    assert "TRAILMARK_IDENTITY_SECRET" in text and "intercom_user_jwt" in text
    for field in ("enforce_identity_verification", "strict_metadata", "consent_required", "honour_gpc",
                  "retention_days", "allowed_origins"):
        assert f'name="{field}"' in text
    # Every form carries the CSRF token.
    assert text.count('<form method="post"') == text.count('name="csrf"')


async def test_posts_without_csrf_change_nothing(admin: Any) -> None:
    ws = admin.workspace
    for data in ({"action": "save", "strict_metadata": "on", "retention_days": "30"},
                 {"action": "rotate", "grace_days": "7", "confirmed": "yes", "csrf": "forged"}):
        r = await admin.client.post(URL, data=data)
        assert r.status_code == 403 and "Nothing was changed" in r.text
    after = await fresh(admin)
    assert after.identity_secret == ws.identity_secret and after.retention_days == ws.retention_days
    assert not after.strict_metadata


@pytest.mark.parametrize("name", ["strict_metadata", "consent_required", "honour_gpc"])
async def test_switches_turn_on_and_off_without_confirmation(admin: Any, name: str) -> None:
    r = await post(admin, action="save", **form_of(admin.workspace, **{name: True}))
    assert r.status_code == 303 and r.headers["location"] == URL
    assert getattr(await fresh(admin), name) is True
    assert "Settings saved" in await page(admin)
    r = await post(admin, action="save", **form_of(await fresh(admin), **{name: False}))
    assert r.status_code == 303 and getattr(await fresh(admin), name) is False


async def test_page_views_are_on_by_default_and_switch_off_and_on(admin: Any) -> None:
    assert admin.workspace.page_views and 'id="page_views" name="page_views" value="on" checked' in await page(admin)
    r = await post(admin, action="save", **form_of(admin.workspace, page_views=False))
    assert r.status_code == 303 and (await fresh(admin)).page_views is False
    assert 'id="page_views" name="page_views" value="on" aria' in await page(admin)  # unticked
    r = await post(admin, action="save", **form_of(await fresh(admin), page_views=True))
    assert r.status_code == 303 and (await fresh(admin)).page_views is True


async def test_identity_verification_on_is_saved_and_off_needs_confirmation(admin: Any) -> None:
    r = await post(admin, action="save", **form_of(admin.workspace, enforce_identity_verification=True))
    assert r.status_code == 303 and (await fresh(admin)).enforce_identity_verification
    off = form_of(await fresh(admin), enforce_identity_verification=False, strict_metadata=True)
    r = await post(admin, action="save", **off)
    assert r.status_code == 200 and "Confirm these changes" in r.text and "Turn identity verification off" in r.text
    assert (await fresh(admin)).enforce_identity_verification and not (await fresh(admin)).strict_metadata
    # The confirmation page posts the same values again, with its CSRF token and confirmed=yes.
    confirm = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">', r.text))
    assert confirm["confirmed"] == "yes" and confirm["strict_metadata"] == "on"
    assert "enforce_identity_verification" not in confirm
    r = await admin.client.post(URL, data=confirm)
    assert r.status_code == 303
    ws = await fresh(admin)
    assert not ws.enforce_identity_verification and ws.strict_metadata


async def test_retention_shorter_needs_confirmation_longer_does_not_and_bad_values_are_refused(admin: Any) -> None:
    r = await post(admin, action="save", **form_of(admin.workspace, retention_days="120"))
    assert r.status_code == 303 and (await fresh(admin)).retention_days == 120
    r = await post(admin, action="save", **form_of(await fresh(admin), retention_days="30"))
    assert r.status_code == 200 and "Shorten retention from 120 to 30 days" in r.text
    assert (await fresh(admin)).retention_days == 120
    r = await post(admin, action="save", confirmed="yes", **form_of(await fresh(admin), retention_days="30"))
    assert r.status_code == 303 and (await fresh(admin)).retention_days == 30
    for bad in ("0", "3651", "ten", "-5", ""):
        r = await post(admin, action="save", **form_of(await fresh(admin), retention_days=bad, strict_metadata=True))
        assert r.status_code == 400 and "whole number of days" in r.text, bad
        assert html.escape(bad) in r.text  # shown again as typed
    ws = await fresh(admin)
    assert ws.retention_days == 30 and not ws.strict_metadata  # nothing saved from a form with an error


async def test_allowed_origins_one_per_line_normalised_like_the_cli(admin: Any) -> None:
    origins = "https://Shop.Example/\n\n  http://127.0.0.1:8001  \r\nhttps://shop.example"
    r = await post(admin, action="save", **form_of(admin.workspace, allowed_origins=origins))
    assert r.status_code == 303
    assert (await fresh(admin)).allowed_origins == ("https://shop.example", "http://127.0.0.1:8001")
    assert "https://shop.example\nhttp://127.0.0.1:8001</textarea>" in await page(admin)
    for bad in ("javascript:alert(1)", "https://shop.example/path", "shop.example", "https://a.example?x=1"):
        r = await post(admin, action="save", **form_of(await fresh(admin), allowed_origins=f"https://ok.example\n{bad}"))
        assert r.status_code == 400 and "one origin per line" in r.text, bad
    assert (await fresh(admin)).allowed_origins == ("https://shop.example", "http://127.0.0.1:8001")
    r = await post(admin, action="save", **form_of(await fresh(admin), allowed_origins=""))
    assert r.status_code == 303 and (await fresh(admin)).allowed_origins == ()


async def test_rotate_needs_confirmation_and_the_old_secret_keeps_verifying(admin: Any) -> None:
    old = admin.workspace.identity_secret
    r = await post(admin, action="rotate", grace_days="14")
    assert r.status_code == 200 and "Rotate the identity secret?" in r.text and "14 days" in r.text
    assert (await fresh(admin)).identity_secret == old
    r = await post(admin, action="rotate", grace_days="14", confirmed="yes")
    assert r.status_code == 303
    ws = await fresh(admin)
    assert ws.identity_secret != old and ws.previous_identity_secret == old
    assert abs(ws.previous_secret_expires_at - (time.time() + 14 * 86400)) < 60
    text = await page(admin)
    assert "New identity secret made" in text and "The previous secret keeps verifying until" in text
    assert old not in text and ws.identity_secret in text
    # Boots proven with either secret are accepted during the grace period.
    for secret, who in ((old, "u-old"), (ws.identity_secret, "u-new")):
        r = await admin.ping(user={"user_id": who, "user_hash": user_hash(secret, who)})
        assert r.status_code == 200, r.text
    r = await post(admin, action="rotate", grace_days="5", confirmed="yes")  # not a period the page offers
    assert r.status_code == 303 and (await fresh(admin)).identity_secret == ws.identity_secret


async def test_a_rotation_during_a_grace_period_says_it_ends_it(admin: Any) -> None:
    await admin.store.rotate_identity_secret(admin.workspace)
    r = await post(admin, action="rotate", grace_days="7")
    assert "stops verifying now" in r.text


def test_form_rules_without_http() -> None:
    from dataclasses import replace

    from trailmark.store.models import Workspace

    ws = Workspace(id=1, app_id="a", name="n", access_token=None, signing_key="k", identity_secret="s",
                   previous_identity_secret=None, previous_secret_expires_at=None,
                   enforce_identity_verification=True, strict_metadata=False, allowed_origins=(),
                   retention_days=90, created_at=0, page_views=False)  # off: the forms below leave its box out
    same = read_settings(ws, {"enforce_identity_verification": "on", "retention_days": "90"})
    assert same.changes == {} and same.errors == {} and same.risky == []
    both = read_settings(ws, {"retention_days": "7"})
    assert both.changes == {"enforce_identity_verification": False, "retention_days": 7} and len(both.risky) == 2
    assert read_settings(replace(ws, enforce_identity_verification=False), {"retention_days": "91"}).risky == []
