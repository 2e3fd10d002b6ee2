"""Strict JSON: RFC 8259 as a browser's ``JSON.stringify`` writes it, and nothing Python's json would also
take. Pure (no HTTP): the edge (``http_edge.parse_json``) turns a refusal into a 400, the importer into a
refused row.

Refused, with a :class:`ValueError` saying why: anything but UTF-8 (a UTF-16 payload, raw surrogates),
nesting deeper than :data:`MAX_DEPTH`, NaN/Infinity and numbers that overflow to infinity (1e400), integers
past Python's 4,300-digit limit, and escaped lone surrogates ("\\ud800"), which no UTF-8 database text can
hold.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

# Real payloads nest a handful of levels (a Stripe invoice about 8); Python's json recurses per level and
# raises RecursionError near 1,000, so deeper input is refused before it is parsed.
MAX_DEPTH = 32


class Refused(ValueError):
    """Not strict JSON, for a reason worth telling the sender ("it is not UTF-8 text", …)."""


def loads(raw: bytes | str) -> Any:
    """The JSON value of ``raw``, or ValueError (:class:`Refused` when the reason is ours)."""
    text = None
    if isinstance(raw, str):
        if raw.isascii():  # the common case: decoding its bytes would give it back (no surrogate, no BOM)
            text = raw
        raw = raw.encode("utf-8", "surrogatepass")  # a lone surrogate in a str stays one, and is refused
    if text is None:
        try:
            # Decoded strictly: json.loads(bytes) would guess UTF-16/32 and let UTF-8-encoded surrogates through.
            # A BOM is dropped as "utf-8-sig" would (that codec is Python code, dearer than the decoding).
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise Refused("it is not UTF-8 text") from None
        if text.startswith("\ufeff"):
            text = text[1:]
    if too_deep(raw):
        raise Refused(f"it nests deeper than {MAX_DEPTH} levels (or its brackets do not pair up)")
    try:
        data = _DECODER.decode(text)
    except RecursionError:  # belt and braces: too_deep should have caught it
        raise Refused(f"it nests deeper than {MAX_DEPTH} levels") from None
    if _SURROGATE_ESCAPE.search(raw) and _has_lone_surrogate(data):
        raise Refused("it contains an unpaired UTF-16 surrogate")
    return data


# A JSON string (escapes included), removed before counting brackets: brackets inside strings don't nest.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_TO_PARENS = bytes.maketrans(b"[{]}", b"(())")
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))


def too_deep(raw: bytes) -> bool:
    """Nesting past MAX_DEPTH (or brackets that do not pair up), found without recursion and at C speed:
    each pass drops the innermost "()" pairs, so a document at most MAX_DEPTH deep is empty after
    MAX_DEPTH passes."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return False
    shape = _STRING.sub(b"", raw).translate(_TO_PARENS, _NOT_BRACKETS)
    for _ in range(MAX_DEPTH):
        if not shape:
            return False
        shape = shape.replace(b"()", b"")
    return bool(shape)


def _finite_float(text: str) -> float:
    # JSON.stringify never emits NaN/Infinity and 1e400 overflows to inf; a non-finite number would crash
    # int(), poison stored JSON (Starlette refuses to render it) and reach SQL.
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text}")
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# What json.loads(text, parse_float=…, parse_constant=…) builds on every call, built once: the decoder and its
# scanner cost about as much as decoding a short line (the importer decodes one per row).
_DECODER = json.JSONDecoder(parse_float=_finite_float, parse_constant=_refuse_constant)


# "\ud800" alone decodes to a lone surrogate; escaped pairs (emoji from ensure_ascii encoders) decode to one
# code point. The full check runs only when such an escape is present.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _has_lone_surrogate(data: Any) -> bool:
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
