"""Real-browser fixtures: the real Trailmark server (``python -m trailmark serve``) and the demo site,
each a subprocess on its own free port on 127.0.0.1, and Debian's Chromium driven by Playwright.

- ``stack``: one server + demo site for the session; every test gets a fresh browser context, so a fresh
  visitor. ``browser``: one Chromium per test module. ``make_stack()`` starts a private pair, for a test that
  stops its server.
- ``watched(context)``: a page that records every request (at teardown all must have gone to 127.0.0.1:
  nothing is loaded from the internet), every uncaught exception and every ``console.error``.
- Screenshots go to ``test-output/`` (gitignored).

Chromium: ``TRAILMARK_CHROMIUM`` or ``/usr/bin/chromium`` (Debian's package; Playwright's own browser
download is not used). Without it, every browser test is skipped with the reason.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "test-output"
CHROMIUM = os.environ.get("TRAILMARK_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
LOCAL_SCHEMES = ("data:", "about:", "blob:")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.1, what: str = "",
               page: Any = None) -> Any:
    """Poll ``check`` until it returns something truthy; its last value, or an AssertionError on timeout.

    Playwright's sync API runs route handlers and event listeners only while the test is inside one of its
    calls: pass ``page`` when the awaited thing needs them (the wait then sleeps in ``page.wait_for_timeout``).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or check}: last value {value!r}")
        if page is not None:
            page.wait_for_timeout(interval * 1000)
        else:
            time.sleep(interval)


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 20.0) -> None:
    def up() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}:\n{log.read_text()}")
        try:
            return httpx.get(url, timeout=1).status_code < 500
        except httpx.TransportError:
            return False

    wait_until(up, timeout, what=url)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Trailmark:
    """The real server in a subprocess, and a REST client with the workspace's access token."""

    url: str
    app_id: str
    access_token: str
    database: Path
    proc: subprocess.Popen[bytes]
    log: Path
    identity_secret: str

    def stop(self) -> None:
        _stop(self.proc)

    def rest(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.access_token}", "Accept": "application/json"}
        return httpx.request(method, self.url + path, headers=headers, timeout=10, **kwargs)

    def events(self, **ident: str) -> list[dict[str, Any]]:
        """The contact's events through ``GET /events?type=user&...`` (every page; 404 reads as none)."""
        r = self.rest("GET", "/events", params={"type": "user", "per_page": 100, **ident})
        if r.status_code == 404:
            return []
        assert r.status_code == 200, r.text
        body = r.json()
        events: list[dict[str, Any]] = body["events"]
        while body["pages"].get("next"):
            body = httpx.get(body["pages"]["next"], headers={"Authorization": f"Bearer {self.access_token}"},
                             timeout=10).json()
            events += body["events"]
        return events

    def event_names(self, **ident: str) -> list[str]:
        return sorted(e["event_name"] for e in self.events(**ident))

    def wait_for_events(self, names: list[str], timeout: float = 10.0, page: Any = None,
                        **ident: str) -> list[dict[str, Any]]:
        """Wait until the contact has (at least) these events, each as often as listed; return them all."""
        def enough() -> list[dict[str, Any]] | None:
            events = self.events(**ident)
            got = [e["event_name"] for e in events]
            return events if all(got.count(n) >= names.count(n) for n in set(names)) else None

        return wait_until(enough, timeout, what=f"events {names} for {ident}", page=page)


@dataclass
class Stack:
    server: Trailmark
    demo_url: str
    demo_proc: subprocess.Popen[bytes]

    def page_url(self, name: str = "index.html") -> str:
        return f"{self.demo_url}/{name}"

    @property
    def id_cookie(self) -> str:
        return f"intercom-id-{self.server.app_id}"

    @property
    def session_cookie(self) -> str:
        return f"intercom-session-{self.server.app_id}"

    def stop(self) -> None:
        _stop(self.demo_proc)
        self.server.stop()


def start_trailmark(directory: Path, *create_args: str) -> Trailmark:
    """Create a workspace through the CLI (``create_args``: more flags for ``workspace create``), then
    ``python -m trailmark serve`` on a free port."""
    directory.mkdir(parents=True, exist_ok=True)
    db = directory / "t.db"
    created = subprocess.run([sys.executable, "-m", "trailmark", "workspace", "create", "--json", "--name", "Pebble",
                              "--database", str(db), *create_args], cwd=ROOT, capture_output=True, text=True,
                             check=True)
    ws = json.loads(created.stdout)
    port = free_port()
    url, proc, log = _spawn([sys.executable, "-m", "trailmark", "serve", "--host", "127.0.0.1", "--port", str(port),
                             "--database", str(db), "--log-level", "warning"],
                            port, directory / "server.log", "/health")
    return Trailmark(url, ws["app_id"], ws["access_token"], db, proc, log, ws["identity_secret"])


