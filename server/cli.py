"""The ``trailmark`` command: serve, demo, workspace, migrate, admin, …"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from tqdm import tqdm

from . import __version__
from .cli_messages import add_message_parser
from .metadata import InvalidEventName, normalize_event_name
from .origins import normalise_origin
from .snippet import paste_in_snippet
from .store import SQLStore, with_store
from .store.models import Workspace
from .store.sql_helpers import DAY

DEFAULT_DB = "trailmark.db"
ASSUMED_SERVER_URL = "http://127.0.0.1:8000"  # serve's default address


async def ensure_workspace(store: SQLStore) -> tuple[Workspace, bool]:
    """The first workspace, created (as "Default") on the very first run."""
    existing = await store.list_workspaces()
    if existing:
        return existing[0], False
    return await store.create_workspace("Default"), True


def describe(ws: Workspace, server_url: str) -> str:
    """A new workspace, as printed once: its access token is not stored and cannot be shown again."""
    return (f"Workspace {ws.name!r}\n  app_id:        {ws.app_id}\n"
            f"  access token:  {ws.access_token}   (shown once: keep it; `trailmark token create` makes another)\n"
            f"  identity secret (user_hash): {ws.identity_secret}\n"
            + ("  identity verification: enforced. Boot signed-in users with user_hash = hex HMAC-SHA256 of their\n"
               "    user_id keyed by the identity secret, computed on your server (or opt out: `trailmark workspace\n"
               "    set --no-enforce-identity-verification`).\n" if ws.enforce_identity_verification else
               "  identity verification: NOT enforced: any browser can boot as any user_id.\n")
            + "\n"
            f"Paste this before </body> on your site:\n\n{paste_in_snippet(server_url, ws.app_id)}\n")


KEEP_ALIVE_SECONDS = 5
MAX_HEADER_BYTES = 16 * 1024


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .slow_headers import HeaderTimeoutProtocol

    url = args.database
    ws, created = asyncio.run(with_store(url, ensure_workspace))
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
    if args.workers > 1 and not os.environ.get("TRAILMARK_SECRET_KEY"):
        print("--workers > 1 needs TRAILMARK_SECRET_KEY (every process must sign admin sessions with the same "
              "key; it is never kept in the database): set it to a long random string", file=sys.stderr)
        return 2
    os.environ["TRAILMARK_DATABASE_URL"] = url
    if args.public_url:
        os.environ["TRAILMARK_PUBLIC_URL"] = args.public_url
    if args.new_visitors_per_minute is not None:
        os.environ["TRAILMARK_NEW_VISITORS_PER_MINUTE"] = str(args.new_visitors_per_minute)
    if args.body_timeout is not None:
        os.environ["TRAILMARK_BODY_TIMEOUT"] = str(args.body_timeout)
    if args.header_timeout is not None:
        os.environ["TRAILMARK_HEADER_TIMEOUT"] = str(args.header_timeout)
    # Client addresses (the per-address limits) come from X-Forwarded-For only for the proxies listed here;
    # None keeps uvicorn's default ($FORWARDED_ALLOW_IPS, else 127.0.0.1). docs/deploy.md.
    uvicorn.run("trailmark.app:create_app", factory=True, host=args.host, port=args.port, workers=args.workers,
                log_level=args.log_level, access_log=False, proxy_headers=True,
                forwarded_allow_ips=args.forwarded_allow_ips,
                # Idle keep-alive connections close after this; headers may not grow past 16 KB, and a request
                # whose headers are late is closed (server/slow_headers.py); bodies have their own timeout
                # (server/body_timeout.py). docs/deploy.md.
                timeout_keep_alive=KEEP_ALIVE_SECONDS, h11_max_incomplete_event_size=MAX_HEADER_BYTES,
                http=HeaderTimeoutProtocol)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(args.host, args.port, args.demo_port, args.database, args.log_level, args.sample_data)


def describe_settings(ws: Workspace) -> str:
    origins = ", ".join(ws.allowed_origins) or "any origin"
    lines = [f"{ws.app_id}  {ws.name!r}",
             f"  identity verification: {'enforced' if ws.enforce_identity_verification else 'NOT enforced'}",
             f"  strict metadata:       {'on' if ws.strict_metadata else 'off'}",
             f"  retention:             {ws.retention_days} days",
             f"  allowed origins:       {origins}",
             f"  new event names from browsers: {ws.browser_new_names_per_contact} per visitor, "
             f"{ws.browser_new_names_per_address} per address a day; "
             + (f"only {', '.join(ws.browser_event_names)}" if ws.browser_event_names else "any name"),
             f"  consent required:      {'yes' if ws.consent_required else 'no'}",
             f"  honour GPC / DNT:      {'yes' if ws.honour_gpc else 'no'}",
             f"  page views:            {'recorded' if ws.page_views else 'off'}",
             f"  identity secret:       {ws.identity_secret}"]
    if ws.previous_identity_secret and ws.previous_secret_expires_at:
        until = datetime.fromtimestamp(ws.previous_secret_expires_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
        lines.append(f"  previous secret:       still verifies until {until}")
    return "\n".join(lines)


async def set_workspace(store: SQLStore, args: argparse.Namespace) -> tuple[Workspace, str | None]:
    """Apply ``workspace set``'s flags; returns the workspace as it is now and the new identity secret."""
    ws = await pick_workspace(store, args.app_id)
    fields: dict[str, Any] = {}
    if args.enforce_identity_verification is not None:
        fields["enforce_identity_verification"] = args.enforce_identity_verification
    fields.update(_privacy_flags(args))
    if args.strict_metadata is not None:
        fields["strict_metadata"] = args.strict_metadata
    if args.retention_days is not None:
        if not 1 <= args.retention_days <= 3650:
            raise SystemExit("--retention-days must be between 1 and 3650")
        fields["retention_days"] = args.retention_days
    if args.allowed_origin is not None:
        fields["allowed_origins"] = [_origin(o) for o in args.allowed_origin]
    for flag in ("browser_new_names_per_contact", "browser_new_names_per_address"):
        value = getattr(args, flag)
        if value is not None:
            if not 0 <= value <= 1000:
                raise SystemExit(f"--{flag.replace('_', '-')} must be between 0 and 1000")
            fields[flag] = value
    names = browser_event_names(args)
    if names is not None:
        fields["browser_event_names"] = names
    if args.name:
        fields["name"] = args.name
    if fields:
        await store.update_workspace(ws.id, **fields)
    if args.rotate_signing_key:
        await store.rotate_signing_key(ws)
    new_secret = None
    if args.rotate_identity_secret:
        fresh = await store.workspace_by_app_id(ws.app_id, cached=False)
        assert fresh is not None
        new_secret = await store.rotate_identity_secret(fresh, grace_seconds=args.grace_days * DAY)
    updated = await store.workspace_by_app_id(ws.app_id, cached=False)
    assert updated is not None
    return updated, new_secret


