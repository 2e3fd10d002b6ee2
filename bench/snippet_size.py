"""Report the size of what a visitor's browser downloads, as the server serves it, against the budgets, and
the size of the readable sources it is built from.

Run ``python bench/snippet_size.py``. Exits 1 when anything is over its budget, so CI can call it.
Budgets (issue "snippet"; Plausible reports its tracker size on every change, as this file does):
- loader: 800 B raw, the ``<script>`` block as ``trailmark serve`` prints it for the site owner to paste;
- shim: 3584 B gzip -9, ``/widget/{app_id}`` (``snippet/dist/shim.min.js``), loaded on every page;
- panel: 2560 B gzip -9, ``/widget/{app_id}/panel.js`` (``snippet/dist/panel.min.js``): the launcher with its
  unread badge and the contact panel with the conversation thread, loaded only when needed (at boot unless
  ``hide_default_launcher``, else on ``show``);
- messages: 3072 B gzip -9, ``/widget/{app_id}/messages.js`` (``snippet/dist/messages.min.js``): banners, posts
  and chats, loaded only when an answer first carries a message (docs/messages.md).
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SNIPPET_DIR = ROOT / "snippet"

# name -> (budget in bytes, what the budget counts)
BUDGETS = {"loader": (800, "raw"), "shim": (3584, "gzip"), "panel": (2560, "gzip"), "messages": (3072, "gzip")}

# Realistic values for the placeholders the server fills in when it prints the snippet.
EXAMPLE_BASE = "http://127.0.0.1:8000"
EXAMPLE_APP_ID = "k3x9q2ab"


def gzip_size(data: str | bytes) -> int:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return len(gzip.compress(raw, compresslevel=9, mtime=0))


def served() -> dict[str, bytes]:
    """What the browser gets: the printed loader and the scripts exactly as the server sends them."""
    if str(ROOT) not in sys.path:  # run as `python bench/snippet_size.py` without the package installed
        sys.path.insert(0, str(ROOT))
    from trailmark.snippet import paste_in_snippet, served_script

    return {
        "loader": paste_in_snippet(EXAMPLE_BASE, EXAMPLE_APP_ID).encode("utf-8"),
        "shim": served_script("shim"),
        "panel": served_script("panel"),
        "messages": served_script("messages"),
    }


def measure() -> list[tuple[str, int, int, int]]:
    """(name, raw bytes, gzip bytes, budget) of what is served (bench/run.py reads these rows)."""
    return [(name, len(data), gzip_size(data), BUDGETS[name][0]) for name, data in served().items()]


def within_budget(name: str, raw: int, gz: int) -> bool:
    budget, counts = BUDGETS[name]
    return (raw if counts == "raw" else gz) <= budget


def main() -> int:
    print(f"{'served':<16} {'raw B':>7} {'gzip B':>7} {'budget':>12}  status")
    over = False
    rows = measure()
    for name, raw, gz, _ in rows:
        ok = within_budget(name, raw, gz)
        over |= not ok
        budget, counts = BUDGETS[name]
        print(f"{name:<16} {raw:>7} {gz:>7} {f'{budget} {counts}':>12}  {'ok' if ok else 'OVER BUDGET'}")
    sizes = {name: gz for name, _, gz, _ in rows}
    print(f"{'shim + panel':<16} {'':>7} {sizes['shim'] + sizes['panel']:>7} {'':>12}  "
          "(a page that shows the launcher)")
    print(f"\n{'readable source':<16} {'raw B':>7} {'gzip B':>7}")
    for name in ("loader", "shim", "panel", "messages"):
        text = (SNIPPET_DIR / f"{name}.js").read_bytes()
        print(f"{name + '.js':<16} {len(text):>7} {gzip_size(text):>7}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
