"""Files the server hands out or reads, found inside the installed package with ``importlib.resources``.

``assets/snippet/`` and ``assets/demo_site/`` are copies of the top-level ``snippet/`` and ``demo_site/``
made at build time (setup.py; ``scripts/copy_assets.py`` refreshes them in a checkout). Templates and static
files live in the package itself.
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable

PACKAGE = files("trailmark")


def package_file(*parts: str) -> Traversable:
    """A file or folder of the installed package, e.g. ``package_file("assets", "snippet", "loader.js")``."""
    node = PACKAGE
    for part in parts:
        node = node / part
    return node


def snippet_file(name: str) -> Traversable:
    return package_file("assets", "snippet", name)


def read_snippet_bytes(name: str) -> bytes:
    """``loader.js``, ``shim.js``, ``dist/shim.min.js`` …; FileNotFoundError names what to run when missing."""
    node = snippet_file(name)
    try:
        return node.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(
            f"trailmark/assets/snippet/{name} is missing: reinstall the package, or in a checkout run "
            "`python3 scripts/copy_assets.py`") from None
