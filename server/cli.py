"""The ``trailmark`` command: serve, demo, workspace, migrate."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any

from .store import SQLStore, open_store
from .store.models import Workspace
from .snippet import paste_in_snippet

DEFAULT_DB = "trailmark.db"


async def _with_store(url: str, fn: Any) -> Any:
    store = open_store(url)
    await store.open()
    try:
        return await fn(store)
    finally:
        await store.close()


async def ensure_workspace(store: SQLStore) -> tuple[Workspace, bool]:
    """The first workspace, created (as "Default") on the very first run."""
    existing = await store.list_workspaces()
    if existing:
        return existing[0], False
    return await store.create_workspace("Default"), True


def describe(ws: Workspace, server_url: str) -> str:
    return (f"Workspace {ws.name!r}\n  app_id:        {ws.app_id}\n  access token:  {ws.access_token}\n"
            f"  identity secret (user_hash): {ws.identity_secret}\n\n"
            f"Paste this before </body> on your site:\n\n{paste_in_snippet(server_url, ws.app_id)}\n")


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    url = args.database
    ws, created = asyncio.run(_with_store(url, ensure_workspace))
    server_url = args.public_url or f"http://{args.host}:{args.port}"
    if created:
        print("First run: created a workspace.\n")
        print(describe(ws, server_url))
    else:
        print(f"Trailmark on {server_url} (database {url}); `trailmark workspace list` shows the app ids.")
    if args.workers > 1 and not url.startswith(("postgres://", "postgresql://")):
        print("--workers > 1 needs PostgreSQL (SQLite has one writer per file); running one process.",
              file=sys.stderr)
        args.workers = 1
    os.environ["TRAILMARK_DATABASE_URL"] = url
    if args.public_url:
        os.environ["TRAILMARK_PUBLIC_URL"] = args.public_url
    uvicorn.run("server.app:create_app", factory=True, host=args.host, port=args.port, workers=args.workers,
                log_level=args.log_level, access_log=False)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    import uvicorn

    from .app import create_app
    from .demo import create_demo_app
    from .settings import Settings

    ws, _ = asyncio.run(_with_store(args.database, ensure_workspace))
    server_url = f"http://{args.host}:{args.port}"
    demo_url = f"http://{args.host}:{args.demo_port}"
    print(f"Trailmark server: {server_url}   (database {args.database}, app_id {ws.app_id})")
    print(f"Demo site:        {demo_url}   ← open this and click around")
    print(f"See the events:   curl -H 'Authorization: Bearer {ws.access_token}' "
          f"'{server_url}/events?type=user&user_id=<visitor id>'")
    print("  (the visitor id is what Intercom('getVisitorId') returns in the demo page's console)\n")

    async def run() -> None:
        api = uvicorn.Server(uvicorn.Config(create_app(Settings(database_url=args.database)), host=args.host,
                                           port=args.port, log_level=args.log_level, access_log=False))
        demo = uvicorn.Server(uvicorn.Config(create_demo_app(server_url, ws.app_id), host=args.host,
                                             port=args.demo_port, log_level=args.log_level, access_log=False))
        await asyncio.gather(api.serve(), demo.serve())

    asyncio.run(run())
    return 0


def cmd_workspace(args: argparse.Namespace) -> int:
    async def create(store: SQLStore) -> Workspace:
        return await store.create_workspace(args.name, allowed_origins=args.allowed_origin or [])

    async def listing(store: SQLStore) -> list[Workspace]:
        return await store.list_workspaces()

    if args.action == "create":
        ws = asyncio.run(_with_store(args.database, create))
        print(json.dumps(ws.public_dict(), indent=2) if args.json else describe(ws, args.server_url))
    else:
        workspaces = asyncio.run(_with_store(args.database, listing))
        if args.json:
            print(json.dumps([w.public_dict() for w in workspaces], indent=2))
        else:
            for w in workspaces:
                origins = ", ".join(w.allowed_origins) or "any origin"
                print(f"{w.app_id}  {w.name!r}  token {w.access_token}  ({origins})")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    async def noop(store: SQLStore) -> None:
        return None

    asyncio.run(_with_store(args.database, noop))  # opening a store applies pending migrations
    print(f"schema of {args.database} is up to date")
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    from .retention import cutoff_for, purge_workspace

    async def run(store: SQLStore) -> None:
        for ws in await store.list_workspaces():
            if args.app_id and ws.app_id != args.app_id:
                continue
            events, visitors = await store.count_expired(ws, cutoff_for(ws))
            label = f"{ws.app_id} ({ws.name}, {ws.retention_days} days)"
            if args.dry_run:
                print(f"{label}: would delete {events} visitor events and {visitors} expired visitors")
                continue
            bar = ProgressBar(f"{label}", events + visitors)
            deleted = await purge_workspace(store, ws, batch_size=args.batch_size,
                                            progress=lambda e, v: bar.update(e + v))
            bar.done()
            print(f"{label}: deleted {deleted[0]} visitor events and {deleted[1]} expired visitors")

    asyncio.run(_with_store(args.database, run))
    return 0


class ProgressBar:
    """A one-line text progress bar on stderr."""

    def __init__(self, label: str, total: int, width: int = 30) -> None:
        self.label, self.total, self.width = label, max(total, 1), width

    def update(self, count: int) -> None:
        filled = min(self.width, self.width * count // self.total)
        sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {count}/{self.total}")
        sys.stderr.flush()

    def done(self) -> None:
        sys.stderr.write("\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trailmark", description="Self-hosted, Intercom-compatible event tracking.")
    sub = parser.add_subparsers(dest="command", required=True)
    db_help = "SQLite path or URL, or postgresql://… (env TRAILMARK_DATABASE_URL)"
    default_db = os.environ.get("TRAILMARK_DATABASE_URL", DEFAULT_DB)

    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--database", default=default_db, help=db_help)
    serve.add_argument("--workers", type=int, default=1, help="server processes (PostgreSQL only)")
    serve.add_argument("--public-url", help="the URL sites reach this server at (for the printed snippet)")
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(func=cmd_serve)

    demo = sub.add_parser("demo", help="serve the demo site wired to a local server")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--demo-port", type=int, default=8001)
    demo.add_argument("--database", default=default_db, help=db_help)
    demo.add_argument("--log-level", default="warning")
    demo.set_defaults(func=cmd_demo)

    ws = sub.add_parser("workspace", help="create or list workspaces")
    ws.add_argument("action", choices=["create", "list"])
    ws.add_argument("--name", default="Workspace")
    ws.add_argument("--allowed-origin", action="append", help="a site origin allowed to use the snippet (repeat)")
    ws.add_argument("--server-url", default="http://127.0.0.1:8000", help="for the printed snippet")
    ws.add_argument("--database", default=default_db, help=db_help)
    ws.add_argument("--json", action="store_true")
    ws.set_defaults(func=cmd_workspace)

    migrate = sub.add_parser("migrate", help="apply pending schema migrations")
    migrate.add_argument("--database", default=default_db, help=db_help)
    migrate.set_defaults(func=cmd_migrate)
    purge = sub.add_parser("purge", help="delete anonymous visitors' events past the retention window")
    purge.add_argument("--database", default=default_db, help=db_help)
    purge.add_argument("--dry-run", action="store_true", help="only count what would be deleted")
    purge.add_argument("--app-id", help="only this workspace")
    purge.add_argument("--batch-size", type=int, default=1000)
    purge.set_defaults(func=cmd_purge)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))
