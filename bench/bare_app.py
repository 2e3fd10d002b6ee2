"""The framework's ceiling: a bare Starlette endpoint that only parses the JSON body and answers 204.

With ``--answer trailmark`` it answers what Trailmark answers instead (200, the ``event.batch`` JSON with
one result per event, the CORS headers): the framework's cost of the protocol's answer, without any of
Trailmark's work (identity, validation, storage). bench/run.py uses it to split the gap.

Served exactly like Trailmark (server/cli.py ``cmd_serve``): ``uvicorn.run`` of an app factory by import
string, same host, ``workers``, ``log_level`` and ``access_log=False``, no other uvicorn settings, so
both get the same HTTP parser and event loop (whatever uvicorn picks on this machine).

    python bench/bare_app.py --port 8123 [--workers N] [--answer 204|trailmark]
"""

from __future__ import annotations

import argparse
import json
import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

CORS = {"Access-Control-Allow-Origin": "*", "Vary": "Origin", "Access-Control-Allow-Methods": "POST, GET, OPTIONS",
        "Access-Control-Allow-Headers": "Content-Type", "Access-Control-Expose-Headers": "Retry-After",
        "Access-Control-Max-Age": "86400"}  # what server/origins.py answers


async def events(request: Request) -> Response:
    json.loads(await request.body())
    return Response(status_code=204)


async def events_like_trailmark(request: Request) -> Response:
    data = json.loads(await request.body())
    results = [{"id": e["id"], "status": "accepted"} for e in data["events"]]
    return JSONResponse({"type": "event.batch", "results": results}, headers=CORS)


async def health(request: Request) -> Response:
    return JSONResponse({"ok": True})


def create_app() -> Starlette:
    handler = events_like_trailmark if os.environ.get("BENCH_BARE_ANSWER") == "trailmark" else events
    return Starlette(routes=[Route("/messenger/web/events", handler, methods=["POST"]), Route("/health", health)])


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("--answer", choices=["204", "trailmark"], default="204")
    args = parser.parse_args()
    os.environ["BENCH_BARE_ANSWER"] = args.answer  # read by create_app, in every worker process
    uvicorn.run("bare_app:create_app", factory=True, host=args.host, port=args.port, workers=args.workers,
                log_level=args.log_level, access_log=False)


if __name__ == "__main__":
    main()
