"""Report the size of what a visitor's browser downloads: the loader and the shim, raw and gzip -9.

Run ``python bench/snippet_size.py``. Exits 1 when either is over its budget, so CI can call it.
The budgets: loader 800 B and shim 3072 B gzipped (issue "snippet"; Plausible reports its tracker size
on every change, see shared/STYLE.md).
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOADER = ROOT / "snippet" / "loader.js"
SHIM = ROOT / "snippet" / "shim.js"
BUDGETS = {"loader": 800, "shim": 3072}

# Realistic values for the placeholders the server fills in when it prints the snippet.
EXAMPLE_BASE = "http://127.0.0.1:8000"
EXAMPLE_APP_ID = "k3x9q2ab"


def strip_for_serving(source: str) -> str:
    """Return the shim as served: full-line ``//`` comments, leading indentation and blank lines removed.

    Safe only because shim.js never uses block comments, comments after code, or template literals
    spanning lines (see the header of snippet/shim.js). Line breaks are kept, so automatic semicolon
    insertion behaves exactly as in the source.
    """
    lines = (line.strip() for line in source.splitlines())
    return "".join(line + "\n" for line in lines if line and not line.startswith("//"))


def fill_placeholders(loader: str, base: str = EXAMPLE_BASE, app_id: str = EXAMPLE_APP_ID) -> str:
    return loader.replace("TRAILMARK_URL", base).replace("APP_ID", app_id)


def gzip_size(text: str) -> int:
    return len(gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0))


def measure() -> list[tuple[str, int, int, int]]:
    """(name, raw bytes, gzip bytes, budget) for the loader and the served shim."""
    served = {
        "loader": fill_placeholders(LOADER.read_text(encoding="utf-8")),
        "shim": strip_for_serving(SHIM.read_text(encoding="utf-8")),
    }
    return [(name, len(text.encode("utf-8")), gzip_size(text), BUDGETS[name]) for name, text in served.items()]


def main() -> int:
    rows = measure()
    print(f"{'file':<8} {'raw B':>7} {'gzip B':>7} {'budget':>7}  status")
    over = False
    for name, raw, gz, budget in rows:
        ok = gz <= budget
        over |= not ok
        print(f"{name:<8} {raw:>7} {gz:>7} {budget:>7}  {'ok' if ok else 'OVER BUDGET'}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
