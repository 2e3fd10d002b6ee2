"""Where a browser event's server time goes: µs per event for each step of ``POST /messenger/web/events``.

In-process, on a fresh SQLite file, with the body wrk sends (bench/wrk_ingest.lua): each step timed alone
over many requests, then the whole request through the ASGI app (routing, middleware, the endpoint; no
socket, no HTTP parser), so what the steps do not explain is "the rest": the request object, the app's dispatch
(the route skips Starlette's middleware and router: server/app.py ``TrailmarkApp``), reading the body from the
ASGI messages, the page-views step, the commit hooks and the awaits between the steps.

    parsing     http_edge.json_object: the strict JSON parse of the body
    validation  ingest.validate_browser_batch: names, times, metadata
    identity    the workspace (cached), the Origin check, the session token (cached HMAC)
    answer      the per-event results and the JSON answer with its CORS headers (the messages check too)
    hand-off    the event loop's side of append_events: queue, futures, the thread hop (main-thread CPU)
    writer      the group-commit transaction on the writer thread (its CPU; the fsync's wait is not CPU)

    python bench/ingest_costs.py [--requests 3000] [--batch 1,10] [--concurrency 32] [--profile]

``--profile`` prints cProfile's top functions for the whole-request run. bench/run.py prints the same rows
under its ingest section (section ``costs``).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

NAMES = ["page-view", "pricing-viewed", "signup-started", "upload-complete", "invited-friend", "plan-upgraded",
         "search", "video-played"]  # wrk_ingest.lua's names
ORIGIN = "http://site.example"


def body(app_id: str, session: str, run: str, n: int, batch: int) -> bytes:
    """One request's body, byte for byte the shape wrk_ingest.lua sends."""
    events = ",".join(
        f'{{"id":"{run}-{n}-{i}","event_name":"{NAMES[(n + i) % len(NAMES)]}",'
        f'"metadata":{{"plan":"pro","seats":{i},"page":"/pricing"}}}}' for i in range(1, batch + 1))
    return f'{{"app_id":"{app_id}","session":"{session}","events":[{events}]}}'.encode()


@dataclass
class Costs:
    """µs per event, per step, for one batch size."""

    batch: int
    steps: dict[str, float]
    whole: float  # the whole request in-process, through the ASGI app

    @property
    def framework(self) -> float:
        return max(0.0, self.whole - sum(self.steps.values()))


def per_event_us(seconds: float, requests: int, batch: int) -> float:
    return seconds / (requests * batch) * 1e6


def scope_for(app: Any, raw: bytes) -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
            "path": "/messenger/web/events", "raw_path": b"/messenger/web/events", "root_path": "",
            "query_string": b"", "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "app": app,
            "headers": [(b"host", b"127.0.0.1:8000"), (b"content-type", b"text/plain;charset=UTF-8"),
                        (b"origin", ORIGIN.encode()), (b"content-length", str(len(raw)).encode())]}


async def call_app(app: Any, raw: bytes) -> int:
    """One request through the ASGI app; its status."""
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)  # a disconnect would come here; the app never waits for one
        sent = True
        return {"type": "http.request", "body": raw, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope_for(app, raw), receive, send)
    return status


async def concurrently(n: int, concurrency: int, job: Callable[[int], Awaitable[Any]]) -> None:
    """``job(0..n-1)`` with ``concurrency`` callers at a time (as wrk's keep-alive connections)."""
    counter = iter(range(n))

    async def caller() -> None:
        for i in counter:
            await job(i)

    await asyncio.gather(*(caller() for _ in range(concurrency)))


class WriterClock:
    """The writer thread's CPU time, summed over its group-commit transactions."""

    def __init__(self, db: Any) -> None:
        self.seconds = 0.0
        run_batch = db._run_batch

        def timed(batch: list[Any]) -> Any:
            start = time.thread_time()
            try:
                return run_batch(batch)
            finally:
                self.seconds += time.thread_time() - start

        db._run_batch = timed  # the instance attribute shadows the method the write loop looks up


async def measure(requests: int, batches: list[int], concurrency: int, profile: bool) -> list[Costs]:
    from trailmark import identity
    from trailmark.app import create_app
    from trailmark.settings import Settings
    from trailmark.store import open_store

    with tempfile.TemporaryDirectory(prefix="trailmark-costs-") as tmp:
        store = open_store(str(Path(tmp) / "costs.db"))
        app = create_app(Settings.from_env(), store=store)
        async with app.router.lifespan_context(app):
            ws = await store.create_workspace("Costs")
            contacts = [await store.create_visitor(ws) for _ in range(32)]
            sessions = [identity.sign_session(ws.signing_key, c.id) for c in contacts]
            bench = Bench(app, store, ws, [c.id for c in contacts], sessions, requests, concurrency,
                          WriterClock(store.db))
            return [await bench.costs(batch, profile) for batch in batches]