def _spawn(args: list[str], port: int, log: Path, ready_path: str) -> tuple[str, subprocess.Popen[bytes], Path]:
    """Start a server process (output to ``log``) and wait until ``ready_path`` answers; stopped if it never does."""
    with log.open("wb") as out:
        proc = subprocess.Popen(args, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(url + ready_path, proc, log)
    except BaseException:
        _stop(proc)
        raise
    return url, proc, log


DEMO_CODE = ("import sys, uvicorn\nfrom trailmark.demo import create_demo_app\n"
             "uvicorn.run(create_demo_app(sys.argv[1], sys.argv[2], sys.argv[4]), host='127.0.0.1', "
             "port=int(sys.argv[3]), log_level='warning')\n")


def start_stack(directory: Path, *create_args: str) -> Stack:
    server = start_trailmark(directory, *create_args)
    port = free_port()
    try:
        demo_url, proc, _ = _spawn([sys.executable, "-c", DEMO_CODE, server.url, server.app_id, str(port),
                                    server.identity_secret], port,
                                   directory / "demo.log", "/")
    except BaseException:
        server.stop()
        raise
    return Stack(server, demo_url, proc)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here drives a real Chromium against server subprocesses: all are ``browser`` and ``slow``
    (left out of the ``-m "not slow"`` inner loop), whether or not the module says so itself."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = start_stack(tmp_path_factory.mktemp("trailmark"))
    yield s
    s.stop()


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[Callable[[], Stack]]:
    started: list[Stack] = []

    def factory(*create_args: str) -> Stack:
        s = start_stack(tmp_path / f"stack{len(started)}", *create_args)
        started.append(s)
        return s

    yield factory
    for s in started:
        s.stop()


# Per module, not per session: while Playwright's sync API is started it keeps an asyncio loop running in
# this thread, and the suite's async tests (pytest-asyncio) could not run after it.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set TRAILMARK_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@dataclass
class Watch:
    """What a page did: every request URL, uncaught exceptions, and console errors."""

    requests: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def js_errors(self) -> list[str]:
        """Errors the page's JavaScript raised or logged. Chromium itself logs every failed or 4xx/5xx
        request as a console error "Failed to load resource: ..." (no script logs it, and a script cannot
        prevent it), so those lines are left out; everything else counts."""
        return self.page_errors + [m for m in self.console_errors if not m.startswith("Failed to load resource")]

    def non_local(self) -> list[str]:
        return [u for u in self.requests
                if not u.startswith(LOCAL_SCHEMES) and urlsplit(u).hostname != "127.0.0.1"]


@pytest.fixture
def new_page(browser: Any) -> Iterator[Callable[..., tuple[Any, Watch]]]:
    """``new_page(context=None)`` → ``(page, watch)``; a fresh context (fresh cookies) unless one is given.
    At teardown: no request left 127.0.0.1."""
    contexts: list[Any] = []
    watches: list[Watch] = []

    def factory(context: Any = None) -> tuple[Any, Watch]:
        if context is None:
            context = browser.new_context(viewport={"width": 1100, "height": 760})
            contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        watch = Watch()
        watches.append(watch)
        page.on("request", lambda r: watch.requests.append(r.url))
        page.on("pageerror", lambda e: watch.page_errors.append(f"pageerror: {e}"))
        page.on("console", lambda m: (watch.console_errors.append(m.text) if m.type == "error"
                                      else watch.warnings.append(m.text) if m.type == "warning" else None))
        return page, watch

    yield factory
    for c in contexts:
        with contextlib.suppress(Exception):
            c.close()
    for w in watches:
        assert w.non_local() == [], "the page loaded something from outside 127.0.0.1"


def screenshot(page: Any, name: str, **kwargs: Any) -> Path:
    OUTPUT.mkdir(exist_ok=True)
    path = OUTPUT / f"{name}.png"
    page.screenshot(path=str(path), **kwargs)
    return path


def shim_ready(page: Any) -> None:
    """Wait until the shim has replaced the loader's stub and its first ping has set the device cookie."""
    page.wait_for_function("() => window.Intercom && window.Intercom.booted && Intercom('getVisitorId')")


def visitor_id(page: Any) -> str:
    shim_ready(page)
    vid: str = page.evaluate("() => Intercom('getVisitorId')")
    return vid
