"""Limits and small coercers every endpoint shares, defined once (no HTTP here: plain values and checks)."""

from __future__ import annotations

import re

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_ATTRIBUTES = 100  # custom attributes per contact (Messenger, REST, Segment traits)
MAX_ATTRIBUTE_LENGTH = 255  # custom attribute names and string values; contact text fields
MAX_SAFE_INT = 2**53  # beyond it JavaScript (the shim, the admin, the SDKs) cannot hold an integer exactly
MAX_TIMESTAMP = 253402300799  # 9999-12-31T23:59:59Z: anything larger is surely milliseconds or garbage
MAX_SQL_INT = 2**63 - 1  # a SQL BIGINT: a larger parameter makes the database driver raise

_ASCII_INT = re.compile(r"-?[0-9]{1,19}")


def ascii_int(text: str | None, *, minimum: int = -MAX_SQL_INT, maximum: int = MAX_SQL_INT) -> int | None:
    """``text`` as an integer when it is 1 to 19 ASCII digits (an optional ``-``) within the bounds, else
    ``None``. ``int()`` alone is not enough: it takes "²"-style and Arabic-Indic digits ("٣" is 3, while
    ``"²".isdigit()`` is True and ``int("²")`` raises), surrounding spaces, "_" separators, and raises on
    numbers past Python's 4,300-digit conversion limit."""
    if text is None or not _ASCII_INT.fullmatch(text):
        return None
    value = int(text)
    return value if minimum <= value <= maximum else None


def has_nul(text: str) -> bool:
    """PostgreSQL's text type cannot hold NUL (SQLite's can): one rule for both stores is to refuse it."""
    return "\x00" in text
