"""Ingest (sections ``ingest`` and ``batched``): real server subprocesses under wrk (or bench/loadgen.py), Trailmark's
POST /messenger/web/events against a bare Starlette endpoint served the same way, measured in alternating rounds;
then every acknowledged event must be in the store. The PostgreSQL section runs the same configurations."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import secrets
import sqlite3
import statistics
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import loadgen
from processes import HERE, ROOT, ServerProcess, free_port, python_cmd
from pyspy_profile import finish_profiler, start_profiler
from report import NOTES, TITLES, add, mb, ms, num, say

BATCH = 10


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
    baseline_python: str | None = None  # another checkout's interpreter: its Trailmark measured alongside


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
                    profiler = start_profiler(opts.tmp, opts.seconds, t.server, t.label)
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
                    count: Callable[[], Awaitable[set[str]]], python: str | None = None) -> Target:
    """Trailmark on a fresh database: a workspace first, then the server, then pings for session tokens.
    ``python``: another interpreter, whose installed ``trailmark`` (another checkout's code) is served instead."""
    port = free_port()
    label = f"trailmark-{'postgres' if database.startswith('postgres') else 'sqlite'}-w{workers}"
    label += "-baseline-code" if python else ""
    cmd = [python] if python else python_cmd()
    made = subprocess.run([*cmd, "-m", "trailmark", "workspace", "create", "--name", "Bench", "--json",
                           "--database", database], cwd=ROOT, capture_output=True, text=True)
    if made.returncode != 0:
        raise RuntimeError(f"workspace create failed: {(made.stderr or made.stdout).strip().splitlines()[-1:]}")
    app_id = json.loads(made.stdout)["app_id"]
    # Several worker processes must sign admin sessions with one key (`trailmark serve` refuses otherwise).
    env = {**os.environ, "TRAILMARK_SECRET_KEY": secrets.token_urlsafe(32)} if workers > 1 else None
    server = ServerProcess(label, [*cmd, "-m", "trailmark", "serve", "--database", database,
                                   "--port", str(port), "--log-level", "warning", "--workers", str(workers)],
                           port, opts.tmp, workers, env)
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


def baseline_rows(section: str, what: str, tm: Target, old: Target, bare: Target, batch: int) -> None:
    """This code against the baseline code (``--baseline-python``), measured in the same alternating rounds."""
    old_rate, bare_rate = old.events_per_s(batch), bare.events_per_s(batch)
    add(section, f"{what}, the baseline code: events/s", num(old_rate), "bare Starlette, same load: events/s",
        num(bare_rate), old_rate / bare_rate if bare_rate else None)
    add(section, f"{what}, the baseline code: server CPU per event", f"{old.cpu_us_per_event(batch):,.0f} µs",
        "bare Starlette", f"{bare.cpu_us_per_event(batch):,.0f} µs",
        old.cpu_us_per_event(batch) / max(1e-9, bare.cpu_us_per_event(batch)))
    add(section, f"{what}: events/s, this code vs the baseline code", num(tm.events_per_s(batch)),
        "the baseline code", num(old_rate), tm.events_per_s(batch) / old_rate if old_rate else None)
    if old.lost:
        NOTES.append(f"{old.label}: {old.lost} events were acknowledged but are not in its store")


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
               count: Callable[[], Awaitable[set[str]]], split: bool = False,
               baseline_database: tuple[str, Callable[[], Awaitable[set[str]]]] | None = None) -> None:
    """Trailmark and the bare endpoint (and, with ``split``, the bare endpoint giving Trailmark's answer; with
    ``opts.baseline_python`` and ``baseline_database``, the baseline code's Trailmark on its own database)."""
    wait_quiet(opts.quiet)
    bare = start_bare(opts, workers)
    shaped = start_bare(opts, workers, "trailmark") if split else None
    tm: Target | None = None
    old: Target | None = None
    try:
        tm = start_trailmark(opts, database, workers, count)
        if opts.baseline_python and baseline_database:
            old = start_trailmark(opts, baseline_database[0], workers, baseline_database[1], opts.baseline_python)
        compare(opts, [bare] + ([shaped] if shaped else []) + [tm] + ([old] if old else []), list(section_of))
    finally:
        for t in (bare, shaped, tm, old):
            if t:
                t.server.stop()
    verify(tm)
    if old:
        verify(old)
        for batch, section in section_of.items():
            baseline_rows(section, f"{what}, {batch} event{'s' if batch > 1 else ''}/request", tm, old, bare, batch)
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
    old_db = str(opts.tmp / "ingest-baseline-code.db")
    run_config(opts, {b: names[b] for b in batches}, "SQLite", str(db), 1, sqlite_ids(str(db)), split=True,
               baseline_database=(old_db, sqlite_ids(old_db)))
