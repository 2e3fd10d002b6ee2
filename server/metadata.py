"""The product document's rules for event names and event metadata.

Source: Intercom's event-tracking product document, "Event Metadata" (requirements, not suggestions):
up to twenty pieces of metadata; string (≤ 255 chars), number, date, link, rich link, image, Stripe id,
monetary amount; key names case-insensitive and free of ``.``, ``$``, ``~`!@#%^&*'{}|\\"`` and NUL;
dashes are not displayed. The type of every kept value is decided here, once, and stored beside it, so
every reader (REST, admin timeline) renders it without guessing.

A metadata entry that breaks a rule is *dropped* with a reason; the event itself is kept
(Intercom ignores the extra keys). Callers decide whether drops are reported or fatal (strict mode).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .currencies import is_currency
from .limits import MAX_SAFE_INT, MAX_TIMESTAMP

MAX_METADATA_KEYS = 20  # seed doc: "up to twenty pieces of metadata"
MAX_STRING_LENGTH = 255  # seed doc: "A plain string up to 255 characters long"
MAX_URL_LENGTH = 2048  # our choice: links are not plain strings; browsers cope with 2 KB URLs everywhere
MAX_KEY_LENGTH = 255  # our choice, so a key always fits an index and a table cell
MAX_EVENT_NAME_LENGTH = 255  # Intercom publishes no limit; 255 is the API notes' suggestion
MAX_NUMBER = MAX_SAFE_INT  # beyond this a JavaScript reader loses precision
# Dates are unix *seconds*; anything past year 9999 is almost surely milliseconds.
MAX_DATE = MAX_TIMESTAMP
MIN_DATE = -62135596800

FORBIDDEN_KEY_CHARS = set(".$~`!@#%^&*'{}|\\\"\x00")
DATE_KEY_SUFFIXES = ("_date", "_at")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg", ".avif", ".bmp", ".ico")
# Stripe object ids the seed names: invoices, customers, charges.
STRIPE_ID = re.compile(r"^(in|cus|ch)_[A-Za-z0-9]{8,64}$")
CURRENCY = re.compile(r"^[A-Za-z]{3}$")
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")

# The metadata types, as stored beside each value.
STRING, NUMBER, DATE, LINK, RICH_LINK, IMAGE, STRIPE, MONEY = (
    "string", "number", "date", "link", "rich_link", "image", "stripe", "money")


@dataclass(frozen=True)
class Drop:
    """One metadata entry that was not kept, and why."""

    key: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"key": self.key, "reason": self.reason}


@dataclass
class CleanMetadata:
    """Kept values (JSON as Intercom returns them), their types, and what was dropped."""

    values: dict[str, Any] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    dropped: list[Drop] = field(default_factory=list)


class InvalidEventName(ValueError):
    pass


# What the sender hears when its event name had a '.' or '$' (the name is stored renamed, never refused). One
# text for every rename, so reports that count reasons group them; the stored name goes in its own field.
RENAMED_EVENT_NAME = "'.' and '$' are not allowed in event names: stored renamed (see stored_as)"


def is_renamed(raw: Any) -> bool:
    """Does normalising this (valid) event name replace a '.' or '$'?"""
    return isinstance(raw, str) and ("." in raw or "$" in raw)


def normalize_event_name(raw: Any) -> str:
    """Trim, lower-case, and replace ``.``/``$`` by ``-`` (Intercom's v1 event model)."""
    if type(raw) is str:
        known = _NAMES.get(raw)
        if known is not None:
            return known
    if not isinstance(raw, str):
        raise InvalidEventName("event_name must be a string")
    name = raw.strip().lower().replace(".", "-").replace("$", "-")
    if not name:
        raise InvalidEventName("event_name must not be empty")
    if len(name) > MAX_EVENT_NAME_LENGTH:
        raise InvalidEventName(f"event_name is longer than {MAX_EVENT_NAME_LENGTH} characters")
    if CONTROL_CHARS.search(name):
        raise InvalidEventName("event_name must not contain control characters")
    if type(raw) is str:
        if len(_NAMES) >= _KEYS_LIMIT:
            _NAMES.clear()
        _NAMES[raw] = name
    return name


def display_name(name: str) -> str:
    """How a key or event name is shown: dashes are not displayed ('invited-friend' → 'Invited friend').

    Underscores are shown as spaces too (our choice: the seed's own example keys are snake_case, such as
    ``file_location``, and a teammate reads "File location" more easily). The stored key is unchanged, so
    'file_location' and 'file location' stay different data, exactly as the seed says of dashes."""
    text = " ".join(name.replace("-", " ").replace("_", " ").split())
    return text[:1].upper() + text[1:]


def check_key(raw: Any) -> str:
    """Return the stored form of a key (case-insensitive → lower case) or raise ValueError."""
    if not isinstance(raw, str):
        raise ValueError("key must be a string")
    key = raw.strip().lower()
    if not key:
        raise ValueError("key must not be empty")
    if len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"key is longer than {MAX_KEY_LENGTH} characters")
    bad = sorted({c for c in key if c in FORBIDDEN_KEY_CHARS})
    if bad:
        shown = " ".join("NUL" if c == "\x00" else c for c in bad)
        raise ValueError(f"key contains characters that are not allowed: {shown}")
    return key