@dataclass
class Bench:
    """One app on one store, its workspace and visitors: each step of the endpoint timed alone."""

    app: Any
    store: Any
    ws: Any
    contact_ids: list[str]
    sessions: list[str]
    requests: int
    concurrency: int
    clock: WriterClock

    def bodies(self, run: str, batch: int) -> list[bytes]:
        return [body(self.ws.app_id, self.sessions[n % len(self.sessions)], run, n, batch)
                for n in range(self.requests)]

    async def whole(self, raws: list[bytes]) -> None:
        await concurrently(len(raws), self.concurrency, lambda i: call_app(self.app, raws[i]))

    async def costs(self, batch: int, profile: bool) -> Costs:
        from starlette.requests import Request

        from trailmark import identity, messenger, messenger_messages
        from trailmark.http_edge import JSONAnswer, json_object
        from trailmark.ingest import validate_browser_batch
        from trailmark.store.models import AppendRequest

        n, ws, store = self.requests, self.ws, self.store
        await self.whole(self.bodies("w", batch)[: n // 4])  # warm every cache (workspace, tokens, names), the writer
        steps: dict[str, float] = {}
        raws = self.bodies("p", batch)
        start = time.perf_counter()
        parsed = [json_object(raw) for raw in raws]
        steps["parsing"] = per_event_us(time.perf_counter() - start, n, batch)
        start = time.perf_counter()
        validated = [[e for _, e in validate_browser_batch(data, strict=ws.strict_metadata).events] for data in parsed]
        steps["validation"] = per_event_us(time.perf_counter() - start, n, batch)
        request = Request(scope_for(self.app, raws[0]))
        start = time.perf_counter()
        for data in parsed:
            found, cors = await messenger.workspace_for(request, data)
            identity.read_session(found.signing_key, data.get("session"))
        steps["identity"] = per_event_us(time.perf_counter() - start, n, batch)
        results: list[Any] = [None] * n
        names = messenger.browser_names(request, ws)

        async def append(i: int) -> None:
            results[i] = await store.append_events(AppendRequest(
                ws.id, self.contact_ids[i % len(self.contact_ids)], "js", validated[i], browser=names))

        writer0, main0 = self.clock.seconds, time.thread_time()
        await concurrently(n, self.concurrency, append)
        steps["hand-off"] = per_event_us(time.thread_time() - main0, n, batch)
        steps["writer"] = per_event_us(self.clock.seconds - writer0, n, batch)
        start = time.perf_counter()
        for data, events, outcome in zip(parsed, validated, results, strict=True):
            # As the endpoint answers (messenger.events): a result per event, the messages check, the JSON.
            body = [{"id": raw["id"], "status": r.status} for raw, r in zip(data["events"], outcome, strict=True)]
            answer: dict[str, Any] = {"type": "event.batch", "results": body}
            shown = await messenger_messages.for_batch(store, ws, "", events, outcome, None)
            if shown:
                answer["messages"] = shown
            JSONAnswer(answer, cors)
        steps["answer"] = per_event_us(time.perf_counter() - start, n, batch)
        raws = self.bodies("a", batch)
        profiler = cProfile.Profile() if profile else None
        writer0, main0 = self.clock.seconds, time.thread_time()
        if profiler:
            profiler.enable()
        await self.whole(raws)
        if profiler:
            profiler.disable()
        whole = per_event_us(time.thread_time() - main0 + self.clock.seconds - writer0, n, batch)
        if profiler:
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(40)
            print(f"--- cProfile, {batch} event(s)/request, whole requests (cumulative; not the writer thread) ---")
            print(text.getvalue())
        return Costs(batch, steps, whole)


def table(costs: list[Costs]) -> list[tuple[str, list[str]]]:
    """Rows: (step, µs per event for each batch size)."""
    steps = list(costs[0].steps)
    rows = [(s, [f"{c.steps[s]:,.1f}" for c in costs]) for s in steps]
    rows.append(("the rest: request object, body read, dispatch, hooks, awaits",
                 [f"{c.framework:,.1f}" for c in costs]))
    rows.append(("whole request in-process", [f"{c.whole:,.1f}" for c in costs]))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--batch", default="1,10", help="events per request, comma-separated")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--profile", action="store_true", help="cProfile's top functions for the whole requests")
    args = parser.parse_args(argv)
    batches = [int(b) for b in args.batch.split(",")]
    costs = asyncio.run(measure(args.requests, batches, args.concurrency, args.profile))
    heads = ["µs per event"] + [f"{b} event{'s' if b > 1 else ''}/request" for b in batches]
    rows = table(costs)
    width = max(len(r[0]) for r in rows)
    print(f"{heads[0]:<{width}}  " + "  ".join(f"{h:>18}" for h in heads[1:]))
    for name, values in rows:
        print(f"{name:<{width}}  " + "  ".join(f"{v:>18}" for v in values))
    return 0


if __name__ == "__main__":
    sys.exit(main())