def browser_event_names(args: argparse.Namespace) -> list[str] | None:
    """``--browser-event-names NAME…`` and/or ``--browser-event-names-file PATH`` (one name a line, # comments),
    normalised as ingest normalises names; ``[]`` (the flag alone) lets browsers create any name."""
    if args.browser_event_names is None and args.browser_event_names_file is None:
        return None
    raw = list(args.browser_event_names or [])
    if args.browser_event_names_file:
        with open(args.browser_event_names_file, encoding="utf-8") as f:
            raw += [line.split("#", 1)[0] for line in f]
    try:
        return sorted({normalize_event_name(n) for n in raw if n.strip()})
    except InvalidEventName as exc:
        raise SystemExit(f"--browser-event-names: {exc}") from None


def _privacy_flags(args: argparse.Namespace) -> dict[str, bool]:
    """``--consent-required`` / ``--honour-gpc`` / ``--page-views`` (and their ``--no-`` forms) as workspace
    fields."""
    fields = {"consent_required": args.consent_required, "honour_gpc": args.honour_gpc,
              "page_views": args.page_views}
    return {k: v for k, v in fields.items() if v is not None}


def _origin(origin: str) -> str:
    try:
        return normalise_origin(origin)
    except ValueError as exc:
        raise SystemExit(f"--allowed-origin: {exc}") from None