def is_http_url(value: str) -> bool:
    return _http_url_path(value) is not None


def _http_url_path(value: str) -> str | None:
    """The path of an http(s) URL (what ``urlsplit`` calls its path), or None if ``value`` is not one."""
    if len(value) > MAX_URL_LENGTH or CONTROL_CHARS.search(value) or " " in value:
        return None
    # The common case, without urlsplit (a third of the time of a row of metadata, measured): an ASCII
    # http(s) URL with no IPv6 brackets, the only ones urlsplit can refuse. Its parts are found exactly
    # as urlsplit finds them: the netloc runs from "//" to the first "/", "?" or "#"; the path from
    # there to the first "?" or "#". tests/test_metadata.py compares both on many URLs.
    if value.startswith("https://"):
        start = 8
    elif value.startswith("http://"):
        start = 7
    else:
        start = 0
    if start and value.isascii() and "[" not in value and "]" not in value:
        end = len(value)
        for delim in "/?#":
            found = value.find(delim, start)
            if 0 <= found < end:
                end = found
        if end == start:  # no host
            return None
        rest = value[end:]
        if "#" in rest:
            rest = rest.split("#", 1)[0]
        if "?" in rest:
            rest = rest.split("?", 1)[0]
        return rest
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    return parts.path if parts.scheme in ("http", "https") and parts.netloc else None


def classify_value(key: str, value: Any) -> tuple[str, Any]:
    """Decide the type of one metadata value; return ``(type, stored value)`` or raise ValueError."""
    kind = type(value)  # the usual types first (exact types: a bool is not an int here)
    if kind is str:
        return _classify_string(value)
    if kind is int or kind is float:
        return _classify_number(key, value)
    if value is None:
        raise ValueError("null values are not stored")
    if isinstance(value, bool):
        raise ValueError("booleans are not a supported metadata type (send a string such as \"yes\")")
    if isinstance(value, (int, float)):
        return _classify_number(key, value)
    if isinstance(value, str):
        return _classify_string(value)
    if isinstance(value, dict):
        return _classify_object(value)
    if isinstance(value, list):
        raise ValueError("lists are not supported (metadata is flat)")
    raise ValueError("unsupported value type")


def _classify_number(key: str, value: int | float) -> tuple[str, Any]:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("number must be finite")
    if abs(value) > MAX_NUMBER:
        raise ValueError("number is too large (beyond ±2^53)")
    if key.endswith(DATE_KEY_SUFFIXES):
        if value > MAX_DATE or value < MIN_DATE:
            raise ValueError("dates are unix timestamps in seconds; this looks like milliseconds")
        return DATE, int(value)
    return NUMBER, value


