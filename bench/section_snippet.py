"""Snippet sizes (section ``snippet``): what a visitor's browser downloads, gzip -9, against each file's budget
(the figures come from bench/snippet_size.py)."""

from __future__ import annotations

import importlib.util

from processes import HERE
from report import TITLES, add, say


def section_snippet() -> None:
    say("\n[snippet] sizes")
    TITLES["snippet"] = "what a visitor's browser downloads, gzip -9 (bench/snippet_size.py), against its budget"
    path = HERE / "snippet_size.py"
    if not path.exists():
        add("snippet", "snippet sizes", "skipped: bench/snippet_size.py not found")
        return
    spec = importlib.util.spec_from_file_location("snippet_size", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for name, raw, gz, budget in mod.measure():
        add("snippet", f"{name}: gzip -9 size (raw {raw:,} B)", f"{gz:,} B", "budget", f"{budget:,} B", gz / budget)