def cmd_workspace(args: argparse.Namespace) -> int:
    async def create(store: SQLStore) -> Workspace:
        enforce = args.enforce_identity_verification is not False  # secure by default
        origins = [_origin(o) for o in args.allowed_origin or []]
        ws = await store.create_workspace(args.name or "Workspace", allowed_origins=origins,
                                          enforce_identity_verification=enforce)
        fields: dict[str, Any] = _privacy_flags(args)
        if args.strict_metadata is not None:
            fields["strict_metadata"] = args.strict_metadata
        if fields:
            await store.update_workspace(ws.id, **fields)
            fresh = await store.workspace_by_app_id(ws.app_id, cached=False)
            assert fresh is not None
            ws = replace(fresh, access_token=ws.access_token)
        return ws

    async def listing(store: SQLStore) -> list[Workspace]:
        return await store.list_workspaces()

    if args.action == "create":
        ws = asyncio.run(with_store(args.database, create))
        if args.json:
            print(json.dumps(ws.public_dict(), indent=2))
        else:
            print(describe(ws, args.server_url or ASSUMED_SERVER_URL))
            if not args.server_url:
                print(f"(The snippet assumes the server is at {ASSUMED_SERVER_URL}: pass --server-url with the "
                      "address your site reaches Trailmark at, e.g. https://trailmark.example.com.)")
    elif args.action == "set":
        ws, new_secret = asyncio.run(with_store(args.database, lambda store: set_workspace(store, args)))
        if args.json:
            print(json.dumps(ws.settings_dict(), indent=2))
        else:
            print(describe_settings(ws))
            if new_secret:
                print("\nNew identity secret: update your server's user_hash / JWT code with it; the previous "
                      "one keeps verifying until the date above.")
    else:
        workspaces = asyncio.run(with_store(args.database, listing))
        if args.json:
            print(json.dumps([w.settings_dict() for w in workspaces], indent=2))
        else:
            print("\n\n".join(describe_settings(w) for w in workspaces) or "no workspace yet")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    """``trailmark token create|list|revoke``: REST access tokens (stored hashed: shown once, when made)."""
    async def run(store: SQLStore) -> int:
        ws = await pick_workspace(store, args.app_id)
        if args.action == "create":
            token = await store.create_access_token(ws, args.name)
            print(json.dumps({"access_token": token, "app_id": ws.app_id, "name": args.name}) if args.json else
                  f"{token}\n(shown once; stored only as a hash. Revoke with `trailmark token revoke ID`)")
            return 0
        if args.action == "revoke":
            done = await store.revoke_access_token(ws, args.id)
            print(f"revoked token {args.id}" if done else f"no live token {args.id} in {ws.app_id}",
                  file=sys.stdout if done else sys.stderr)
            return 0 if done else 1
        tokens = await store.access_tokens(ws)
        if args.json:
            print(json.dumps([t.as_dict() for t in tokens], indent=2))
        for t in tokens if not args.json else []:
            state = f"revoked {_day(t.revoked_at)}" if t.revoked_at else "live"
            print(f"{t.id:>4}  {t.hint:<10}  {t.name!r:<24}  made {_day(t.created_at)}  {state}")
        return 0

    return int(asyncio.run(with_store(args.database, run)))


def _day(ts: int | None) -> str:
    return datetime.fromtimestamp(ts or 0, UTC).strftime("%Y-%m-%d")


def cmd_migrate(args: argparse.Namespace) -> int:
    async def noop(store: SQLStore) -> None:
        return None

    asyncio.run(with_store(args.database, noop))  # opening a store applies pending migrations
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
                                            progress=bar.update_sum)
            bar.done()
            print(f"{label}: deleted {deleted[0]} visitor events and {deleted[1]} expired visitors")

    asyncio.run(with_store(args.database, run))
    return 0


