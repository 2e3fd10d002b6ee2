"""Does this event trigger the message? Its name, its age, its metadata conditions, first time or every time.

Metadata conditions compare by the type ``metadata.py`` gave the value (stored beside it):

- string, link, image, Stripe id: ``eq`` (ignoring case), ``contains`` (ignoring case); a rich link by its text;
- number: ``eq gt lt gte lte``; money: the same on the amount in cents (and, with ``currency``, only in it);
- date: ``before`` / ``after`` a moment (unix seconds);
- any type: ``exists``.

An op that does not fit the value's type fails, and says so.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from .document import NUMBER_OPS, Condition, Trigger
from .rules import RECENT_SECONDS, History, Rule, TrackedEvent

TEXT_TYPES = ("string", "link", "image", "stripe", "rich_link")


def _when(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%d %b %Y %H:%M UTC").lstrip("0")


def _compare(op: str, left: float, right: float) -> bool:
    return {"eq": left == right, "gt": left > right, "lt": left < right, "gte": left >= right,
            "lte": left <= right}[op]


WORDS = {"eq": "equals", "contains": "contains", "gt": "is more than", "lt": "is less than",
         "gte": "is at least", "lte": "is at most", "before": "is before", "after": "is after", "exists": "exists"}


def check_condition(cond: Condition, metadata: Mapping[str, Any], types: Mapping[str, str]) -> Rule:
    """One metadata condition against the event's metadata, with the reason."""
    shown = f"{cond.key} {WORDS[cond.op]}" + ("" if cond.op == "exists" else f" {cond.value!r}")
    if cond.key not in metadata:
        return Rule("metadata", False, f"The event has no {cond.key} (needed: {shown}).")
    if cond.op == "exists":
        return Rule("metadata", True, f"The event has {cond.key}.")
    value, kind = metadata[cond.key], types.get(cond.key, "string")
    ok: bool
    if kind in TEXT_TYPES:
        text = str(value.get("value", "")) if isinstance(value, Mapping) else str(value)
        if cond.op == "eq" and isinstance(cond.value, str):
            ok = text.casefold() == cond.value.casefold()
        elif cond.op == "contains":
            ok = str(cond.value).casefold() in text.casefold()
        else:
            return Rule("metadata", False, f"{cond.key} is text ({text!r}): {WORDS[cond.op]} does not apply.")
        return Rule("metadata", ok, f"{cond.key} is {text!r}: {'matches' if ok else 'does not match'} {shown}.")
    if kind in ("number", "money"):
        if cond.op not in NUMBER_OPS or isinstance(cond.value, str):
            return Rule("metadata", False, f"{cond.key} is a {kind}: {WORDS[cond.op]} {cond.value!r} does not apply.")
        if kind == "money":
            assert isinstance(value, Mapping)
            amount, currency = value["amount"], value["currency"]
            if cond.currency and cond.currency != currency:
                return Rule("metadata", False, f"{cond.key} is in {currency.upper()}, not {cond.currency.upper()}.")
            ok = _compare(cond.op, amount, cond.value)
            return Rule("metadata", ok, f"{cond.key} is {amount} cents {currency.upper()}: "
                                        f"{'matches' if ok else 'does not match'} {shown} cents.")
        ok = _compare(cond.op, value, cond.value)
        return Rule("metadata", ok, f"{cond.key} is {value}: {'matches' if ok else 'does not match'} {shown}.")
    if kind == "date":
        if cond.op not in ("before", "after"):
            return Rule("metadata", False, f"{cond.key} is a date: use before or after, not {cond.op}.")
        ok = value < cond.value if cond.op == "before" else value > cond.value
        return Rule("metadata", ok, f"{cond.key} is {_when(value)}: {'is' if ok else 'is not'} {cond.op} "
                                    f"{_when(cond.value)}.")
    return Rule("metadata", False, f"{cond.key} has a type ({kind}) conditions cannot compare.")


def trigger_rules(trigger: Trigger, event: TrackedEvent, history: History, now: int) -> list[Rule]:
    """The name, the age (recent, after going live), each metadata condition, first time."""
    rules = [Rule("trigger", event.name == trigger.event,
                  f"The event is {event.name}" + (" (the trigger)." if event.name == trigger.event
                                                  else f", not {trigger.event}."))]
    received = event.received_at if event.received_at is not None else now
    if history.went_live_at is None:
        rules.append(Rule("recent", False, "The message has never been live."))
    elif received < history.went_live_at or event.created_at < history.went_live_at:
        rules.append(Rule("recent", False, "The event happened before the message went live."))
    elif event.created_at < now - RECENT_SECONDS:
        rules.append(Rule("recent", False, f"The event is older than {RECENT_SECONDS // 60} minutes "
                                           f"({_when(event.created_at)}): only recent events trigger."))
    else:
        rules.append(Rule("recent", True, "The event is recent and after the message went live."))
    rules += [check_condition(c, event.metadata, event.metadata_types) for c in trigger.metadata]
    if trigger.when == "first_time":
        first = history.earlier_occurrences == 0
        rules.append(Rule("first_time", first, "The first time since the message went live." if first else
                          f"Not the first time: done {history.earlier_occurrences} time(s) before since the "
                          "message went live."))
    return rules
