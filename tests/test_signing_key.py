"""Rotating a workspace's signing key (``trailmark workspace set --rotate-signing-key``), the step after a leak
of the database (docs/security.md): tokens signed with the old key name nobody any more."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


async def test_rotating_the_signing_key_voids_every_visitor_and_session_token(harness: Any) -> None:
    """After a database leak (docs/security.md): tokens forged with the old key are refused."""
    h = harness
    first = await h.visitor()
    ok = await h.track(first["session"], {"id": "e1", "event_name": "before-rotation"})
    assert ok.status_code == 200
    await h.store.rotate_signing_key(h.workspace)
    refused = await h.track(first["session"], {"id": "e2", "event_name": "after-rotation"})
    assert refused.status_code == 401
    again = await h.visitor(device=first["device"], session=first["session"])
    assert again["visitor_id"] != first["visitor_id"]  # the old device token names nobody now


def test_cli_rotates_the_signing_key(tmp_path: Path) -> None:
    db = str(tmp_path / "t.db")

    def run(*args: str) -> str:
        return subprocess.run([sys.executable, "-m", "trailmark", "workspace", *args, "--database", db], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout

    json.loads(run("create", "--json"))
    def key() -> str:
        with contextlib.closing(sqlite3.connect(db)) as conn:
            return str(conn.execute("SELECT signing_key FROM workspaces").fetchone()[0])

    before = key()
    run("set", "--rotate-signing-key")
    assert key() != before