# ---------------------------------------------------------------- sources: import, export, Segment, Stripe
async def pick_workspace(store: SQLStore, app_id: str | None) -> Workspace:
    """``--app-id``'s workspace, or the only one there is."""
    workspaces = await store.list_workspaces()
    if app_id:
        for ws in workspaces:
            if ws.app_id == app_id:
                return ws
        raise SystemExit(f"no workspace has app_id {app_id!r} (see `trailmark workspace list`)")
    if len(workspaces) == 1:
        return workspaces[0]
    if not workspaces:
        raise SystemExit("no workspace yet: run `trailmark workspace create`")
    choices = "\n".join(f"  --app-id {w.app_id}   {w.name}" for w in workspaces)
    raise SystemExit(f"several workspaces: pass one of\n{choices}")


def cmd_import(args: argparse.Namespace) -> int:
    from .importer import CHUNK_ROWS, import_file

    bars: list[ProgressBar] = []

    def progress(done: int, total: int) -> None:
        if not bars:
            bars.append(ProgressBar(f"importing {args.file}", total))
        bars[0].update(done)

    async def run(store: SQLStore) -> Any:
        ws = await pick_workspace(store, args.app_id)
        return await import_file(store, ws, args.file, fmt=args.format, create_users=not args.no_create_users,
                                 chunk_rows=args.chunk_rows or CHUNK_ROWS, progress=None if args.quiet else progress)

    summary = asyncio.run(with_store(args.database, run))
    if bars:
        bars[0].done()
    print(json.dumps(summary.as_dict(args.max_reasons), indent=2) if args.json else summary.render(args.max_reasons))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .gdpr import export_contact

    bars: list[ProgressBar] = []

    def progress(done: int, total: int) -> None:
        if not bars:
            bars.append(ProgressBar(f"exporting {args.contact}", total))
        bars[0].update(done)

    async def run(store: SQLStore) -> Any:
        return await export_contact(store, await pick_workspace(store, args.app_id), args.contact,
                                    progress=None if args.quiet else progress)

    data = asyncio.run(with_store(args.database, run))
    if bars:
        bars[0].done()
    if data is None:
        print(f"no contact {args.contact!r} (a contact id, user_id, email or visitor id)", file=sys.stderr)
        return 1
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if args.output and args.output != "-":
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"wrote {args.output}: contact {data['contact']['id']}, {len(data['merged_contacts'])} merged "
              f"contacts, {len(data['events'])} events", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_delete_contact(args: argparse.Namespace) -> int:
    from .contact_lookup import find_person

    async def run(store: SQLStore) -> Any:
        ws = await pick_workspace(store, args.app_id)
        contact = await find_person(store, ws, args.contact)
        if contact is None:
            return None
        label = f"{contact.role} {contact.id} (user_id {contact.external_id}, email {contact.email})"
        if not args.yes:
            if not sys.stdin.isatty():
                raise SystemExit(f"would delete {label}, the contacts merged into it and all their events: "
                                 "pass --yes to confirm")
            if input(f"Delete {label}, the contacts merged into it and all their events? [y/N] ").lower() != "y":
                raise SystemExit("nothing deleted")
        return await store.delete_contact(ws, contact.id)

    result = asyncio.run(with_store(args.database, run))
    if result is None:
        print(f"no contact {args.contact!r} (a contact id, user_id, email or visitor id)", file=sys.stderr)
        return 1
    print(f"deleted contact {result['contact_id']}: {result['contacts']} contact(s), {result['events']} events, "
          f"{result['merges']} merge records")
    return 0


def cmd_segment(args: argparse.Namespace) -> int:
    async def run(store: SQLStore) -> str:
        return await store.segment_write_key(await pick_workspace(store, args.app_id), rotate=args.rotate)

    print(asyncio.run(with_store(args.database, run)))
    return 0


