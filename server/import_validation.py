"""The live event rules (``ingest.validate_event``, ``metadata.validate_metadata``), run the importer's way:
each distinct metadata key set is planned once, and the outcome comes out as the JSON text the events table
stores.

An import repeats itself: 100,000 rows carry a few dozen key sets and a dozen event names. So the key
checks (the stored key, a refused key's reason) are looked up once per key set, not once per row, and a
row's work is classifying its values (``metadata.classify_value``: the live function itself) and writing
the JSON text beside them (what ``json.dumps`` would write, without building the dicts first).

Nothing is decided here that the live path does not decide: any row off the common shape (an event name
not yet seen valid, a ``created_at`` out of bounds, metadata that is not an object, a key set with repeated
or more than 20 usable keys, a strict workspace's drop) goes through ``ingest.validate_event`` itself,
which gives the verdict and the error message. ``tests/test_import_validation.py`` checks both ways agree
on a varied corpus.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii as json_string  # json.dumps's own string encoder
from typing import Any

from .ingest import FUTURE_SKEW, validate_event
from .metadata import MAX_METADATA_KEYS, checked_key, classify_value, normalize_event_name

# (event name, created_at, metadata as JSON text or None, metadata types as JSON text or None, dropped)
ValidEvent = tuple[str, int, str | None, str | None, list[dict[str, str]]]

# One key of a planned key set: (raw key, shown key, refused reason or None, stored key, '"key": ')
_PlannedKey = tuple[str, str, str | None, str, str]
_PLANS_LIMIT = 4096  # distinct key sets kept; emptied when full (a file of ever-new key sets costs a re-plan)
_TYPES_LIMIT = 256  # types' texts kept per key set (a real file has a few; a file of ever-new mixes is not cached)


class _Plan:
    """A key set's checks, done once: per key, why it is refused or how it is written; and the types' JSON
    text per sequence of the usable keys' kinds (the same few recur)."""

    __slots__ = ("keys", "types_json", "usable")

    def __init__(self, keys: list[_PlannedKey]) -> None:
        self.keys = keys
        self.usable = [key for _, _, refused, key, _ in keys if refused is None]  # the stored keys, in order
        self.types_json: dict[tuple[str | None, ...], str] = {}


def _plan(raw_keys: tuple[Any, ...]) -> _Plan | None:
    """The key set's plan; None where a value could change a key's verdict (a repeated stored key is a
    duplicate only after a kept value; past 20 usable keys, only kept values count): those go the live way."""
    keys: list[_PlannedKey] = []
    stored: set[str] = set()
    for raw_key in raw_keys:
        if type(raw_key) is not str:
            return None
        key, shown, refused = checked_key(raw_key)
        if refused is None:
            if key in stored:
                return None
            stored.add(key)
        keys.append((raw_key, shown, refused, key, json_string(key) + ": " if refused is None else ""))
    if len(stored) > MAX_METADATA_KEYS:
        return None
    return _Plan(keys)


def json_value(value: Any) -> str:
    """``json.dumps(value)`` for the values classify_value keeps (strings, ints, finite floats, and the flat
    objects of rich links and monetary amounts)."""
    kind = type(value)
    if kind is str:
        return json_string(value)
    if kind is int or kind is float:
        return repr(value)  # what json's encoder writes for an int, or a finite float
    if kind is dict:
        return "{" + ", ".join(json_string(k) + ": " + json_value(v) for k, v in value.items()) + "}"
    return json.dumps(value)


class RowValidator:
    """``validator(event name, created_at, metadata)`` → :data:`ValidEvent`, or the live path's ApiError."""

    def __init__(self, *, strict: bool, now: int) -> None:
        self.strict = strict
        self.now = now
        self._plans: dict[tuple[Any, ...], _Plan | None] = {}

    def __call__(self, name: Any, created_at: int, metadata: Any) -> ValidEvent:
        if type(name) is not str or not 0 <= created_at <= self.now + FUTURE_SKEW:
            return self._live(name, created_at, metadata)
        try:
            event_name = normalize_event_name(name)
        except ValueError:
            return self._live(name, created_at, metadata)
        if metadata is None or (type(metadata) is dict and not metadata):
            return event_name, created_at, None, None, []
        if type(metadata) is not dict:
            return self._live(name, created_at, metadata)
        raw_keys = tuple(metadata)
        if raw_keys in self._plans:
            plan = self._plans[raw_keys]
        else:
            if len(self._plans) >= _PLANS_LIMIT:
                self._plans.clear()
            plan = self._plans[raw_keys] = _plan(raw_keys)
        if plan is None:
            return self._live(name, created_at, metadata)
        parts: list[str] = []
        kinds: list[str | None] = []  # per usable key: its value's kind, None where the value was dropped
        dropped: list[dict[str, str]] = []
        for raw_key, shown, refused, key, key_json in plan.keys:
            if refused is None:
                try:
                    kind, stored = classify_value(key, metadata[raw_key])
                except ValueError as exc:
                    refused = str(exc)
                    kinds.append(None)
                else:
                    parts.append(key_json + json_value(stored))
                    kinds.append(kind)
                    continue
            dropped.append({"key": shown, "reason": refused})
        if dropped and self.strict:  # the event is refused: the live path says how
            return self._live(name, created_at, metadata)
        if not parts:
            return event_name, created_at, None, None, dropped
        kinds_key = tuple(kinds)
        types_json = plan.types_json.get(kinds_key)
        if types_json is None:
            types_json = json.dumps({key: kind for key, kind in zip(plan.usable, kinds, strict=True) if kind})
            if len(plan.types_json) < _TYPES_LIMIT:
                plan.types_json[kinds_key] = types_json
        return event_name, created_at, "{" + ", ".join(parts) + "}", types_json, dropped

    def _live(self, name: Any, created_at: int, metadata: Any) -> ValidEvent:
        event = validate_event({"event_name": name, "created_at": created_at, "metadata": metadata},
                               strict=self.strict, now=self.now, dedupe_key="")
        return (event.event_name, event.created_at, json.dumps(event.metadata) if event.metadata else None,
                json.dumps(event.metadata_types) if event.metadata_types else None, event.dropped)
