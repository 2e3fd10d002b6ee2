"""The docs stay true: the architecture's code map matches the modules, and nothing in the repository points
outside it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_code_map_is_up_to_date() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "code_map.py"), "--check"], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout


def test_the_repository_stands_alone() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=False).stdout.split()
    if not tracked:  # not a git checkout (an sdist): nothing to check
        return
    outside = "../" + "shared"  # written in two parts so this file does not match itself
    offenders = [name for name in tracked
                 if (ROOT / name).is_file() and not name.endswith((".png", ".jpg", ".db", ".sql"))
                 and outside in (ROOT / name).read_text(errors="ignore")]
    assert offenders == []
