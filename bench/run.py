"""Trailmark's benchmarks: one command, one table, every figure beside a baseline measured in the same run.

    python bench/run.py [--quick] [--only ingest,batched,postgres,convert,timeline,snippet]

Sections (issue "Scale past one machine", Benchmarks; docs/performance.md has the latest figures):
  snippet   loader/shim sizes (bench/snippet_size.py) against their budgets
  ingest    single-event requests: a bare Starlette endpoint (parse the JSON, answer 204; served by uvicorn
            exactly like Trailmark) vs Trailmark's POST /messenger/web/events on SQLite: events/s, p50/p99,
            ratio; then what the store holds (every acknowledged event must be there); peak RSS (VmHWM)
  batched   the same with 10 events per request (the shim batches events fired together)
  postgres  the same two on PostgreSQL (127.0.0.1:5432) with --workers 1 and 2, each on a fresh database
  convert   visitor → lead and visitor → existing user (merge) at 10 vs 100,000 events (in-process store)
  timeline  first timeline page and a filtered contact list at 1,000,000 stored events (in-process store)

The load generator is wrk (installed with apt-get when missing and we are root), one thread, with
bench/wrk_ingest.lua; without wrk a pure-Python asyncio generator (bench/loadgen.py) stands in. Trailmark
and its baselines run side by side and are measured in alternating rounds (the figure is the median), so
drift in the machine's speed hits both; CPU that other processes use meanwhile is measured and printed.
The machine's cores are shared by the generator and the server: the table says how many there are.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import http.client
import importlib.util
import json
import os
import platform
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import loadgen  # noqa: E402  (bench/loadgen.py)

SECTIONS = ["snippet", "ingest", "batched", "postgres", "convert", "timeline"]
ALIASES = {"memory": "ingest", "pg": "postgres", "conversion": "convert", "sizes": "snippet"}
PG_ADMIN_URLS = ["postgresql://postgres@127.0.0.1:5432/postgres", "postgresql://root@127.0.0.1:5432/postgres"]
BATCH = 10


# ------------------------------------------------------------------------------------------ output
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


# ------------------------------------------------------------------------------------------ machine
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


# ------------------------------------------------------------------------------------------ processes
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """A server we start in its own session (so stopping it stops its worker processes too)."""

    def __init__(self, name: str, cmd: list[str], port: int, log_dir: Path, workers: int = 1,
                 env: dict[str, str] | None = None):
        self.name, self.cmd, self.port, self.workers = name, cmd, port, workers
        self.log_path = log_dir / f"{name}.log"
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        with open(self.log_path, "wb") as log:  # the child writes to its own copy of the descriptor
            self.proc = subprocess.Popen(self.cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                         env=self.env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log_path.read_text()[-1500:]}")
            with contextlib.suppress(OSError):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    if self.workers > 1:  # give every worker time to start (they start one by one)
                        time.sleep(1.5)
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer on port {self.port}: {self.log_path.read_text()[-1500:]}")

    def pids(self) -> list[int]:
        """The server process and its descendants (uvicorn's worker processes with --workers N)."""
        assert self.proc
        out, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            out.append(pid)
            with contextlib.suppress(OSError):
                for task in Path(f"/proc/{pid}/task").iterdir():
                    todo += [int(c) for c in (task / "children").read_text().split()]
        return out

    def serving_pids(self) -> list[int]:
        """The processes that serve requests: the workers when uvicorn supervises several, else the one."""
        pids = self.pids()
        if self.workers <= 1:
            return pids[:1]
        workers = []  # uvicorn's worker processes, not its supervisor nor multiprocessing's resource tracker
        for pid in pids[1:]:
            with contextlib.suppress(OSError):
                if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    workers.append(pid)
        return workers or pids[1:]

    def peak_rss_kb(self) -> list[int]:
        out = []
        for pid in self.serving_pids():
            with contextlib.suppress(OSError):
                for ln in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if ln.startswith("VmHWM:"):
                        out.append(int(ln.split()[1]))
        return out

    def cpu_seconds(self) -> float:
        total = 0
        tick = os.sysconf("SC_CLK_TCK")
        for pid in self.pids():
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / tick

    def stop(self) -> None:
        if not self.proc or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def python_cmd() -> list[str]:
    return [sys.executable]


# ------------------------------------------------------------------------------------------ ingest
@dataclass
class Options:
    seconds: float  # one measured round
    rounds: int
    warmup: float
    connections: int
    sessions: int
    loadgen: str  # wrk | python
    wrk: str | None
    wrk_cpu: int | None
    profile: bool
    tmp: Path
    quiet: float = 0.0


@dataclass
class Target:
    """A running server under test and what was measured against it, batch size by batch size."""

    label: str
    server: ServerProcess
    app_id: str = "bench"
    sessions: list[str] = field(default_factory=lambda: ["none"])
    record_acks: bool = False
    count: Callable[[], Awaitable[set[str]]] | None = None
    loads: dict[int, list[loadgen.LoadResult]] = field(default_factory=dict)
    cpu: dict[int, float] = field(default_factory=dict)
    others: list[float] = field(default_factory=list)  # cores used by processes not ours, per round
    acked: set[str] = field(default_factory=set)
    rss_kb: list[int] = field(default_factory=list)
    stored: int | None = None
    lost: int | None = None

    def events_per_s(self, batch: int) -> float:
        return statistics.median(r.rps for r in self.loads[batch]) * batch

    def latency(self, batch: int) -> tuple[float, float]:
        return (statistics.median(r.p50_ms for r in self.loads[batch]),
                statistics.median(r.p99_ms for r in self.loads[batch]))

    def cpu_us_per_event(self, batch: int) -> float:
        events = sum(r.ok for r in self.loads[batch]) * batch
        return self.cpu[batch] / max(1, events) * 1e6

    def spread(self, batch: int) -> str:
        rates = [r.rps * batch for r in self.loads[batch]]
        return f"{min(rates):,.0f}–{max(rates):,.0f}" if len(rates) > 1 else ""


def machine_busy() -> tuple[float, float]:
    """(busy CPU seconds of the whole machine, CPU seconds this script and its waited children used)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    busy = sum(fields) - fields[3] - fields[4]  # all but idle and iowait
    t = os.times()
    return busy / os.sysconf("SC_CLK_TCK"), t.user + t.system + t.children_user + t.children_system


def wait_quiet(limit: float) -> None:
    """Wait (up to ``limit`` seconds) until other processes use less than a quarter of a core: this
    machine may be shared with test runs that would otherwise take the cores the server needs."""
    if limit <= 0:
        return
    deadline, load = time.monotonic() + limit, 0.0
    while time.monotonic() < deadline:
        busy0, own0 = machine_busy()
        time.sleep(1.0)
        busy1, own1 = machine_busy()
        load = (busy1 - busy0) - (own1 - own0)
        if load < 0.25:
            return
        say(f"    waiting for a quieter machine: other processes use {load:.2f} cores")
    NOTES.append(f"waited {limit:.0f} s for a quiet machine; other processes still used {load:.2f} cores")


def post_json(port: int, path: str, body: dict[str, Any]) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", path, json.dumps(body), {"Content-Type": "text/plain;charset=UTF-8"})
    resp = conn.getresponse()
    data = resp.read()
    if resp.status != 200:
        raise RuntimeError(f"POST {path} → {resp.status}: {data[:300]!r}")
    return dict(json.loads(data))


def load_once(opts: Options, target: Target, batch: int, seconds: float, tag: str) -> loadgen.LoadResult:
    url = f"http://127.0.0.1:{target.server.port}/messenger/web/events"
    run = f"{tag}{uuid.uuid4().hex[:8]}"
    acks = opts.tmp / f"{target.label}-{run}.acks" if target.record_acks else None
    if opts.loadgen == "wrk":
        assert opts.wrk
        result = loadgen.run_wrk(opts.wrk, url, app_id=target.app_id, sessions=target.sessions, batch=batch,
                                 seconds=seconds, connections=opts.connections, run_id=run, acks_file=acks,
                                 cpu=opts.wrk_cpu)
    else:
        result = loadgen.run_python(url, app_id=target.app_id, sessions=target.sessions, batch=batch,
                                    seconds=seconds, connections=opts.connections, run_id=run, acks_file=acks)
    if acks and acks.exists():
        target.acked.update(acks.read_text().split())
    if result.errors:
        NOTES.append(f"{target.label}, {batch} event(s)/request: errors during a run: {result.errors}")
    return result


def compare(opts: Options, targets: list[Target], batches: list[int]) -> None:
    """Warm every target up, then measure them in alternation, round by round (this machine's speed
    drifts from minute to minute; alternating keeps the ratio honest)."""
    for batch in batches:
        for t in targets:
            load_once(opts, t, batch, opts.warmup, "w")
            t.loads[batch], t.cpu[batch] = [], 0.0
        for rnd in range(opts.rounds):
            for t in targets:
                profiler = None
                if opts.profile and t.record_acks and batch == 1 and rnd == 0 and t.server.workers == 1:
                    profiler = start_profiler(opts, t.server, t.label)
                cpu0, (busy0, own0), wall0 = t.server.cpu_seconds(), machine_busy(), time.monotonic()
                t.loads[batch].append(load_once(opts, t, batch, opts.seconds, f"r{rnd}-"))
                server_cpu = t.server.cpu_seconds() - cpu0
                (busy1, own1), wall = machine_busy(), time.monotonic() - wall0
                t.cpu[batch] += server_cpu
                t.others.append(max(0.0, (busy1 - busy0) - (own1 - own0) - server_cpu) / wall)
                if profiler:
                    finish_profiler(profiler, t.label)
    for t in targets:
        t.rss_kb = t.server.peak_rss_kb()


def start_bare(opts: Options, workers: int, answer: str = "204") -> Target:
    port = free_port()
    label = f"bare-starlette-w{workers}" + ("" if answer == "204" else f"-{answer}-answer")
    server = ServerProcess(label, [*python_cmd(), str(HERE / "bare_app.py"), "--port", str(port),
                                   "--workers", str(workers), "--answer", answer], port, opts.tmp, workers)
    server.start()
    return Target(label, server)


def start_trailmark(opts: Options, database: str, workers: int,
                    count: Callable[[], Awaitable[set[str]]]) -> Target:
    """Trailmark on a fresh database: a workspace first, then the server, then pings for session tokens."""
    port = free_port()
    label = f"trailmark-{'postgres' if database.startswith('postgres') else 'sqlite'}-w{workers}"
    made = subprocess.run([*python_cmd(), "-m", "trailmark", "workspace", "create", "--name", "Bench", "--json",
                           "--database", database], cwd=ROOT, capture_output=True, text=True)
    if made.returncode != 0:
        raise RuntimeError(f"workspace create failed: {(made.stderr or made.stdout).strip().splitlines()[-1:]}")
    app_id = json.loads(made.stdout)["app_id"]
    server = ServerProcess(label, [*python_cmd(), "-m", "trailmark", "serve", "--database", database,
                                   "--port", str(port), "--log-level", "warning", "--workers", str(workers)],
                           port, opts.tmp, workers)
    server.start()
    try:
        sessions = [post_json(port, "/messenger/web/ping", {"app_id": app_id, "page": "http://site.example/"})["session"]
                    for _ in range(opts.sessions)]
    except Exception:
        server.stop()
        raise
    return Target(label, server, app_id, sessions, True, count)


def verify(target: Target) -> None:
    """After the server stopped: every event it acknowledged must be in the store."""
    if target.count is None:
        return
    stored = asyncio.run(target.count())
    target.stored = len(stored)
    target.lost = len(target.acked - stored)


def sqlite_ids(path: str) -> Callable[[], Awaitable[set[str]]]:
    async def count() -> set[str]:
        db = sqlite3.connect(path)
        try:
            return {k[2:] for (k,) in db.execute("SELECT dedupe_key FROM events")}
        finally:
            db.close()
    return count


def pg_ids(url: str) -> Callable[[], Awaitable[set[str]]]:
    async def count() -> set[str]:
        import asyncpg

        conn = await asyncpg.connect(url)
        try:
            return {r["dedupe_key"][2:] for r in await conn.fetch("SELECT dedupe_key FROM events")}
        finally:
            await conn.close()
    return count


def ingest_rows(section: str, what: str, tm: Target, bare: Target, batch: int) -> None:
    tm_rate, bare_rate = tm.events_per_s(batch), bare.events_per_s(batch)
    spread = f" (rounds {tm.spread(batch)})" if tm.spread(batch) else ""
    add(section, f"{what}: events/s{spread}", num(tm_rate), "bare Starlette, same load: events/s", num(bare_rate),
        tm_rate / bare_rate if bare_rate else None, tm=[r.__dict__ for r in tm.loads[batch]],
        bare=[r.__dict__ for r in bare.loads[batch]])
    (p50, p99), (bp50, bp99) = tm.latency(batch), bare.latency(batch)
    add(section, f"{what}: p50 / p99 latency", f"{ms(p50)} / {ms(p99)}", "bare Starlette",
        f"{ms(bp50)} / {ms(bp99)}", p50 / bp50 if bp50 else None)
    add(section, f"{what}: server CPU per event", f"{tm.cpu_us_per_event(batch):,.0f} µs", "bare Starlette",
        f"{bare.cpu_us_per_event(batch):,.0f} µs", tm.cpu_us_per_event(batch) / max(1e-9, bare.cpu_us_per_event(batch)))


def store_rows(section: str, what: str, tm: Target, bare: Target) -> None:
    if tm.stored is not None:
        in_flight = tm.stored - len(tm.acked)
        verdict = "nothing lost" if tm.lost == 0 else f"LOST {tm.lost}"
        add(section, f"{what}: events in the store afterwards", num(tm.stored),
            "events acknowledged (2xx), warm-ups included", num(len(tm.acked)),
            f"{verdict}; +{in_flight} in flight at stop" if in_flight >= 0 else verdict)
        if tm.lost:
            NOTES.append(f"{tm.label}: {tm.lost} events were acknowledged (2xx, accepted) but are not in the store")
    others = tm.others + bare.others
    if others:
        pg = " (PostgreSQL included)" if "postgres" in tm.label else ""
        add(section, f"{what}: CPU used meanwhile by others{pg}",
            f"median {statistics.median(others):.2f} cores, max {max(others):.2f}", "cores on this machine",
            str(os.cpu_count()), "")
        if max(others) > 0.25 and not pg:
            NOTES.append(f"{what}: other processes on this machine used up to {max(others):.2f} cores during the "
                         "measured rounds: those figures are lower than on a quiet machine")
    add(section, f"{what}: server peak RSS (VmHWM) under the load", " + ".join(mb(k) for k in tm.rss_kb) or "?",
        "bare Starlette", " + ".join(mb(k) for k in bare.rss_kb) or "?",
        sum(tm.rss_kb) / sum(bare.rss_kb) if bare.rss_kb and tm.rss_kb else None)


def run_config(opts: Options, section_of: dict[int, str], what: str, database: str, workers: int,
               count: Callable[[], Awaitable[set[str]]], split: bool = False) -> None:
    """Trailmark and the bare endpoint (and, with ``split``, the bare endpoint giving Trailmark's answer)."""
    wait_quiet(opts.quiet)
    bare = start_bare(opts, workers)
    shaped = start_bare(opts, workers, "trailmark") if split else None
    tm: Target | None = None
    try:
        tm = start_trailmark(opts, database, workers, count)
        compare(opts, [bare] + ([shaped] if shaped else []) + [tm], list(section_of))
    finally:
        for t in (bare, shaped, tm):
            if t:
                t.server.stop()
    verify(tm)
    for batch, section in section_of.items():
        ingest_rows(section, f"{what}, {batch} event{'s' if batch > 1 else ''}/request", tm, bare, batch)
        if shaped:
            rate = shaped.events_per_s(batch)
            add(section, "  the framework alone, giving Trailmark's answer (JSON + CORS): events/s", num(rate),
                "bare Starlette, 204", num(bare.events_per_s(batch)), rate / bare.events_per_s(batch),
                cpu_us=shaped.cpu_us_per_event(batch))
            add(section, "  … its server CPU per event", f"{shaped.cpu_us_per_event(batch):,.0f} µs",
                "bare Starlette, 204", f"{bare.cpu_us_per_event(batch):,.0f} µs",
                shaped.cpu_us_per_event(batch) / max(1e-9, bare.cpu_us_per_event(batch)))
    if len(section_of) > 1:
        one, many = sorted(section_of)
        add(section_of[many], f"{what}: batched ({many}/request) vs single-event, events/s",
            num(tm.events_per_s(many)), "single-event (above)", num(tm.events_per_s(one)),
            tm.events_per_s(many) / tm.events_per_s(one))
    store_rows(section_of[max(section_of)], what, tm, bare)


def section_sqlite_ingest(opts: Options, batches: list[int]) -> None:
    names = {1: "ingest", BATCH: "batched"}
    how = (f"{opts.connections} keep-alive connections, {opts.rounds} × {opts.seconds:.0f} s rounds alternating with "
           "the baselines (figures: medians); one server process (uvicorn, as `trailmark serve`), fresh SQLite file")
    TITLES["ingest"] = f"POST /messenger/web/events, 1 event per request; {how}"
    TITLES["batched"] = f"the same with {BATCH} events per request (as the shim batches events fired together)"
    say(f"\n[{'+'.join(names[b] for b in batches)}] SQLite, {opts.connections} connections, {opts.rounds} × "
        f"{opts.seconds:.0f} s per figure, alternating with the bare endpoint ({opts.loadgen})")
    db = opts.tmp / "ingest.db"
    run_config(opts, {b: names[b] for b in batches}, "SQLite", str(db), 1, sqlite_ids(str(db)), split=True)


async def pg_admin() -> tuple[Any, str] | tuple[None, str]:
    try:
        import asyncpg
    except ImportError:
        return None, "asyncpg is not installed (pip install asyncpg)"
    last = ""
    for url in PG_ADMIN_URLS:
        try:
            return await asyncpg.connect(url, timeout=3), url
        except Exception as exc:  # any failure means "not reachable this way"
            last = f"{type(exc).__name__}: {exc}"
    return None, f"PostgreSQL on 127.0.0.1:5432 unreachable ({last})"


async def pg_admin_run(sql: str) -> str | None:
    conn, why = await pg_admin()
    if conn is None:
        return why
    try:
        await conn.execute(sql)
        return None
    finally:
        await conn.close()


async def pg_version() -> tuple[str | None, str]:
    conn, why = await pg_admin()
    if conn is None:
        return None, why
    try:
        return str(await conn.fetchval("SHOW server_version")), ""
    finally:
        await conn.close()


def section_postgres(opts: Options) -> None:
    say("\n[postgres] ingest on PostgreSQL, --workers 1 and 2, each on a fresh database")
    version, why = asyncio.run(pg_version())
    if version is None:
        add("postgres", "PostgreSQL ingest", f"skipped: {why}")
        return
    TITLES["postgres"] = (f"PostgreSQL {version.split()[0]} on 127.0.0.1:5432 (this machine: it shares the cores), "
                          "a fresh database per worker count, same load and rounds; baseline: the bare endpoint with "
                          "as many uvicorn workers")
    for workers in (1, 2):
        name = f"tm_bench_{uuid.uuid4().hex[:10]}"
        why = asyncio.run(pg_admin_run(f'CREATE DATABASE "{name}"'))
        if why:
            add("postgres", "PostgreSQL ingest", f"skipped: {why}")
            return
        url = f"postgresql://postgres@127.0.0.1:5432/{name}"
        try:
            run_config(opts, {1: "postgres", BATCH: "postgres"},
                       f"PostgreSQL, {workers} worker{'s' if workers > 1 else ''}", url, workers, pg_ids(url))
        except RuntimeError as exc:
            add("postgres", f"PostgreSQL, {workers} worker(s)", f"skipped: {str(exc)[:240]}")
            return
        finally:
            asyncio.run(pg_admin_run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# ------------------------------------------------------------------------------------------ profile
def start_profiler(opts: Options, server: ServerProcess, label: str) -> subprocess.Popen[bytes] | None:
    spy = shutil.which("py-spy")
    if not spy:
        NOTES.append("--profile: py-spy is not installed (pip install py-spy); no profile taken")
        return None
    out = opts.tmp / f"{label}.pyspy.txt"
    return subprocess.Popen([spy, "record", "-p", str(server.serving_pids()[0]),
                             "-d", str(max(1, int(opts.seconds) - 1)),
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


# ------------------------------------------------------------------------------------------ in-process store
def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


async def timed(fn: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    t = time.perf_counter()
    out = await fn()
    return time.perf_counter() - t, out


async def bulk_events(store: Any, ws: Any, contact_id: str, n: int, name_ids: list[int], tag: str) -> None:
    """``n`` events for one contact straight into the events table, in the store's writer (big executemany
    jobs); the aggregates are not maintained (the conversion does not read them)."""
    now = int(time.time())
    rng = random.Random(tag)
    chunk = 50_000
    for start in range(0, n, chunk):
        rows = [(ws.id, contact_id, name_ids[i % len(name_ids)], now - rng.randrange(30 * 86400), now, "visitor",
                 "js", f"b:{tag}:{i}", '{"plan":"pro"}', '{"plan":"string"}')
                for i in range(start, min(n, start + chunk))]

        async def job(conn: Any, rows: list[tuple] = rows) -> None:
            await conn.executemany(
                "INSERT INTO events (workspace_id, contact_id, event_name_id, created_at, received_at, role, "
                "source, dedupe_key, metadata, metadata_types) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

        await store.db.write(job)


async def convert_bench(tmp: Path, big: int, runs: int) -> None:
    from trailmark.store import open_store
    from trailmark.store.models import USER, AppendRequest, NewEvent

    path = tmp / "convert.db"
    store = open_store(str(path))
    await store.open()
    try:
        ws = await store.create_workspace("Bench")
        sizes = (10, big)
        # Visitors: per run and size, one to convert to a lead and one to merge into an existing user.
        visitors: dict[tuple[str, int, int], Any] = {}
        t0 = time.perf_counter()
        for r in range(runs):
            for size in sizes:
                for op in ("lead", "user"):
                    v = await store.create_visitor(ws)
                    first = min(size, 10)  # through the real ingest path: names created, aggregates kept
                    await store.append_events(AppendRequest(ws.id, v.id, "js", [
                        NewEvent(event_name=f"bench-{i % 5}", created_at=int(time.time()) - i,
                                 dedupe_key=f"c:{v.id}:{i}", metadata={"plan": "pro"},
                                 metadata_types={"plan": "string"}) for i in range(first)]))
                    if size > first:
                        names = [n.id for n in await store.event_names(ws)]
                        await bulk_events(store, ws, v.id, size - first, names, f"{v.id}")
                    visitors[(op, size, r)] = v
                await store.create_contact(ws, USER, external_id=f"bench-user-{size}-{r}",
                                           email=f"u{size}-{r}@example.com")
        total = await store.count_events(ws)
        say(f"    loaded {total:,} events for {runs * 4} visitors in {time.perf_counter() - t0:.1f} s")

        lead_t: dict[int, list[float]] = {s: [] for s in sizes}
        user_t: dict[int, list[float]] = {s: [] for s in sizes}
        merged: dict[int, Any] = {}
        for r in range(runs):
            for size in (sizes if r % 2 == 0 else sizes[::-1]):  # alternate the order
                v = visitors[("lead", size, r)]
                dt, lead = await timed(functools.partial(
                    store.convert_to_lead, ws, v.id, email=f"lead-{size}-{r}@example.com", message="Hi",
                    reason="bench", proof="none"))
                assert lead.role == "lead", lead
                lead_t[size].append(dt)
                v2 = visitors[("user", size, r)]
                dt, user = await timed(functools.partial(
                    store.identify_user, ws, v2.id, user_id=f"bench-user-{size}-{r}", email=None, reason="bench",
                    proof="none"))
                assert user.role == "user" and user.id != v2.id, user
                user_t[size].append(dt)
                merged[size] = user
        # The histories are whole: the lead's and the user's timelines hold every event of the visitor.
        for size in sizes:
            summary = await store.event_summary(ws, merged[size])
            held = sum(s["count"] for s in summary)
            if held != size:
                NOTES.append(f"convert: the user merged with a {size}-event visitor shows {held} events")
        small, large = sizes
        TITLES["convert"] = (f"SQLite, in-process store, {total:,} events stored; medians of {runs} runs, each on a "
                             f"fresh visitor; baseline: the same at {small} events")
        add("convert", f"visitor → lead (convert_to_lead), {big:,} events", ms(median_ms(lead_t[large])),
            f"the same at {small} events", ms(median_ms(lead_t[small])),
            median_ms(lead_t[large]) / median_ms(lead_t[small]), runs=runs, lead_ms=[x * 1000 for x in lead_t[large]])
        add("convert", f"visitor → existing user (identify_user merge), {big:,} events", ms(median_ms(user_t[large])),
            f"the same at {small} events", ms(median_ms(user_t[small])),
            median_ms(user_t[large]) / median_ms(user_t[small]))
        # Reading the merged history afterwards: the first timeline page of the user.
        page: dict[int, list[float]] = {s: [] for s in sizes}
        for _ in range(15):
            for size in sizes:
                dt, _events = await timed(functools.partial(store.events_for, ws, merged[size], limit=50))
                page[size].append(dt)
        add("convert", f"first timeline page of that user afterwards, {big:,} events", ms(median_ms(page[large])),
            f"the same at {small} events", ms(median_ms(page[small])), median_ms(page[large]) / median_ms(page[small]))
        summ: dict[int, list[float]] = {s: [] for s in sizes}
        for _ in range(3):
            for size in sizes:
                summ[size].append((await timed(functools.partial(store.event_summary, ws, merged[size])))[0])
        add("convert", f"its recent-events summary (event_summary), {big:,} events", ms(median_ms(summ[large])),
            f"the same at {small} events", ms(median_ms(summ[small])), median_ms(summ[large]) / median_ms(summ[small]))
        if hasattr(store, "admin_merge_history"):  # the admin profile's merge history (admin_reads)
            hist: dict[int, list[float]] = {s: [] for s in sizes}
            for _ in range(5):
                for size in sizes:
                    hist[size].append((await timed(functools.partial(store.admin_merge_history, ws, merged[size])))[0])
            add("convert", f"its merge history (admin_merge_history), {big:,} events", ms(median_ms(hist[large])),
                f"the same at {small} events", ms(median_ms(hist[small])),
                median_ms(hist[large]) / median_ms(hist[small]))
        NOTES.append("convert: the times include the store's write queue and re-reading the contact")
    finally:
        await store.close()


FALLBACK_FILTER_SQL = (
    "SELECT c.id, c.role, c.email, c.last_seen_at FROM contacts c "
    "JOIN (SELECT contact_id FROM events WHERE event_name_id = ? GROUP BY contact_id HAVING COUNT(*) > ?) x "
    "ON x.contact_id = c.id WHERE c.workspace_id = ? AND c.merged_into IS NULL "
    "ORDER BY COALESCE(c.last_seen_at, c.created_at) DESC, c.id DESC LIMIT 50")


@dataclass
class ListQuery:
    label: str
    op: str | None  # an admin_reads EventFilter op, or None for the unfiltered list
    event: str | None = None
    value: int = 0


def list_queries(ds: Any) -> list[ListQuery]:
    import dataset

    return [ListQuery("contact list page 1, no filter", None),
            ListQuery(f"filtered: '{ds.filter_event}' count > 2", "count_gt", ds.filter_event, 2),
            ListQuery(f"filtered: has done '{dataset.EVENT_NAMES[-1]}' (rare)", "done", dataset.EVENT_NAMES[-1]),
            ListQuery(f"filtered: '{ds.filter_event}' > 2 AND last did '{dataset.EVENT_NAMES[1]}' < 7 days ago",
                      "count_gt+last_lt", ds.filter_event, 2)]


def list_calls(store: Any, ws: Any, q: ListQuery, ds: Any) -> list[tuple[Callable[[], Awaitable[Any]], str]]:
    """How to fetch the list, best first: the admin pages' own query (server/store/admin_reads.py) when it
    is there; plain SQL for the one filter that has an obvious SQL equivalent."""
    import dataset

    calls: list[tuple[Callable[[], Awaitable[Any]], str]] = []
    if hasattr(store, "admin_contacts"):
        from trailmark.store.admin_reads import EventFilter

        if q.op is None:
            filters = []
        elif q.op == "count_gt+last_lt":
            filters = [EventFilter("count_gt", q.event, q.value), EventFilter("last_lt", dataset.EVENT_NAMES[1], 7)]
        else:
            filters = [EventFilter(q.op, q.event, q.value)]

        async def admin() -> Any:
            return (await store.admin_contacts(ws, filters=filters, limit=50)).contacts
        calls.append((admin, "admin_reads"))

    async def fallback() -> list[Any]:
        async with store.db.read() as conn:
            return await conn.fetch_all(FALLBACK_FILTER_SQL, (ds.filter_event_id, q.value, ws.id))
    if q.op == "count_gt":
        calls.append((fallback, "plain SQL"))
    return calls


async def timeline_bench(ds: Any, small: Any, reps: int) -> None:
    from trailmark.store import open_store

    async def measure(dataset: Any) -> dict[str, Any]:
        store = open_store(dataset.path)
        await store.open()
        try:
            ws = await store.workspace_by_app_id(dataset.app_id)
            heavy = await store.get_contact(ws, dataset.heavy_contact)
            light = await store.get_contact(ws, dataset.light_contact)
            out: dict[str, Any] = {}
            out["first_call"], page = await timed(lambda: store.events_for(ws, heavy, limit=50))
            assert len(page) == 50
            out["heavy"] = [(await timed(lambda: store.events_for(ws, heavy, limit=50)))[0] for _ in range(reps)]
            out["light"] = [(await timed(lambda: store.events_for(ws, light, limit=50)))[0] for _ in range(reps)]
            before = (page[-1].created_at, page[-1].id)
            out["page2"] = [(await timed(lambda: store.events_for(ws, heavy, limit=50, before=before)))[0]
                            for _ in range(reps)]
            out["summary"] = [(await timed(lambda: store.event_summary(ws, heavy)))[0]
                              for _ in range(max(3, reps // 5))]
            for q in list_queries(ds):
                for fetch, how in list_calls(store, ws, q, dataset):
                    try:
                        _first, rows = await timed(fetch)
                        times = [(await timed(fetch))[0] for _ in range(max(5, reps // 3))]
                    except Exception as exc:  # another engineer's work in progress: report it
                        out[q.label] = (how, None, f"{type(exc).__name__}: {exc}")
                        out.setdefault("failures", []).append(f"{q.label} [{how}]: {type(exc).__name__}: {exc}")
                        continue
                    out[q.label] = (how, times, len(rows))
                    break
            return out
        finally:
            await store.close()

    big = await measure(ds)
    base = await measure(small)
    TITLES["timeline"] = (f"reads at {ds.events:,} stored events, {ds.contacts:,} contacts (SQLite, in-process "
                          f"store); baselines: a small contact, or the same read at {small.events:,} events")
    add("timeline", f"timeline page 1 (events_for, 50) of a contact with {ds.heavy_events:,} events, 2 sources",
        ms(median_ms(big["heavy"])), "the same for a 10-event contact",
        ms(median_ms(big["light"])), median_ms(big["heavy"]) / median_ms(big["light"]),
        first_call_ms=big["first_call"] * 1000)
    add("timeline", "timeline page 2 (keyset, before=…)", ms(median_ms(big["page2"])), "page 1",
        ms(median_ms(big["heavy"])), median_ms(big["page2"]) / median_ms(big["heavy"]))
    add("timeline", f"recent-events summary of that contact (event_summary over {ds.heavy_events:,} events)",
        ms(median_ms(big["summary"])), f"the same at {small.events:,} stored ({small.heavy_events} events)",
        ms(median_ms(base["summary"])), median_ms(big["summary"]) / median_ms(base["summary"]))
    hows = set()
    for q in list_queries(ds):
        if q.label not in big:
            continue
        how, times, rows = big[q.label]
        hows.add(how)
        if times is None:
            add("timeline", f"{q.label} [{how}]", f"FAILED: {rows[:160]}")
            continue
        _b_how, b_times, b_rows = base.get(q.label, (how, None, 0))
        add("timeline", f"{q.label} ({rows} shown) [{how}]", ms(median_ms(times)),
            f"the same at {small.events:,} stored ({b_rows} shown)", ms(median_ms(b_times)) if b_times else "?",
            median_ms(times) / median_ms(b_times) if b_times else None)
    NOTES.append(f"timeline: in-process store on a generated SQLite database ({ds.events:,} events, {ds.contacts:,} "
                 f"contacts, 20 event names; bench/dataset.py, cached in {Path(ds.path).parent}); medians of warm "
                 f"calls; the very first call on a fresh store took {big['first_call'] * 1000:.1f} ms")
    for failure in big.get("failures", []):
        NOTES.append(f"timeline: admin_reads failed, {failure}")
    if "plain SQL" in hows:
        NOTES.append("timeline: server/store/admin_reads.py was missing or failed: the 'count more than' list is "
                     "timed with an equivalent SQL query (contacts who did X more than N times, newest seen "
                     "first), not the admin page's own code")


def section_convert(opts: Options, quick: bool) -> None:
    say("\n[convert] conversion time at 10 vs 100,000 events")
    asyncio.run(convert_bench(opts.tmp, 100_000, 3 if quick else 5))


def section_timeline(opts: Options, quick: bool) -> None:
    say("\n[timeline] first timeline page and a filtered contact list at 1,000,000 stored events")
    import dataset

    ds = dataset.dataset(1_000_000, 100_000, log=say)
    small = dataset.dataset(10_000, 1_000, log=say)
    asyncio.run(timeline_bench(ds, small, 10 if quick else 30))


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


# ------------------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 s load runs, fewer repetitions")
    parser.add_argument("--only", help=f"comma-separated sections: {','.join(SECTIONS)}")
    parser.add_argument("--seconds", type=float, help="length of one measured load round (default 4, --quick 3)")
    parser.add_argument("--rounds", type=int, help="measured rounds per figure, alternating Trailmark and the "
                        "bare endpoint; the figure is the median (default 3, --quick 1)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent keep-alive connections (32)")
    parser.add_argument("--sessions", type=int, default=32, help="visitors (session tokens) the load rotates over")
    parser.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--pin", choices=["wrk", "none"], default="wrk",
                        help="wrk: pin the generator to the last core (taskset); none: let the scheduler place it")
    parser.add_argument("--profile", action="store_true", help="py-spy profile of Trailmark during the SQLite "
                        "single-event run, summarised under the table")
    parser.add_argument("--wait-quiet", type=float, help="before each ingest configuration, wait up to this many "
                        "seconds for other processes to go below 0.25 cores (default 60, --quick 0)")
    parser.add_argument("--json", help="also write the rows as JSON to this file")
    args = parser.parse_args(argv)

    only = SECTIONS if not args.only else [ALIASES.get(s.strip(), s.strip()) for s in args.only.split(",")]
    unknown = set(only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {SECTIONS}")
    seconds = args.seconds or (3.0 if args.quick else 4.0)
    rounds = args.rounds or (1 if args.quick else 3)
    started = time.monotonic()

    machine = machine_info()
    tool, wrk, why = args.loadgen, None, ""
    if tool in ("auto", "wrk") and {"ingest", "batched", "postgres"} & set(only):
        wrk, why = loadgen.ensure_wrk(install=True)
        if wrk:
            tool = "wrk"
        elif tool == "wrk":
            parser.error(why)
        else:
            tool = "python"
            NOTES.append(f"load generator: {why}; using the pure-Python fallback (bench/loadgen.py), which needs "
                         "far more CPU per request than wrk and so lowers every ingest figure")
    elif tool == "auto":
        tool = "python"
    cores = os.cpu_count() or 1
    wrk_cpu = cores - 1 if args.pin == "wrk" and tool == "wrk" and cores > 1 and shutil.which("taskset") else None
    if {"ingest", "batched", "postgres"} & set(only):
        gen = f"wrk -t1 -c{args.connections}" + (f", pinned to CPU {wrk_cpu}" if wrk_cpu is not None else "") \
            if tool == "wrk" else f"Python asyncio generator, {args.connections} connections"
        NOTES.append(f"load generator: {gen}; this machine has {cores} cores, so the generator competes with the "
                     "server (and, for PostgreSQL, with the database) for them: figures are lower than on a machine "
                     "where the load comes from elsewhere")
        machine["load"] = gen

    with tempfile.TemporaryDirectory(prefix="trailmark-bench-") as tmpdir:
        opts = Options(seconds, rounds, 1.0 if args.quick else 2.0, args.connections, args.sessions, tool, wrk,
                       wrk_cpu, args.profile, Path(tmpdir),
                       args.wait_quiet if args.wait_quiet is not None else 0.0 if args.quick else 60.0)
        for section in SECTIONS:
            if section not in only or (section == "batched" and "ingest" in only):
                continue  # ingest and batched share their servers when both run
            try:
                if section == "snippet":
                    section_snippet()
                elif section in ("ingest", "batched"):
                    section_sqlite_ingest(opts, [b for s, b in (("ingest", 1), ("batched", BATCH)) if s in only])
                elif section == "postgres":
                    section_postgres(opts)
                elif section == "convert":
                    section_convert(opts, args.quick)
                elif section == "timeline":
                    section_timeline(opts, args.quick)
            except Exception as exc:  # one broken section must not hide the others' figures
                import traceback

                traceback.print_exc()
                add(section, f"{section}", f"FAILED: {type(exc).__name__}: {str(exc)[:300]}")
    NOTES.append(f"whole run: {time.monotonic() - started:.0f} s; command: python bench/run.py "
                 + " ".join(argv if argv is not None else sys.argv[1:]))
    print_table(machine)
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine, "rows": [r.__dict__ for r in ROWS],
                                               "notes": NOTES}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
