"""The browser side as the server hands it out: the shim (``/widget/{app_id}``) and the paste-in loader."""

from __future__ import annotations

import functools
import json
from pathlib import Path

SNIPPET_DIR = Path(__file__).resolve().parent.parent / "snippet"


def strip_for_serving(source: str) -> str:
    """Drop full-line ``//`` comments and indentation. The shim keeps its comments on full lines only,
    so this is safe without a JavaScript parser, and it keeps the served file small."""
    lines = []
    for line in source.splitlines():
        text = line.strip()
        if text and not text.startswith("//"):
            lines.append(text)
    return "\n".join(lines) + "\n"


@functools.lru_cache(maxsize=1)
def served_shim() -> bytes:
    return strip_for_serving((SNIPPET_DIR / "shim.js").read_text()).encode()


@functools.lru_cache(maxsize=1)
def loader_source() -> str:
    return strip_for_serving((SNIPPET_DIR / "loader.js").read_text())


def paste_in_snippet(server_url: str, app_id: str) -> str:
    """The ``<script>`` block a site owner pastes before ``</body>``."""
    js = loader_source().replace("TRAILMARK_URL", server_url.rstrip("/")).replace("APP_ID", app_id)
    return "<script>\n" + js + "</script>"


def js_string(value: str) -> str:
    return json.dumps(value)
