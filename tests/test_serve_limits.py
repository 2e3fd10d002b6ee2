"""``trailmark serve`` as operators run it (a subprocess on a free 127.0.0.1 port, SQLite): late request bodies
get 408 and a closed connection, and client addresses come from X-Forwarded-For only for trusted proxies."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow  # every test starts `trailmark serve` processes and waits out their timeouts


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(tmp_path: Path, *flags: str) -> Iterator[tuple[int, str]]:
    """``(port, app_id)`` of a running ``trailmark serve``; stopped afterwards."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    db = tmp_path / "t.db"
    made = subprocess.run([sys.executable, "-m", "trailmark", "workspace", "create", "--json", "--database", str(db)],
                          cwd=ROOT, capture_output=True, text=True, check=True)
    app_id = json.loads(made.stdout)["app_id"]
    port = free_port()
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "trailmark", "serve", "--port", str(port), "--database", str(db),
                             "--log-level", "warning", *flags], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        yield port, app_id
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def half_sent(port: int, path: str, wait: float) -> tuple[bytes, float]:
    """Send headers promising 1000 bytes, then 10 of them, and stop: what the server answers, and when."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n"
                  "Content-Length: 1000\r\n\r\n".encode() + b'{"app_id":')
        start = time.monotonic()
        answer = b""
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while chunk := s.recv(4096):
                answer += chunk
        return answer, time.monotonic() - start


def test_a_half_sent_body_gets_408_and_the_connection_closes(tmp_path: Path) -> None:
    """Trust finding: 400 half-sent bodies stayed open. Now a late body is answered 408 (Intercom's error shape)
    and the connection closed, within the configured timeout."""
    with serve(tmp_path, "--body-timeout", "1") as (port, _):
        for path in ("/messenger/web/events", "/v1/batch"):
            answer, took = half_sent(port, path, wait=8)
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 408"), answer
            assert b"connection: close" in head.lower()
            assert json.loads(body)["errors"][0]["code"] == "request_timeout"
            assert 0.9 <= took < 4, took  # answered after ~1 s, and the server closed (recv returned b"")


def test_a_request_whose_headers_trickle_in_is_closed(tmp_path: Path) -> None:
    """Trust finding: connections with slow headers stayed open. uvicorn cannot answer a request before its
    headers are complete, so the connection is closed once they are late (and a silent new connection too)."""
    with serve(tmp_path, "--header-timeout", "1") as (port, _):
        for opening in (b"POST /messenger/web/ping HTTP/1.1\r\nHost: 127.0.0.1\r\n", b""):
            with socket.create_connection(("127.0.0.1", port), timeout=8) as s:
                s.sendall(opening)
                start = time.monotonic()
                with contextlib.suppress(ConnectionResetError):
                    assert s.recv(4096) == b""  # closed by the server, nothing answered
                took = time.monotonic() - start
            assert 0.5 <= took < 5, took
        # A prompt request on the same server is served as usual.
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200


def test_client_addresses_come_from_x_forwarded_for_only_for_trusted_proxies(tmp_path: Path) -> None:
    def pings(port: int, app_id: str, forwarded: list[str]) -> list[int]:
        return [httpx.post(f"http://127.0.0.1:{port}/messenger/web/ping", content=json.dumps({"app_id": app_id}),
                           headers={"X-Forwarded-For": f}, timeout=5).status_code for f in forwarded]

    clients = ["203.0.113.1", "203.0.113.1", "203.0.113.2", "203.0.113.2"]
    with serve(tmp_path / "trusted", "--new-visitors-per-minute", "2", "--forwarded-allow-ips", "127.0.0.1") as srv:
        assert pings(*srv, clients) == [200, 200, 200, 200]  # two clients behind the proxy, two each
    with serve(tmp_path / "untrusted", "--new-visitors-per-minute", "2", "--forwarded-allow-ips", "10.9.9.9") as srv:
        assert pings(*srv, clients) == [200, 200, 429, 429]  # the header is ignored: one address
