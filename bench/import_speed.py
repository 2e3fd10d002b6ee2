"""How fast ``trailmark import`` stores historical events, into SQLite or PostgreSQL (the issue's aims:
≥ 50,000 events/s into a fresh SQLite file, ≥ 100,000 into PostgreSQL).

    python bench/import_speed.py [--rows 100000] [--contacts 5000] [--rounds 3] [--baseline HEAD] [--baseline REF:all]
        [--postgres postgresql://postgres@127.0.0.1:5432/postgres]

Generates one 100,000-row history (~5,000 users, a dozen event names, metadata of every type: strings,
numbers, dates, links, images, Stripe ids, rich links, monetary amounts; a few bad rows) as JSONL and as
CSV in a temporary directory, then for each round and each format imports it into a fresh SQLite file
through the real CLI (`trailmark workspace create`, then `trailmark import FILE --json`, progress bar on),
each in its own process, and a second time into the same file (the idempotent re-run: everything is a
duplicate). Figures: the importer's own events/s (rows / seconds, from the summary) and the wall time of the
whole command (process start, store open, import, close). Medians over the rounds.

``--baseline REF`` (repeatable) also measures a copy of this working tree whose importer files
(``--baseline-files``: server/importer.py, server/metadata.py, server/cli.py, server/store/sources_store.py)
are taken from git ``REF``; ``--baseline REF:all`` takes the whole ``server`` package from ``REF`` (say, a
commit before the store's writer changed). Before/after figures from the same run of the machine,
alternating round by round.

``--postgres URL`` imports into PostgreSQL instead: each round and format gets a fresh database (made through
the server at URL, dropped afterwards) in place of the fresh SQLite file.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DAY = 86400
NAMES = ["page-viewed", "signed-in", "invited-friend", "created-project", "paid", "upgraded", "downgraded",
         "exported-report", "opened-article", "uploaded-file", "commented", "shared-link"]
PLANS = ["free", "starter", "pro", "enterprise"]


def make_rows(n: int, contacts: int, seed: int = 7) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    base = int(time.time()) - 400 * DAY
    rows: list[dict[str, Any]] = []
    for i in range(n):
        user = rnd.randrange(contacts)
        name = NAMES[rnd.randrange(len(NAMES))]
        # distinct seconds per row, so no two rows share (contact, name, created_at)
        created = base + i * 300 + rnd.randrange(300)
        md: dict[str, Any] = {"plan": PLANS[user % 4], "seats": rnd.randrange(1, 200)}
        kind = i % 6
        if kind == 0:
            md["url"] = f"https://app.example.com/projects/{rnd.randrange(10**6)}?tab=activity"
        elif kind == 1:
            md["avatar"] = f"https://cdn.example.com/img/{rnd.randrange(10**6)}.png"
        elif kind == 2:
            md["invoice"] = f"in_{rnd.randrange(16**12):012x}"
            md["amount"] = {"amount": rnd.randrange(100, 100_000), "currency": "usd"}
        elif kind == 3:
            md["article"] = {"url": f"https://help.example.com/a/{rnd.randrange(1000)}", "value": "Getting started"}
        elif kind == 4:
            md["renewal_at"] = created + 30 * DAY
            md["ratio"] = round(rnd.random(), 4)
        else:
            md["comment"] = "looks good to me " * rnd.randrange(1, 4)
        row: dict[str, Any] = {"event_name": name, "user_id": f"user-{user}", "metadata": md,
                               "created_at": created}
        if i % 10 == 5:  # some ISO-8601 dates
            row["created_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created))
        rows.append(row)
    # a few bad rows (rejected with a reason), spread through the file
    for j, bad in enumerate([{"event_name": "x", "created_at": base},  # no identifier
                             {"user_id": "user-1", "created_at": base},  # no event name
                             {"event_name": "x", "user_id": "user-1", "created_at": "yesterday"},
                             {"event_name": "x", "user_id": "user-1", "created_at": base * 1000}]):
        rows[(j + 1) * n // 5 - 1] = bad
    return rows


def write_files(rows: list[dict[str, Any]], folder: Path) -> tuple[Path, Path]:
    jsonl, csv_path = folder / "history.jsonl", folder / "history.csv"
    with jsonl.open("w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    keys: list[str] = []
    for row in rows:
        for k in row.get("metadata", {}):
            if k not in keys:
                keys.append(k)
    with csv_path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["event_name", "created_at", "user_id", *keys])
        for row in rows:
            md = row.get("metadata", {})
            cells = [json.dumps(v) if isinstance(v, dict) else ("" if v is None else str(v))
                     for v in (md.get(k) for k in keys)]
            w.writerow([row.get("event_name", ""), row.get("created_at", ""), row.get("user_id", ""), *cells])
    return jsonl, csv_path


def child(tree: str, db: str, path: str, first: str) -> None:
    """In a fresh process: the CLI exactly as an operator runs it (in-process, to read its summary)."""
    sys.path.insert(0, tree)
    # The tree holds a copy of server/ (current or a baseline ref), imported under that folder's name.
    from server import cli  # type: ignore[import-not-found]

    out: dict[str, Any] = {}
    if first == "first":
        with contextlib.redirect_stdout(io.StringIO()):
            cli.main(["workspace", "create", "--name", "Bench", "--database", db, "--json"])
    buf = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(buf), open(os.devnull, "w") as null, contextlib.redirect_stderr(null):
        cli.main(["import", path, "--database", db, "--json"])  # progress bar on (to /dev/null)
    out["wall"] = time.perf_counter() - started
    out["summary"] = json.loads(buf.getvalue())
    print(json.dumps(out))


def run_child(tree: Path, db: str, path: Path, phase: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", str(tree), db, str(path), phase],
                          capture_output=True, text=True, check=False, cwd=str(tree))
    if proc.returncode != 0:
        raise SystemExit(f"import failed ({tree}):\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def baseline_tree(spec: str, files: list[str], folder: Path) -> Path:
    ref, _, scope = spec.partition(":")
    tree = folder / f"baseline-{spec.replace('/', '_').replace(':', '_')}"
    if scope == "all":
        tree.mkdir()
        archive = subprocess.run(["git", "archive", ref, "server"], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
        return tree
    shutil.copytree(ROOT / "server", tree / "server", ignore=shutil.ignore_patterns("__pycache__"))
    for name in files:
        text = subprocess.run(["git", "show", f"{ref}:{name}"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout
        (tree / name).write_text(text)
    return tree


def _admin(url: str, sql: str) -> None:
    import asyncio

    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def fresh_postgres(url: str, name: str) -> str:
    """An empty database ``name`` on the server at ``url`` (dropped first if a previous run left it)."""
    _admin(url, f"DROP DATABASE IF EXISTS {name}")
    _admin(url, f"CREATE DATABASE {name}")
    return url.rsplit("/", 1)[0] + "/" + name


def drop_postgres(url: str) -> None:
    server, name = url.rsplit("/", 1)
    _admin(server + "/postgres", f"DROP DATABASE IF EXISTS {name}")


def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "--child":
        child(*sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--contacts", type=int, default=5_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--formats", default="jsonl,csv")
    ap.add_argument("--postgres", metavar="URL", help="import into fresh PostgreSQL databases made through this server")
    ap.add_argument("--baseline", action="append", default=[],
                    help="also measure the importer files at this git ref (REF:all: the whole server package)")
    ap.add_argument("--baseline-files",
                    default="server/importer.py,server/metadata.py,server/cli.py,server/store/sources_store.py")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="tm-import-bench-") as tmp:
        folder = Path(tmp)
        rows = make_rows(args.rows, args.contacts)
        jsonl, csv_path = write_files(rows, folder)
        files = {"jsonl": jsonl, "csv": csv_path}
        trees = {f"baseline {spec}": baseline_tree(spec, args.baseline_files.split(","), folder)
                 for spec in args.baseline}
        trees["current"] = ROOT
        print(f"into {'PostgreSQL' if args.postgres else 'SQLite'}: "
              f"{args.rows:,} rows, {args.contacts:,} users, files: JSONL {jsonl.stat().st_size / 1e6:.1f} MB, "
              f"CSV {csv_path.stat().st_size / 1e6:.1f} MB; {os.cpu_count()} cores; load "
              f"{os.getloadavg()[0]:.2f}", flush=True)
        results: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
        expected: dict[str, tuple[int, int]] = {}
        for rnd in range(args.rounds):
            for label, tree in trees.items():
                for fmt in args.formats.split(","):
                    db = (fresh_postgres(args.postgres, f"tm_import_bench_{os.getpid()}") if args.postgres
                          else str(folder / f"r{rnd}-{fmt}-{abs(hash(label))}.db"))
                    for phase in ("first", "re-run"):
                        res = run_child(tree, db, files[fmt], phase)
                        s = res["summary"]
                        key = (label, fmt, phase)
                        results.setdefault(key, []).append((s["events_per_second"], res["wall"]))
                        got = (s["accepted"], s["duplicate"]) if phase == "first" else (s["duplicate"], s["accepted"])
                        want = expected.setdefault(f"{fmt}-{phase}", got)
                        if got != want or (phase == "re-run" and s["accepted"]):
                            raise SystemExit(f"{label} {fmt} {phase}: counts differ: {s}")
                        print(f"  round {rnd + 1} {label:>22} {fmt:>5} {phase:>6}: {s['events_per_second']:>7,} "
                              f"events/s (import {s['seconds']:.2f} s, command {res['wall']:.2f} s; "
                              f"{s['accepted']} accepted, {s['duplicate']} duplicate, {s['rejected']} rejected)",
                              flush=True)
                    if args.postgres:
                        drop_postgres(db)
                    else:
                        os.unlink(db)
        print("\nmedians:")
        print(f"{'code':>22} {'format':>6} {'run':>6} {'events/s':>10} {'command s':>10}   all rounds (events/s)")
        for (label, fmt, phase), figures in results.items():
            rates = [r for r, _ in figures]
            print(f"{label:>22} {fmt:>6} {phase:>6} {statistics.median(rates):>10,.0f} "
                  f"{statistics.median(w for _, w in figures):>10.2f}   {', '.join(f'{r:,.0f}' for r in rates)}")


if __name__ == "__main__":
    main()
