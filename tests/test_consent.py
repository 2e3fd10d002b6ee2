"""Consent mode on the server side: the setting (migration 7, CLI flags) and the widget route writing the
workspace's consent settings into the shim it serves. The shim's behaviour is in tests/browser/test_consent.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from trailmark import snippet
from trailmark.assets import read_snippet_bytes

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["shim.js", "dist/shim.min.js"])
def test_the_consent_placeholder_survives_the_build_exactly_once(name: str) -> None:
    assert read_snippet_bytes(name).count(snippet.CONSENT_DEFAULT) == 1


@pytest.mark.parametrize(("consent", "gpc"), [(True, False), (True, True), (False, True)])
async def test_the_widget_serves_the_workspace_consent_settings(make_harness: Any, consent: bool, gpc: bool) -> None:
    async with make_harness(consent_required=consent, honour_gpc=gpc) as h:
        r = await h.client.get(f"/widget/{h.workspace.app_id}")
    assert r.status_code == 200
    expected = json.dumps({"consent_required": consent, "honour_gpc": gpc}, separators=(",", ":")).encode()
    assert snippet.CONSENT_DEFAULT not in r.content and r.content.count(expected) == 1
    assert r.content == snippet.served_shim().replace(snippet.CONSENT_DEFAULT, expected)


async def test_without_consent_mode_the_shim_is_served_as_built(harness: Any) -> None:
    r = await harness.client.get(f"/widget/{harness.workspace.app_id}")
    assert r.content == snippet.served_shim()


def trailmark(*args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "trailmark", "workspace", *args, "--json"], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def test_cli_flags(tmp_path: Path) -> None:
    db = str(tmp_path / "t.db")
    made = trailmark("create", "--name", "Shop", "--consent-required", "--database", db)
    assert made["consent_required"] is True and made["honour_gpc"] is False
    ws = trailmark("set", "--honour-gpc", "--database", db)
    assert ws["consent_required"] is True and ws["honour_gpc"] is True
    ws = trailmark("set", "--no-consent-required", "--no-honour-gpc", "--database", db)
    assert ws["consent_required"] is False and ws["honour_gpc"] is False
    listed = subprocess.run([sys.executable, "-m", "trailmark", "workspace", "list", "--database", db], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout
    assert "consent required:      no" in listed and "honour GPC / DNT:      no" in listed

