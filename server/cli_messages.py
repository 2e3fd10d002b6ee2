"""``trailmark message apply FILE | list | state KEY STATE | settings``: messages as code (docs/messages.md).

``apply`` reads one message document or a list of them (JSON; ``-`` for standard input), checks them all
first and applies nothing when any is invalid (each problem printed as ``FILE#/json/pointer: why``, exit 1);
applying the same file again changes nothing. ``list --json`` prints the normalised documents as a list, so
its output can be applied to another server as it is.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from .messages.document import STATES, DocumentInvalid, Message, parse_messages
from .store import SQLStore, with_store


def _read(path: str) -> Any:
    if path == "-":
        return json.loads(sys.stdin.read())
    with open(path, encoding="utf-8") as f:
        return json.load(f)


async def apply_messages(store: SQLStore, ws: Any, messages: list[Message]) -> list[tuple[str, str]]:
    out = []
    for m in messages:
        applied = await store.messages.apply(ws, key=m.key, kind=m.kind, state=m.state, event_name=m.trigger.event,
                                             document=m.document)
        out.append((applied.outcome, m.key))
    return out


def cmd_message(args: argparse.Namespace) -> int:
    from .cli import pick_workspace  # the CLI's own helper (imported late: cli imports this module)

    if args.action == "apply":
        try:
            data = _read(args.file)
        except (OSError, ValueError) as exc:
            print(f"{args.file}: cannot read JSON: {exc}", file=sys.stderr)
            return 1
        try:
            messages = parse_messages(data)
        except DocumentInvalid as exc:
            for p in exc.problems:
                print(f"{args.file}#{p.pointer}: {p.message}", file=sys.stderr)
            print(f"nothing applied: {len(exc.problems)} problem(s)", file=sys.stderr)
            return 1

        async def run_apply(store: SQLStore) -> list[tuple[str, str]]:
            return await apply_messages(store, await pick_workspace(store, args.app_id), messages)

        for outcome, key in asyncio.run(with_store(args.database, run_apply)):
            print(f"{outcome:9} {key}")
        return 0

    async def run(store: SQLStore) -> Any:
        ws = await pick_workspace(store, args.app_id)
        if args.action == "list":
            return await store.messages.list(ws)
        if args.action == "state":
            return await store.messages.set_state(ws, args.key, args.state)
        if args.gap_minutes is not None:
            await store.messages.set_gap_minutes(ws, args.gap_minutes or None)
        return await store.messages.gap_minutes(ws)

    result = asyncio.run(with_store(args.database, run))
    if args.action == "list":
        if args.json:
            print(json.dumps([m.document for m in result], indent=2, ensure_ascii=False))
        else:
            for m in result:
                print(f"{m.key:30} {m.kind:7} {m.state:9} on {m.event_name}")
            if not result:
                print("no messages yet: `trailmark message apply FILE` (docs/messages.md)")
        return 0
    if args.action == "state":
        if result is None:
            print(f"no message {args.key!r}", file=sys.stderr)
            return 1
        print(f"{result.key}: {result.state}")
        return 0
    print(f"at most one message per contact per {result} minutes" if result else
          "no minimum gap between messages (each message's own frequency applies)")
    return 0


def add_message_parser(sub: Any, default_db: str, db_help: str) -> None:
    """``trailmark message …``, registered by ``cli.build_parser``."""
    message = sub.add_parser(
        "message", help="event-triggered messages as code: apply, list, state, settings (docs/messages.md)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  trailmark message apply messages.json\n  trailmark message list --json > messages.json\n"
               "  trailmark message state upload-done paused\n  trailmark message settings --gap-minutes 30")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--app-id", help="the workspace (default: the only one)")
    common.add_argument("--database", default=default_db, help=db_help)
    actions = message.add_subparsers(dest="action", required=True)
    apply = actions.add_parser("apply", help="create or update messages from a JSON file (by key; idempotent)",
                               parents=[common])
    apply.add_argument("file", help="a JSON file holding one message or a list, or - for standard input")
    listing = actions.add_parser("list", help="the workspace's messages", parents=[common])
    listing.add_argument("--json", action="store_true", help="the documents, as `apply` takes them")
    state = actions.add_parser("state", help="make a message draft, live, paused or archived", parents=[common])
    state.add_argument("key")
    state.add_argument("state", choices=STATES)
    settings = actions.add_parser("settings", help="the workspace's gap between any two messages to a contact",
                                  parents=[common])
    settings.add_argument("--gap-minutes", type=int,
                          help="at most one message per contact per this many minutes, across all messages (0: off)")
    message.set_defaults(func=cmd_message)
