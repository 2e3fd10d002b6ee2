"""Copy what the server serves from the top-level sources into the package (``server/assets/``).

``snippet/`` and ``demo_site/`` stay where they are as sources; the installed ``trailmark`` package reads its
copies with ``importlib.resources`` (server/assets.py). setup.py runs this for every build (wheel, sdist
install, editable install) and ``scripts/test`` runs it before pytest, so an edited source is what is served.
The copies are not committed (.gitignore).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# (source, destination inside the package, files)
SNIPPET_FILES = ("loader.js", "shim.js", "panel.js", "messages.js", "dist/shim.min.js", "dist/panel.min.js",
                 "dist/messages.min.js")


def copy_assets(package_dir: Path, root: Path = ROOT) -> list[Path]:
    """Copy the snippet's sources and build and the demo site into ``package_dir/assets``; returns the
    files written."""
    target = package_dir / "assets"
    written: list[Path] = []
    for name in SNIPPET_FILES:
        src = root / "snippet" / name
        if src.is_file():
            dst = target / "snippet" / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
            written.append(dst)
    demo = target / "demo_site"
    if demo.exists():
        shutil.rmtree(demo)
    shutil.copytree(root / "demo_site", demo)
    written += [p for p in demo.rglob("*") if p.is_file()]
    return written


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "server"
    print(f"copied {len(copy_assets(out))} asset files into {out / 'assets'}")
