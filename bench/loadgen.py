"""Load generators for the ingest benchmarks: ``wrk`` (preferred) and a pure-Python fallback.

Both send the same requests (bench/wrk_ingest.lua describes them): ``POST`` of a JSON body as
``text/plain``, each event with a unique client id, rotating over a set of session tokens, on
keep-alive connections, for a fixed time. Both return a :class:`LoadResult` and can write the ids of
the events the server acknowledged (``"status":"accepted"``) to a file, so the caller can check that
every acknowledged event is in the store.

The machine has 2 cores: the generator competes with the server for them. ``wrk -t1`` keeps it to one
thread (one core at most); the Python fallback is much heavier per request and lowers every figure.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
LUA = HERE / "wrk_ingest.lua"
NAMES = ["page-view", "pricing-viewed", "signup-started", "upload-complete", "invited-friend",
         "plan-upgraded", "search", "video-played"]


@dataclass
class LoadResult:
    tool: str
    seconds: float
    requests: int  # answers received
    ok: int  # 2xx answers
    bad: int  # other answers
    p50_ms: float
    p99_ms: float
    acked: int = 0  # event ids acknowledged as accepted (when asked to record them)
    errors: dict[str, int] = field(default_factory=dict)  # non-2xx statuses and socket errors

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


def ensure_wrk(install: bool = True) -> tuple[str | None, str]:
    """Path to wrk, installing Debian's package when we are root; else ``(None, why)``."""
    found = shutil.which("wrk")
    if found:
        return found, "wrk found"
    if not install:
        return None, "wrk not installed (--loadgen python forced or install disabled)"
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        # `apt-get update` only when the package is unknown (a fresh machine's lists may be empty).
        probe = subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], env=env, capture_output=True, text=True)
        if probe.returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
            subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], env=env, capture_output=True)
        found = shutil.which("wrk")
        if found:
            return found, "wrk installed from Debian's package"
        return None, "wrk could not be installed with apt-get (no network to Debian's mirror?)"
    return None, "wrk is not installed; install it (Debian/Ubuntu: apt-get install wrk, macOS: brew install wrk)"


def run_wrk(wrk: str, url: str, *, app_id: str, sessions: list[str], batch: int, seconds: float,
            connections: int, run_id: str, acks_file: Path | None, cpu: int | None) -> LoadResult:
    """One wrk run with one thread (``-t1``: one core at most), optionally pinned to ``cpu``."""
    env = dict(os.environ, TM_APP_ID=app_id, TM_SESSIONS=" ".join(sessions), TM_BATCH=str(batch),
               TM_RUN=run_id, TM_ACKS=str(acks_file) if acks_file else "",
               TM_PATH=re.sub(r"^https?://[^/]+", "", url) or "/")
    base = re.match(r"^https?://[^/]+", url)
    assert base
    cmd = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s", "-s", str(LUA),
           base.group(0) + env["TM_PATH"]]
    if cpu is not None and shutil.which("taskset"):
        cmd = ["taskset", "-c", str(cpu), *cmd]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 60)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("TMJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed (exit {proc.returncode}): {proc.stdout[-800:]} {proc.stderr[-800:]}")
    data = json.loads(line[len("TMJSON "):])
    errors = {f"HTTP {k}": v for k, v in data["bad_statuses"].items()}
    for key in ("connect_errors", "read_errors", "write_errors", "timeouts"):
        if data[key]:
            errors[key] = data[key]
    return LoadResult("wrk", data["duration_us"] / 1e6, data["requests"], data["ok"], data["bad"],
                      data["p50_us"] / 1000, data["p99_us"] / 1000, data["acked"], errors)


# ------------------------------------------------------------------------------ pure-Python fallback
_ACCEPTED = re.compile(rb'"id":"([^"]+)","status":"accepted"')


def _body(app_id: str, session: str, run_id: str, conn: int, n: int, batch: int) -> bytes:
    events = [{"id": f"{run_id}-{conn}-{n}-{i}", "event_name": NAMES[(n + i) % len(NAMES)],
               "metadata": {"plan": "pro", "seats": i, "page": "/pricing"}} for i in range(1, batch + 1)]
    return json.dumps({"app_id": app_id, "session": session, "events": events}, separators=(",", ":")).encode()


async def _worker(host: str, port: int, path: str, conn_no: int, deadline: float, app_id: str,
                  sessions: list[str], batch: int, run_id: str, out: dict[str, list]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    n = 0
    try:
        while time.perf_counter() < deadline:
            n += 1
            body = _body(app_id, sessions[n % len(sessions)], run_id, conn_no, n, batch)
            head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: text/plain;charset=UTF-8\r\n"
                    f"Origin: http://site.example\r\nContent-Length: {len(body)}\r\n\r\n").encode()
            start = time.perf_counter()
            writer.write(head + body)
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            payload = await reader.readexactly(length) if length else b""
            out["latency"].append(time.perf_counter() - start)
            status = int(status_line.split()[1]) if status_line else 0
            if 200 <= status < 300:
                out["ok"].append(1)
                out["acked"].extend(m.decode() for m in _ACCEPTED.findall(payload))
            else:
                out["bad"].append(status)
    except (ConnectionError, asyncio.IncompleteReadError, OSError) as exc:
        out["bad"].append(type(exc).__name__)
    finally:
        writer.close()


def run_python(url: str, *, app_id: str, sessions: list[str], batch: int, seconds: float, connections: int,
               run_id: str, acks_file: Path | None) -> LoadResult:
    """The fallback generator: ``connections`` keep-alive sockets on one asyncio loop (one core)."""
    m = re.match(r"^http://([^:/]+):(\d+)(/.*)?$", url)
    assert m, url
    host, port, path = m.group(1), int(m.group(2)), m.group(3) or "/"
    out: dict[str, list] = {"latency": [], "ok": [], "bad": [], "acked": []}

    async def main() -> float:
        start = time.perf_counter()
        deadline = start + seconds
        await asyncio.gather(*(_worker(host, port, path, c, deadline, app_id, sessions, batch, run_id, out)
                               for c in range(connections)))
        return time.perf_counter() - start

    elapsed = asyncio.run(main())
    lat = sorted(out["latency"]) or [0.0]
    errors: dict[str, int] = {}
    for b in out["bad"]:
        errors[f"HTTP {b}" if isinstance(b, int) else b] = errors.get(f"HTTP {b}" if isinstance(b, int) else b, 0) + 1
    if acks_file:
        acks_file.write_text("".join(i + "\n" for i in out["acked"]))
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    return LoadResult("python", elapsed, len(out["latency"]), len(out["ok"]),
                      sum(1 for b in out["bad"] if isinstance(b, int)), statistics.median(lat) * 1000,
                      p99 * 1000, len(out["acked"]), errors)
