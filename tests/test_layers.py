"""The store and the pure rules modules know nothing of HTTP: no Starlette, no HTTP error mapping."""

from __future__ import annotations

import ast
from pathlib import Path

import trailmark

SERVER = Path(trailmark.__file__).parent
HTTP_MODULES = {"starlette", "trailmark.errors", "trailmark.http_edge"}
PURE = [*sorted((SERVER / "store").glob("*.py")),
        *(SERVER / name for name in ("domain_errors.py", "limits.py", "strict_json.py", "metadata.py"))]


def imports_of(path: Path) -> set[str]:
    package = "trailmark.store" if path.parent.name == "store" else "trailmark"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = f"{base}.{node.module}" if base and node.module else (node.module or base)
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names}
    return found


def test_the_store_and_the_rules_import_nothing_of_http():
    for path in PURE:
        bad = {m for m in imports_of(path) if any(m == h or m.startswith(h + ".") for h in HTTP_MODULES)}
        assert not bad, f"{path.relative_to(SERVER)} imports {sorted(bad)}"