def cmd_stripe(args: argparse.Namespace) -> int:
    from .sources.stripe import retry_unmatched

    async def run(store: SQLStore) -> int:
        ws = await pick_workspace(store, args.app_id)
        if args.action == "add-secret":
            added = await store.add_stripe_secret(ws, args.secret)
            print(f"{'added' if added else 'already there:'} webhook secret for {ws.app_id}; Stripe endpoint URL: "
                  f"<server>/integrations/stripe/webhook/{ws.app_id}")
        elif args.action == "remove-secret":
            removed = await store.remove_stripe_secret(ws, args.secret)
            print("removed" if removed else "no such secret")
            return 0 if removed else 1
        elif args.action == "secrets":
            for secret in await store.stripe_secrets(ws):
                print(secret[:10] + "…" + secret[-4:])
        elif args.action == "retry":
            tracked, left = await retry_unmatched(store, ws)
            print(f"tracked {tracked} recorded webhooks; {left} still match no contact")
        else:
            rows = await store.unmatched_stripe_events(ws, include_resolved=args.all, limit=args.limit)
            if args.json:
                print(json.dumps([{**r, "payload": json.loads(r["payload"])} for r in rows], indent=2))
            for r in rows if not args.json else []:
                state = f"tracked on {r['resolved_contact']}" if r["resolved_at"] else "unmatched"
                print(f"{r['received_at']}  {r['stripe_event_id']}  {r['type']}  customer {r['customer_id']}  "
                      f"email {r['email']}  {state}: {r['reason']}")
        return 0

    return int(asyncio.run(with_store(args.database, run)))


def cmd_admin(args: argparse.Namespace) -> int:
    """``trailmark admin create``: a teammate account for the admin pages (or a new password for one)."""
    from .admin.auth import hash_password, password_problem

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        import getpass

        password = getpass.getpass(f"Password for {args.email}: ")
        if getpass.getpass("Again: ") != password:
            print("the passwords differ; nothing changed", file=sys.stderr)
            return 1
    problem = password_problem(password)
    if problem:
        print(f"{problem}; nothing changed", file=sys.stderr)
        return 1
    if "@" not in args.email:
        print("--email must be an email address", file=sys.stderr)
        return 1

    async def run(store: SQLStore) -> Any:
        existed = await store.teammate_by_email(args.email) is not None
        teammate = await store.create_teammate(args.email, hash_password(password))
        return teammate, existed

    teammate, existed = asyncio.run(with_store(args.database, run))
    print(f"{'updated the password of' if existed else 'created'} teammate {teammate.email}; sign in at "
          "<server>/admin/login")
    return 0


