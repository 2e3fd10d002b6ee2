"""What the browser downloads (server/snippet.py, snippet/): the minified build is fresh and served, the budgets
hold, the printed loader and the demo pages carry the snippet with its placeholders filled.

No node needed, except for ``node --check`` of the builds (skipped without node)."""

from __future__ import annotations

import gzip
import importlib.util
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from trailmark import snippet
from trailmark.assets import read_snippet_bytes
from trailmark.demo import create_demo_app

ROOT = Path(__file__).resolve().parent.parent
SNIPPET_DIR, DEMO_DIR = ROOT / "snippet", ROOT / "demo_site"
DIST_DIR = SNIPPET_DIR / "dist"
SCRIPTS = ("shim", "panel", "messages")
URL, APP_ID = "https://trailmark.pebble.example", "k3x9q2ab"


def gzip_size(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def bench() -> Any:
    spec = importlib.util.spec_from_file_location("snippet_size", ROOT / "bench" / "snippet_size.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", SCRIPTS)
def test_the_minified_build_is_fresh(name: str) -> None:
    built = snippet.build_sha256(name)
    assert built is not None, f"snippet/dist/{name}.min.js is missing: run `npm --prefix snippet run build`"
    assert built == snippet.source_sha256(name), (
        f"snippet/dist/{name}.min.js was built from another {name}.js: run `npm --prefix snippet run build`")


@pytest.mark.parametrize("name", SCRIPTS)
def test_the_server_serves_the_minified_build(name: str) -> None:
    served = snippet.served_script(name)
    assert served == (DIST_DIR / f"{name}.min.js").read_bytes()
    source = (SNIPPET_DIR / f"{name}.js").read_bytes()
    assert len(served) < len(source) * 0.6  # comments gone, names mangled (the panel's CSS and HTML stay as written)
    assert served.count(b"\n") <= 2  # the header line and the code


def test_a_stale_build_is_not_served(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "dist").mkdir()
    (tmp_path / "shim.js").write_text("window.fresh = 1;\n")
    (tmp_path / "dist" / "shim.min.js").write_text("// trailmark shim.js sha256=" + "0" * 64 + "\nwindow.stale=1;\n")
    monkeypatch.setattr(snippet, "read_snippet_bytes", lambda name: (tmp_path / name).read_bytes())
    snippet.served_script.cache_clear()
    try:
        assert snippet.served_script("shim") == b"window.fresh = 1;\n"
    finally:
        snippet.served_script.cache_clear()


@pytest.mark.parametrize("name", ["loader.js", "shim.js", "panel.js", "messages.js", "dist/shim.min.js",
                                  "dist/panel.min.js", "dist/messages.min.js"])
def test_the_package_carries_the_snippet_as_built(name: str) -> None:
    """The installed package serves its own copy (scripts/copy_assets.py, run by the build and scripts/test)."""
    assert read_snippet_bytes(name) == (SNIPPET_DIR / name).read_bytes(), (
        f"trailmark/assets/snippet/{name} differs from snippet/{name}: run `python3 scripts/copy_assets.py`")


def test_budgets_hold_as_served() -> None:
    """shim ≤ 3584 B gzip on every page; the panel (loaded when needed) ≤ 2560 B gzip; the messages renderer
    (loaded when an answer carries a message) ≤ 3072 B gzip; the loader ≤ 800 B raw as printed for the site owner
    (bench/snippet_size.py prints the same figures)."""
    shim, panel = snippet.served_shim(), snippet.served_panel()
    assert gzip_size(shim) <= 3584
    assert gzip_size(panel) <= 2560
    assert gzip_size(snippet.served_messages()) <= 3072
    printed = snippet.paste_in_snippet("http://127.0.0.1:8000", APP_ID)
    assert len(printed.encode()) <= 800
    rows = {name: (raw, gz) for name, raw, gz, _ in bench().measure()}
    assert rows["shim"] == (len(shim), gzip_size(shim))
    assert rows["loader"][0] == len(printed.encode())
    assert bench().main() == 0


def test_the_printed_loader_has_its_placeholders_filled() -> None:
    printed = snippet.paste_in_snippet(URL + "/", APP_ID)
    assert printed.startswith("<script>\n") and printed.endswith("</script>")
    assert "TRAILMARK_URL" not in printed and "APP_ID" not in printed
    assert f'app_id: "{APP_ID}"' in printed and f'api_base: "{URL}"' in printed
    assert f'"{URL}/widget/{APP_ID}"' in printed
    # Modern browsers only: no IE branch, no type attribute.
    assert "attachEvent" not in printed and ".type" not in printed


@pytest.mark.parametrize("page", sorted(p.name for p in DEMO_DIR.glob("*.html")))
def test_demo_pages_carry_the_loader_exactly_as_printed(page: str) -> None:
    html = (DEMO_DIR / page).read_text()
    assert snippet.paste_in_snippet("TRAILMARK_URL", "APP_ID") in html


async def test_the_demo_app_fills_the_placeholders() -> None:
    app = create_demo_app(URL, APP_ID)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://demo") as client:
        for page in ("/", "/pricing.html", "/order.html", "/upload.html"):
            r = await client.get(page)
            assert r.status_code == 200
            assert "TRAILMARK_URL" not in r.text and '"APP_ID"' not in r.text
            assert snippet.paste_in_snippet(URL, APP_ID) in r.text
        assert (await client.get("/example.jpg")).headers["content-type"] == "image/jpeg"


async def test_widget_routes_serve_the_builds(harness: Any) -> None:
    app_id = harness.workspace.app_id
    for path, body in ((f"/widget/{app_id}", snippet.served_shim()),
                       (f"/widget/{app_id}/panel.js", snippet.served_panel()),
                       (f"/widget/{app_id}/messages.js", snippet.served_messages())):
        r = await harness.client.get(path)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/javascript")
        assert r.content == body
    r = await harness.client.get("/widget/nope1234/panel.js")
    assert r.status_code == 404 and "unknown app_id" in r.text


@pytest.mark.parametrize("name", SCRIPTS)
def test_the_builds_are_es2017(name: str) -> None:
    """terser never transpiles: newer syntax in the source would reach the build (and old browsers)."""
    code = (DIST_DIR / f"{name}.min.js").read_text().split("\n", 1)[1]
    assert not re.search(r"\?\.(?!\d)|\?\?|\*\*=|&&=|\|\|=|\bimport\(", code)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
@pytest.mark.parametrize("name", SCRIPTS)
def test_the_builds_parse(name: str) -> None:
    result = subprocess.run(["node", "--check", str(DIST_DIR / f"{name}.min.js")], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stderr
