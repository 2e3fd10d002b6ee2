"""Trailmark's benchmarks: one command, one table, every figure beside a baseline measured in the same run.

    python bench/run.py [--quick] [--only ingest,batched,costs,postgres,convert,timeline,snippet]

Sections (issue "Scale past one machine", Benchmarks; docs/performance.md has the latest figures):
  snippet   loader/shim sizes (bench/snippet_size.py) against their budgets
  ingest    single-event requests: a bare Starlette endpoint (parse the JSON, answer 204; served by uvicorn
            exactly like Trailmark) vs Trailmark's POST /messenger/web/events on SQLite: events/s, p50/p99,
            ratio; then what the store holds (every acknowledged event must be there); peak RSS (VmHWM)
  batched   the same with 10 events per request (the shim batches events fired together)
  costs     where an event's server time goes, in-process (bench/ingest_costs.py): µs per event for parsing,
            validation, identity, answer, hand-off to the writer, the writer's transaction, and the rest
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
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

# One module per section (bench/section_*.py); the table and its helpers in bench/report.py.
import loadgen  # noqa: E402  (bench/loadgen.py)
from report import NOTES, ROWS, add, machine_info, print_table  # noqa: E402
from section_convert import section_convert  # noqa: E402
from section_costs import section_costs  # noqa: E402
from section_ingest import BATCH, Options, section_sqlite_ingest  # noqa: E402
from section_postgres import section_postgres  # noqa: E402
from section_snippet import section_snippet  # noqa: E402
from section_timeline import section_timeline  # noqa: E402

SECTIONS = ["snippet", "ingest", "batched", "costs", "postgres", "convert", "timeline"]
ALIASES = {"memory": "ingest", "pg": "postgres", "conversion": "convert", "sizes": "snippet"}


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
    parser.add_argument("--baseline-python", help="the ingest sections also serve, in the same alternating rounds, "
                        "the trailmark installed for this interpreter (say, a venv with an older commit installed "
                        "editable): before/after figures from one run")
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
                       args.wait_quiet if args.wait_quiet is not None else 0.0 if args.quick else 60.0,
                       args.baseline_python)
        for section in SECTIONS:
            if section not in only or (section == "batched" and "ingest" in only):
                continue  # ingest and batched share their servers when both run
            try:
                if section == "snippet":
                    section_snippet()
                elif section in ("ingest", "batched"):
                    section_sqlite_ingest(opts, [b for s, b in (("ingest", 1), ("batched", BATCH)) if s in only])
                elif section == "costs":
                    section_costs(args.quick)
                elif section == "postgres":
                    section_postgres(opts)
                elif section == "convert":
                    section_convert(opts.tmp, args.quick)
                elif section == "timeline":
                    section_timeline(args.quick)
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