def _classify_string(value: str) -> tuple[str, Any]:
    if value.startswith(("http://", "https://")):
        path = _http_url_path(value)
        if path is not None:
            return (IMAGE if path.lower().endswith(IMAGE_EXTENSIONS) else LINK), value
    if len(value) > MAX_STRING_LENGTH:
        raise ValueError(f"string is longer than {MAX_STRING_LENGTH} characters")
    if STRIPE_ID.match(value):
        return STRIPE, value
    return STRING, value


def _classify_object(value: dict[str, Any]) -> tuple[str, Any]:
    keys = set(value)
    if keys == {"url", "value"}:
        url, title = value["url"], value["value"]
        if not isinstance(url, str) or not is_http_url(url):
            raise ValueError("rich link url must be an http or https URL")
        if not isinstance(title, str) or not title.strip() or len(title) > MAX_STRING_LENGTH:
            raise ValueError(f"rich link value must be a non-empty string of at most {MAX_STRING_LENGTH} characters")
        return RICH_LINK, {"url": url, "value": title}
    if keys == {"amount", "currency"}:
        amount, currency = value["amount"], value["currency"]
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0 or amount > MAX_NUMBER:
            raise ValueError("monetary amount must be a non-negative integer number of cents")
        if not isinstance(currency, str) or not CURRENCY.match(currency):
            raise ValueError("monetary currency must be a three-letter ISO 4217 code")
        if not is_currency(currency):
            raise ValueError(f"monetary currency '{currency}' is not an ISO 4217 currency code")
        return MONEY, {"amount": amount, "currency": currency.lower()}
    raise ValueError("nested objects are not supported, except {url, value} rich links "
                     "and {amount, currency} monetary amounts")


def validate_metadata(raw: Any) -> CleanMetadata:
    """Apply every metadata rule, in the order the keys were sent.

    ``raw`` must already be a dict (the request parser refuses other top-level types).
    """
    clean = CleanMetadata()
    for raw_key, value in raw.items():
        checked = _KEYS.get(raw_key) if type(raw_key) is str else None
        if checked is None:
            checked = _check_key_once(raw_key)
        key, shown, refused = checked
        if refused is not None:
            clean.dropped.append(Drop(shown, refused))
            continue
        if key in clean.values:
            clean.dropped.append(Drop(shown, "duplicate key (key names are case-insensitive)"))
            continue
        if len(clean.values) >= MAX_METADATA_KEYS:
            clean.dropped.append(Drop(shown, f"more than {MAX_METADATA_KEYS} metadata keys"))
            continue
        try:
            kind, stored = classify_value(key, value)
        except ValueError as exc:
            clean.dropped.append(Drop(shown, str(exc)))
            continue
        clean.values[key] = stored
        clean.types[key] = kind
    return clean


# Keys repeat from event to event (an import of 100,000 rows has a few dozen), so each distinct key is
# checked once (and each event name normalized once, in normalize_event_name): raw key → (stored key,
# shown key, None) or (None, shown key, why it is refused). Bounded: emptied when full, so a stream of
# distinct keys costs what it did without the cache.
_KEYS: dict[str, tuple[str, str, str | None]] = {}
_NAMES: dict[str, str] = {}  # the same for event names: raw name → normalized name (valid ones only)
_KEYS_LIMIT = 4096


def checked_key(raw_key: Any) -> tuple[Any, str, str | None]:
    """validate_metadata's key step: ``(stored key, shown key, None)``, or ``(None, shown key, why it is
    refused)``."""
    checked = _KEYS.get(raw_key) if type(raw_key) is str else None
    return checked if checked is not None else _check_key_once(raw_key)


def _check_key_once(raw_key: Any) -> tuple[Any, str, str | None]:
    # A NUL is shown escaped: drops are counted in the database, and PostgreSQL text cannot hold NUL.
    shown = raw_key.replace("\x00", "\\u0000") if isinstance(raw_key, str) else repr(raw_key)
    try:
        checked: tuple[Any, str, str | None] = (check_key(raw_key), shown, None)
    except ValueError as exc:
        checked = (None, shown, str(exc))
    if type(raw_key) is str:
        if len(_KEYS) >= _KEYS_LIMIT:
            _KEYS.clear()
        _KEYS[raw_key] = checked
    return checked