class ProgressBar:
    """Progress on stderr with a rate and an ETA (tqdm); silent when stderr is not a terminal (cron, CI, pipes)."""

    def __init__(self, label: str, total: int) -> None:
        self._bar = tqdm(total=max(total, 1), desc=label, unit=" rows", unit_scale=True, dynamic_ncols=True,
                         disable=not sys.stderr.isatty(), file=sys.stderr)

    def update(self, count: int) -> None:
        self._bar.update(max(0, count - self._bar.n))  # callers report a running total

    def update_sum(self, *counts: int) -> None:
        """``update`` with the sum of several counts (purge_workspace reports events and visitors)."""
        self.update(sum(counts))

    def done(self) -> None:
        self._bar.close()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trailmark", description="Self-hosted, Intercom-compatible event tracking.")
    parser.add_argument("--version", action="version", version=f"trailmark {__version__}")
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
    serve.add_argument("--forwarded-allow-ips", metavar="IPS",
                       help="comma-separated addresses of the reverse proxies whose X-Forwarded-For names the client "
                            "(default: $FORWARDED_ALLOW_IPS, else 127.0.0.1; '*' trusts everyone: only behind a proxy)")
    serve.add_argument("--header-timeout", type=float, metavar="SECONDS",
                       help="close a connection whose request headers are not complete after this (default 10; "
                            "env TRAILMARK_HEADER_TIMEOUT)")
    serve.add_argument("--body-timeout", type=float, metavar="SECONDS",
                       help="answer 408 and close the connection when a request body is not complete within this "
                            "time (default 10, or $TRAILMARK_BODY_TIMEOUT)")
    serve.add_argument("--new-visitors-per-minute", type=int, metavar="N",
                       help="new visitors (token-less pings) one client address may create per minute "
                            "(default 120, or $TRAILMARK_NEW_VISITORS_PER_MINUTE; 0: no limit)")
    serve.set_defaults(func=cmd_serve)

    demo = sub.add_parser(
        "demo", help="the demo site wired to a local server, with a one-time admin sign-in link",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  trailmark demo\n"
               "  trailmark demo --sample-data   # a few weeks of visitors, leads and users\n"
               "  trailmark demo --port 9000 --demo-port 9001")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--demo-port", type=int, default=8001)
    demo.add_argument("--database", default="trailmark-demo.db",
                      help="the demo's own SQLite file (default trailmark-demo.db, not serve's database)")
    demo.add_argument("--sample-data", action="store_true",
                      help="fill the database with a few weeks of realistic visitors, leads and users")
    demo.add_argument("--log-level", default="warning")
    demo.set_defaults(func=cmd_demo)

    ws = sub.add_parser(
        "workspace", help="create, list or change workspaces",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  trailmark workspace create --name Shop --allowed-origin https://shop.example\n"
               "  trailmark workspace set --app-id k3x9q2ab --enforce-identity-verification --retention-days 30\n"
               "  trailmark workspace set --rotate-identity-secret\n"
               "  trailmark workspace set --consent-required --honour-gpc   (docs/privacy.md)\n"
               "  trailmark workspace set --no-page-views\n"
               "  trailmark workspace set --rotate-signing-key   (after a database leak: docs/security.md)\n"
               "  trailmark workspace list --json")
    ws.add_argument("action", choices=["create", "list", "set"])
    ws.add_argument("--app-id", help="set: the workspace (default: the only one)")
    ws.add_argument("--name", help="create/set: the workspace's name")
    ws.add_argument("--allowed-origin", action="append",
                    help="a site origin allowed to use the snippet (repeat; set: replaces the list)")
    ws.add_argument("--enforce-identity-verification", action=argparse.BooleanOptionalAction, default=None,
                    help="refuse a user_id or email from the browser without user_hash / intercom_user_jwt")
    ws.add_argument("--strict-metadata", action=argparse.BooleanOptionalAction, default=None,
                    help="refuse events with invalid metadata (422) instead of dropping the entries")
    ws.add_argument("--consent-required", action=argparse.BooleanOptionalAction, default=None,
                    help="the shim sets no cookie, stores and sends nothing until the page calls "
                         "Intercom('consent', 'granted') (docs/privacy.md)")
    ws.add_argument("--honour-gpc", action=argparse.BooleanOptionalAction, default=None,
                    help="Global Privacy Control and Do Not Track count as a refusal of consent")
    ws.add_argument("--page-views", action=argparse.BooleanOptionalAction, default=None,
                    help="record the page views the snippet sends (default on); --no-page-views drops them and "
                         "the snippet stops sending them")
    ws.add_argument("--retention-days", type=int,
                    help="set: how long anonymous visitors' events are kept, and how far back a new lead's history "
                         "reaches (default 90)")
    ws.add_argument("--browser-new-names-per-contact", type=int, metavar="N",
                    help="set: new event names a browser that is not a verified user may create per visitor per day "
                         "(default 10; 0: none)")
    ws.add_argument("--browser-new-names-per-address", type=int, metavar="N",
                    help="set: the same, per client address per day (default 30; 0: none)")
    ws.add_argument("--browser-event-names", nargs="*", metavar="NAME",
                    help="set: the only new event names browsers may create (replaces the list; the flag alone: any)")
    ws.add_argument("--browser-event-names-file", metavar="PATH",
                    help="set: as --browser-event-names, one name a line")
    ws.add_argument("--rotate-identity-secret", action="store_true",
                    help="set: make a new identity secret; the old one keeps verifying for --grace-days")
    ws.add_argument("--grace-days", type=int, default=7, help="with --rotate-identity-secret (default 7)")
    ws.add_argument("--rotate-signing-key", action="store_true",
                    help="set: a new key for visitor/session tokens (after a database leak): every browser "
                         "becomes a new visitor, users are identified again at their next boot")
    ws.add_argument("--server-url", help=f"create: the server's public address, for the printed snippet "
                                         f"(default: assumes {ASSUMED_SERVER_URL})")
    ws.add_argument("--database", default=default_db, help=db_help)
    ws.add_argument("--json", action="store_true")
    ws.set_defaults(func=cmd_workspace)

    token = sub.add_parser(
        "token", help="REST access tokens: create (shown once), list, revoke",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  trailmark token create --name 'CRM sync'\n"
               "  trailmark token create --app-id k3x9q2ab --json\n  trailmark token list\n  trailmark token revoke 3")
    token_common = argparse.ArgumentParser(add_help=False)
    token_common.add_argument("--app-id", help="the workspace (default: the only one)")
    token_common.add_argument("--database", default=default_db, help=db_help)
    token_sub = token.add_subparsers(dest="action", required=True)
    token_create = token_sub.add_parser("create", help="make a token and print it once", parents=[token_common])
    token_create.add_argument("--name", default="token", help="what it is for (shown by `token list`)")
    token_create.add_argument("--json", action="store_true", help='print {"access_token": …}')
    token_list = token_sub.add_parser("list", help="the tokens (never the tokens themselves)", parents=[token_common])
    token_list.add_argument("--json", action="store_true")
    token_revoke = token_sub.add_parser("revoke", help="stop a token working at once", parents=[token_common])
    token_revoke.add_argument("id", type=int, help="the id `token list` shows")
    token.set_defaults(func=cmd_token)

    migrate = sub.add_parser("migrate", help="apply pending schema migrations")
    migrate.add_argument("--database", default=default_db, help=db_help)
    migrate.set_defaults(func=cmd_migrate)
    purge = sub.add_parser("purge", help="delete anonymous visitors' events past the retention window")
    purge.add_argument("--database", default=default_db, help=db_help)
    purge.add_argument("--dry-run", action="store_true", help="only count what would be deleted")
    purge.add_argument("--app-id", help="only this workspace")
    purge.add_argument("--batch-size", type=int, default=1000)
    purge.set_defaults(func=cmd_purge)

    imp = sub.add_parser("import", help="import historical events from JSONL or CSV (docs/sources.md)")
    imp.add_argument("file", help="a .jsonl or .csv file, or - for standard input")
    imp.add_argument("--format", choices=["jsonl", "csv"], help="default: from the file name (.csv, else jsonl)")
    imp.add_argument("--app-id", help="the workspace (default: the only one)")
    imp.add_argument("--no-create-users", action="store_true",
                     help="reject rows whose user_id names no user (default: create the user)")
    imp.add_argument("--chunk-rows", type=int, default=None,
                     help="valid rows stored per transaction (default 20,000: server/importer.py CHUNK_ROWS)")
    imp.add_argument("--max-reasons", type=int, default=10, help="rejection reasons shown")
    imp.add_argument("--json", action="store_true", help="print the summary as JSON")
    imp.add_argument("--quiet", action="store_true", help="no progress bar")
    imp.add_argument("--database", default=default_db, help=db_help)
    imp.set_defaults(func=cmd_import)

    export = sub.add_parser("export", help="write a contact's data and whole event history as JSON (GDPR access)")
    export.add_argument("--contact", required=True, help="contact id, user_id, email or visitor id")
    export.add_argument("--output", "-o", help="file to write (default: standard output)")
    export.add_argument("--app-id", help="the workspace (default: the only one)")
    export.add_argument("--quiet", action="store_true", help="no progress bar (it is only drawn on a terminal)")
    export.add_argument("--database", default=default_db, help=db_help)
    export.set_defaults(func=cmd_export)

    delete = sub.add_parser("delete-contact", help="delete a contact, the contacts merged into it and all their "
                                                    "events (GDPR erasure)")
    delete.add_argument("contact", help="contact id, user_id, email or visitor id")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    delete.add_argument("--app-id", help="the workspace (default: the only one)")
    delete.add_argument("--database", default=default_db, help=db_help)
    delete.set_defaults(func=cmd_delete_contact)

    segment = sub.add_parser("segment", help="the Segment-compatible source's write key")
    segment.add_argument("action", choices=["write-key"])
    segment.add_argument("--rotate", action="store_true", help="replace the write key")
    segment.add_argument("--app-id", help="the workspace (default: the only one)")
    segment.add_argument("--database", default=default_db, help=db_help)
    segment.set_defaults(func=cmd_segment)

    stripe = sub.add_parser("stripe", help="Stripe webhook secrets and unmatched webhooks")
    stripe_common = argparse.ArgumentParser(add_help=False)
    stripe_common.add_argument("--app-id", help="the workspace (default: the only one)")
    stripe_common.add_argument("--database", default=default_db, help=db_help)
    stripe_sub = stripe.add_subparsers(dest="action", required=True)
    for action, text in (("add-secret", "add a webhook signing secret (several may be active: rotation)"),
                         ("remove-secret", "remove a webhook signing secret")):
        one = stripe_sub.add_parser(action, help=text, parents=[stripe_common])
        one.add_argument("secret", help="the endpoint's signing secret (whsec_…)")
    stripe_sub.add_parser("secrets", help="list the secrets (shortened)", parents=[stripe_common])
    unmatched = stripe_sub.add_parser("unmatched", help="verified webhooks that matched no contact",
                                      parents=[stripe_common])
    unmatched.add_argument("--all", action="store_true", help="also those tracked since")
    unmatched.add_argument("--limit", type=int, default=100)
    unmatched.add_argument("--json", action="store_true")
    stripe_sub.add_parser("retry", help="track recorded unmatched webhooks whose contact now exists",
                          parents=[stripe_common])
    stripe.set_defaults(func=cmd_stripe)
    admin = sub.add_parser("admin", help="teammate accounts for the admin pages (/admin)")
    admin_sub = admin.add_subparsers(dest="action", required=True)
    create = admin_sub.add_parser("create", help="create a teammate (or set a new password for one)")
    create.add_argument("--email", required=True)
    create.add_argument("--password-stdin", action="store_true",
                        help="read the password from the first line of standard input (default: prompt)")
    create.add_argument("--database", default=default_db, help=db_help)
    admin.set_defaults(func=cmd_admin)
    add_message_parser(sub, default_db, db_help)  # trailmark message … (server/cli_messages.py)
    add_examples(sub)
    return parser


