"""``--profile``: a py-spy profile of the server during the SQLite single-event ingest run, summarised as
shares of the main thread's samples under the table."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from processes import ServerProcess
from report import NOTES

KEEP_DIR = Path("/tmp/trailmark-bench")


def start_profiler(tmp: Path, seconds: float, server: ServerProcess, label: str) -> subprocess.Popen[bytes] | None:
    """py-spy on the server's (first) serving process for about ``seconds``, raw stacks to ``tmp``."""
    spy = shutil.which("py-spy")
    if not spy:
        NOTES.append("--profile: py-spy is not installed (pip install py-spy); no profile taken")
        return None
    out = tmp / f"{label}.pyspy.txt"
    return subprocess.Popen([spy, "record", "-p", str(server.serving_pids()[0]),
                             "-d", str(max(1, int(seconds) - 1)),
                             "-r", "250", "-f", "raw", "--threads", "-o", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


PROFILE_RULES = [
    ("select (selectors", "event loop idle (waiting in epoll)"),
    ("_write_loop", "writer task: the group-commit transaction (awaiting aiosqlite)"),
    ("asyncpg/", "asyncpg: the PostgreSQL driver"),
    ("postgres_db.py", "writer task: the group-commit transaction (PostgreSQL)"),
    ("read_session", "handler: session token check (itsdangerous)"),
    ("read_json_object", "handler: read + strict JSON parse of the body"),
    ("validate_browser_batch", "handler: validate events + metadata"),
    ("append_events", "handler: append_events (queue + await commit)"),
    ("workspace_for", "handler: workspace lookup (cached)"),
    ("JSONResponse", "handler: build the JSON answer"),
    ("messenger.py", "handler: rest of the endpoint"),
    ("h11/_", "h11: HTTP parse/serialize"),
    ("h11_impl", "uvicorn protocol + socket writes"),
    ("starlette/", "starlette: routing, middleware, response"),
    ("aiosqlite", "aiosqlite: futures and thread hand-offs (main thread)"),
]


def finish_profiler(proc: subprocess.Popen[bytes] | None, label: str) -> None:
    if proc is None:
        return
    proc.wait(timeout=60)
    out = Path(proc.args[-1])  # type: ignore[index]
    if not out.exists():
        NOTES.append("--profile: py-spy wrote nothing (ptrace not permitted?)")
        return
    kept = KEEP_DIR / out.name  # the raw stacks outlive the run's temporary directory, for a closer look
    KEEP_DIR.mkdir(parents=True, exist_ok=True)
    shutil.copy(out, kept)
    NOTES.append(f"--profile: raw py-spy stacks of all threads kept in {kept}")
    cats: dict[str, int] = {}
    main = sql = 0
    for line in out.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        frames = stack.split(";")
        if "MainThread" not in frames[0]:
            if any("aiosqlite/core.py:63" in f for f in frames):  # the worker thread running a statement
                sql += int(n)
            continue
        main += int(n)
        cat = "asyncio event loop and other"
        for f in reversed(frames):
            hit = next((name for pat, name in PROFILE_RULES if pat in f), None)
            if hit:
                cat = hit
                break
        cats[cat] = cats.get(cat, 0) + int(n)
    lines = [f"{n / main * 100:5.1f}%  {c}" for c, n in sorted(cats.items(), key=lambda kv: -kv[1])]
    if sql:
        lines.append(f"(SQLite statements running in aiosqlite's threads: {sql / main * 100:.1f}% as many samples "
                     "as the main thread's)")
    NOTES.append(f"profile of {label} (py-spy, main thread, {main} samples):\n    " + "\n    ".join(lines))
