"""Server processes a benchmark starts and measures: free ports, start-and-wait-for-health, the process tree's
CPU seconds and peak RSS, and a stop that takes uvicorn's worker processes with it."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


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
