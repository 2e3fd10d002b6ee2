"""The benchmark table: rows added by each section (each figure beside its baseline from the same run), the
notes under it, the machine it ran on, and the small timing helpers the in-process sections share."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import platform
import sqlite3
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Row:
    section: str
    figure: str
    value: str
    baseline: str = ""
    baseline_value: str = ""
    ratio: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


ROWS: list[Row] = []
NOTES: list[str] = []
TITLES: dict[str, str] = {}  # a heading per section in the table


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def add(section: str, figure: str, value: str, baseline: str = "", baseline_value: str = "",
        ratio: float | str | None = None, **raw: Any) -> None:
    r = ratio if isinstance(ratio, str) else "" if ratio is None else f"{ratio:.2f}"
    ROWS.append(Row(section, figure, value, baseline, baseline_value, r, raw))
    say(f"    {figure}: {value}" + (f"   [{baseline}: {baseline_value}; ratio {r}]" if baseline else ""))


def num(x: float) -> str:
    return f"{x:,.0f}"


def ms(x: float) -> str:
    return f"{x:.2f} ms" if x < 10 else f"{x:.1f} ms"


def mb(kb: int) -> str:
    return f"{kb / 1024:.0f} MB"


def print_table(machine: dict[str, str]) -> None:
    heads = ("figure", "value", "baseline (same run)", "baseline value", "ratio")
    widths = [max(len(h), *(len(getattr(r, a)) for r in ROWS)) if ROWS else len(h)
              for h, a in zip(heads, ("figure", "value", "baseline", "baseline_value", "ratio"), strict=True)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print()
    print("Trailmark benchmarks — " + ", ".join(f"{k}: {v}" for k, v in machine.items()))
    print()
    print(line.format(*heads))
    print(line.format(*("-" * w for w in widths)))
    section = None
    for r in ROWS:
        if r.section != section:
            if section is not None:
                print()
            if r.section in TITLES:
                print(f"[{r.section}] {TITLES[r.section]}")
        section = r.section
        print(line.format(r.figure, r.value, r.baseline, r.baseline_value, r.ratio).rstrip())
    if NOTES:
        print()
        for n in NOTES:
            print(f"* {n}")


def machine_info() -> dict[str, str]:
    cpu = "?"
    with contextlib.suppress(OSError):
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                cpu = ln.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.0f} GiB"
    import starlette
    import uvicorn

    http_impl = "httptools" if importlib.util.find_spec("httptools") else "h11"
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    return {"cores": str(os.cpu_count()), "RAM": mem, "CPU": cpu, "Python": platform.python_version(),
            "SQLite": sqlite3.sqlite_version, "starlette": starlette.__version__,
            "uvicorn": f"{uvicorn.__version__} ({http_impl}, {loop} loop)"}


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


async def timed(fn: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    t = time.perf_counter()
    out = await fn()
    return time.perf_counter() - t, out
