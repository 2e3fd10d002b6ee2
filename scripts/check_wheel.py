"""Build the wheel, install it into a fresh virtual environment outside the checkout, and prove it serves.

Run by .ci/run. Checks: ``trailmark --version``; ``import trailmark`` works and ``import server`` does not;
``trailmark serve`` from the installed package answers ``/widget/{app_id}`` with the shim and
``/admin/login`` with the sign-in page. Exits non-zero, saying what failed, otherwise.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str | Path, cwd: Path, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, check=True, text=True, capture_output=True, **kw)  # type: ignore[call-overload,no-any-return]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fetch(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.headers.get("content-type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("content-type", ""), e.read()


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="trailmark-wheel-") as tmp_name:
        tmp = Path(tmp_name)
        run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", tmp / "dist",
            ROOT, cwd=tmp)
        [wheel] = list((tmp / "dist").glob("trailmark-*.whl"))
        run(sys.executable, "-m", "venv", tmp / "venv", cwd=tmp)
        bin_dir = tmp / "venv" / "bin"
        run(bin_dir / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check", wheel, cwd=tmp)
        version = run(bin_dir / "trailmark", "--version", cwd=tmp).stdout.strip()
        print(f"installed {wheel.name}: {version}")
        run(bin_dir / "python", "-c", "import trailmark", cwd=tmp)
        no_server = subprocess.run([bin_dir / "python", "-c", "import server"], cwd=tmp, capture_output=True)
        if no_server.returncode == 0:
            print("FAIL: the wheel installs a top-level `server` package", file=sys.stderr)
            return 1
        db = tmp / "wheel.db"
        made = json.loads(run(bin_dir / "trailmark", "workspace", "create", "--name", "Wheel", "--json",
                              "--database", db, cwd=tmp).stdout)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TRAILMARK_DATABASE_URL")}
        with open(tmp / "serve.log", "w") as log:  # the server writes to its own copy of the descriptor
            proc = subprocess.Popen([bin_dir / "trailmark", "serve", "--port", str(port), "--database", db,
                                     "--log-level", "warning"], cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    if fetch(base + "/health")[0] == 200:
                        break
                except OSError:
                    pass
                if proc.poll() is not None:
                    break
                time.sleep(0.1)
            checks = [
                (f"/widget/{made['app_id']}", "javascript", b"Intercom"),
                ("/admin/login", "text/html", b"Sign in"),
            ]
            failed = False
            for path, kind, needle in checks:
                try:
                    status, ctype, body = fetch(base + path)
                except OSError as exc:
                    status, ctype, body = 0, "", str(exc).encode()
                ok = status == 200 and kind in ctype and needle in body
                print(f"{'ok  ' if ok else 'FAIL'} GET {path}: {status} {ctype} {len(body)} B")
                failed |= not ok
        finally:
            proc.terminate()
            proc.wait(10)
        if failed:
            print((tmp / "serve.log").read_text(), file=sys.stderr)
            return 1
    print("the wheel installs as `trailmark` and serves the snippet and the admin")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
