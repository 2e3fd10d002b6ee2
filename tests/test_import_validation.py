"""The importer's validation (server/import_validation.py, and read_row / validated_batches around it) gives
the live rules' verdicts: on a varied corpus with repeating key sets (so the per-key-set plans are reused with
other values), every event's name, time, kept metadata (the very JSON text), types, dropped entries with their
reasons, and every refusal's message are those of ``ingest.validate_event``."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from trailmark.errors import ApiError
from trailmark.import_validation import RowValidator, json_value
from trailmark.importer import RowError, read_jsonl, validated_batches
from trailmark.ingest import validate_event

NOW = 1_800_000_000
NAMES: list[Any] = ["signed-in", "Paid", " Upgraded ", "a.b$c", "", "   ", "x" * 256, "bad\nname", 7, None, True,
                    ["list"], "ünïcode", "paid"]
TIMES = [0, 1, NOW - 86400 * 300, NOW, NOW + 86400, NOW + 86401, -1, 10**11 + 5, 2**40]
KEYS = ["plan", "Plan", "seats", "renewal_at", "born_date", "url", "avatar", "invoice", "amount", "article",
        "bad.key", "a$b", "", "  ", "k" * 256, "nul\x00key", "Ünïcode", "comment"]
VALUES: list[Any] = [
    "pro", "", " ", "x" * 255, "x" * 256, "https://app.example.com/p/1?tab=a#top", "https://cdn.example.com/i/2.PNG",
    "http://[::1]/a.png", "https://", "http://exa mple.com", "ftp://example.com/a", "https://e.com/" + "a" * 2100,
    "in_abcdefgh1234", "cus_short", "ch_" + "a" * 65, 0, -3, 42, 2**53, 2**53 + 1, -(2**53) - 1, 1.5, -0.0, 1e300,
    float("inf"), float("nan"), 1_700_000_000, 253402300800, 253402300799, -62135596801, True, False, None,
    [1, 2], {"url": "https://e.com/a", "value": "Title"}, {"url": "https://e.com/a", "value": ""},
    {"url": "mailto:x", "value": "T"}, {"amount": 100, "currency": "USD"}, {"amount": -1, "currency": "usd"},
    {"amount": 100, "currency": "xyz"}, {"amount": True, "currency": "usd"}, {"amount": 5, "currency": "us"},
    {"nested": {"a": 1}}, "ünïcode \u2603", "quote \" and \\ backslash", "\x01control",
]


def key_sets(rnd: random.Random) -> list[tuple[str, ...]]:
    """A few dozen key sets, reused row after row (as an import's are): some all valid, some with refused or
    case-repeated keys, some past 20 keys."""
    sets = [("plan", "seats"), ("plan", "seats", "url"), ("renewal_at", "amount"), ("Plan", "plan"),
            ("plan", "Plan", "seats"), ("bad.key", "plan"), tuple(f"k{i}" for i in range(21)),
            tuple(f"k{i}" for i in range(20)), (*(f"k{i}" for i in range(20)), "bad.key")]
    for _ in range(30):
        sets.append(tuple(dict.fromkeys(rnd.choice(KEYS) for _ in range(rnd.randrange(1, 6)))))
    return sets


def live(name: Any, created_at: int, metadata: Any, strict: bool) -> Any:
    """The live path's verdict, in the importer's form (metadata as ``json.dumps`` text)."""
    try:
        ev = validate_event({"event_name": name, "created_at": created_at, "metadata": metadata}, strict=strict,
                            now=NOW, dedupe_key="")
    except ApiError as err:
        return ("refused", err.status, err.errors)
    return (ev.event_name, ev.created_at, json.dumps(ev.metadata) if ev.metadata else None,
            json.dumps(ev.metadata_types) if ev.metadata_types else None, ev.dropped)


def imported(validate: RowValidator, name: Any, created_at: int, metadata: Any) -> Any:
    try:
        return validate(name, created_at, metadata)
    except ApiError as err:
        return ("refused", err.status, err.errors)


def corpus(seed: int, n: int) -> list[tuple[Any, int, Any]]:
    rnd = random.Random(seed)
    sets = key_sets(rnd)
    rows: list[tuple[Any, int, Any]] = []
    for _ in range(n):
        shape = rnd.random()
        metadata: Any
        if shape < 0.05:
            metadata = rnd.choice([None, {}, [], "text", 3])
        elif shape < 0.1:  # 21 keys, all values fine (the 21st is dropped) or one dropped (all the others kept)
            metadata = {f"k{i}": i for i in range(21)}
            metadata[rnd.choice(["k0", "k20", "k5"])] = rnd.choice([1, None, [1]])
        else:
            metadata = {k: rnd.choice(VALUES) for k in rnd.choice(sets)}
        # Mostly valid names and times (the plans' path), the rest anything.
        name = rnd.choice(NAMES[:4]) if rnd.random() < 0.8 else rnd.choice(NAMES)
        created_at = rnd.choice(TIMES[:4]) if rnd.random() < 0.8 else rnd.choice(TIMES)
        rows.append((name, created_at, metadata))
    return rows


@pytest.mark.parametrize("strict", [False, True])
def test_import_verdicts_are_the_live_rules(strict):
    validate = RowValidator(strict=strict, now=NOW)
    rows = corpus(seed=11 + strict, n=6000)
    outcomes = [imported(validate, *row) for row in rows]
    assert outcomes == [live(*row, strict) for row in rows]
    # The corpus reaches every kind of verdict: kept metadata, dropped entries (strict: refused events), refused
    # events.
    assert any(o[0] != "refused" and o[2] for o in outcomes)
    assert strict or any(o[0] != "refused" and o[2] and o[4] for o in outcomes)
    assert any(o[0] == "refused" for o in outcomes)
    assert len({o[3] for o in outcomes if o[0] != "refused"}) > 10  # many type sets


def test_validated_batches_keep_the_live_verdicts_and_reasons(tmp_path):
    rnd = random.Random(5)
    lines: list[str] = []
    for name, created_at, metadata in corpus(seed=3, n=1500):
        row: dict[str, Any] = {"event_name": name, "created_at": created_at, "metadata": metadata}
        pick = rnd.random()
        if pick < 0.85:
            row["user_id"] = f"u-{rnd.randrange(50)}"
        elif pick < 0.9:
            row["email"] = "bad\x01@example.com"
        lines.append(json.dumps(row, allow_nan=True))
    lines += ["not json", "[1, 2]", '{"user_id": "u-1", "event_name": "x", "created_at": "yesterday"}']
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with path.open(encoding="utf-8-sig", newline="") as stream:
        batches = list(validated_batches(read_jsonl(stream), strict=False, now=NOW, chunk_rows=400))
    got: dict[int, tuple[str, Any]] = {line: ("valid", rest) for b in batches for line, *rest in b.valid}
    got.update({line: ("refused", reason) for b in batches for line, reason in b.refused})

    with path.open(encoding="utf-8-sig", newline="") as stream:
        for line, raw in read_jsonl(stream):
            if isinstance(raw, RowError):
                want: Any = ("refused", str(raw))
            elif not isinstance(raw, dict):
                want = ("refused", "row must be a JSON object")
            elif "user_id" not in raw and "email" not in raw:
                want = ("refused", "row needs a contact identifier: id, user_id or email")
            elif "email" in raw:
                want = ("refused", "email must not contain control characters")
            elif not isinstance(raw["created_at"], int):
                want = ("refused", "created_at must be unix seconds or an ISO-8601 date")
            elif raw["created_at"] > 10**11:
                want = ("refused", "created_at must be in seconds, not milliseconds")
            else:
                verdict = live(raw["event_name"], raw["created_at"], raw["metadata"], False)
                want = (("refused", verdict[2][0]["message"]) if verdict[0] == "refused"
                        else ("valid", ["user_id", raw["user_id"], *verdict]))
            assert got.pop(line) == want, line
    assert not got


def test_json_value_writes_what_json_dumps_writes():
    for value in ["plain", "ünïcode \u2603 \U0001f600", "quote \" \\ \n\t\x01", 0, -5, 2**53, 1.5, -0.0, 1e300,
                  1e-7, 0.1 + 0.2, {"url": "https://e.com/ä", "value": "Tïtle"}, {"amount": 5, "currency": "usd"}]:
        assert json_value(value) == json.dumps(value)


def test_verdicts_hold_past_the_caches_bounds(monkeypatch):
    """Past its bounds the validator stops caching (types' texts) or starts over (plans): same verdicts."""
    from trailmark import import_validation

    monkeypatch.setattr(import_validation, "_TYPES_LIMIT", 2)
    monkeypatch.setattr(import_validation, "_PLANS_LIMIT", 5)
    validate = RowValidator(strict=False, now=NOW)
    rows = corpus(seed=23, n=3000)
    assert [imported(validate, *row) for row in rows] == [live(*row, False) for row in rows]