# Every command's --help ends with examples (the ones built above with their own epilog keep it).
EXAMPLES = {
    "serve": "trailmark serve\n  trailmark serve --port 9000 --database /var/lib/trailmark/trailmark.db\n"
             "  TRAILMARK_SECRET_KEY=… trailmark serve --database postgresql://trailmark@db/trailmark --workers 4",
    "migrate": "trailmark migrate --database trailmark.db",
    "purge": "trailmark purge --dry-run\n  trailmark purge --app-id k3x9q2ab",
    "import": "trailmark import events.jsonl\n  trailmark import orders.csv --app-id k3x9q2ab --json",
    "export": "trailmark export --contact ada@example.com -o ada.json",
    "delete-contact": "trailmark delete-contact ada@example.com\n  trailmark delete-contact 42 --yes",
    "segment": "trailmark segment write-key\n  trailmark segment write-key --rotate",
    "stripe": "trailmark stripe add-secret whsec_…\n  trailmark stripe unmatched\n  trailmark stripe retry",
    "admin": "trailmark admin create --email you@example.com\n"
             "  echo \"$PASSWORD\" | trailmark admin create --email you@example.com --password-stdin",
}


def add_examples(sub: Any) -> None:
    for name, command in sub.choices.items():
        if not command.epilog and name in EXAMPLES:
            command.epilog = "examples:\n  " + EXAMPLES[name]
            command.formatter_class = argparse.RawDescriptionHelpFormatter
        inner = getattr(command, "_subparsers", None)
        for action in inner._group_actions if inner else []:
            for sub_command in getattr(action, "choices", {}).values():
                if not sub_command.epilog:
                    sub_command.epilog = command.epilog
                    sub_command.formatter_class = argparse.RawDescriptionHelpFormatter


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))
