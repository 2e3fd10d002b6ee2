"""How tracked values look in the admin: metadata by its stored type, money, dates, Stripe links.

Everything here returns plain text and URLs; the templates escape the text (autoescape), and a URL becomes
an ``href`` or ``src`` only after :func:`safe_url` accepted it *at render time* (http or https, no control
characters), whatever the stored type says. Nothing here returns markup.

Source of the types: Intercom's event-tracking product document, "Event Metadata" (server/metadata.py
decides and stores them).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ..metadata import (
    DATE,
    IMAGE,
    LINK,
    MONEY,
    NUMBER,
    RICH_LINK,
    STRIPE,
    display_name,
    is_http_url,
)
from .image_hosts import is_local_url

# Symbols for the currencies people meet most; others show as "349.99 XYZ".
CURRENCY_SYMBOLS = {
    "usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "cny": "CN¥", "inr": "₹", "krw": "₩", "brl": "R$",
    "cad": "CA$", "aud": "A$", "nzd": "NZ$", "mxn": "MX$", "hkd": "HK$", "ils": "₪", "php": "₱",
    "vnd": "₫", "twd": "NT$", "rub": "₽", "try": "₺", "ngn": "₦", "uah": "₴", "thb": "฿", "pln": "zł ",
}
# ISO 4217 minor units where they are not 2 (as Stripe counts them: amounts are in the smallest unit).
ZERO_DECIMAL = frozenset({"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd",
                          "vuv", "xaf", "xof", "xpf", "isk"})
THREE_DECIMAL = frozenset({"bhd", "jod", "kwd", "omr", "tnd", "iqd", "lyd"})

# Stripe object id prefix → dashboard section (seed doc: "A Stripe invoice, customer or charge
# identifier, which we'll create a link to").
STRIPE_SECTIONS = {"in": "invoices", "cus": "customers", "ch": "payments", "py": "payments", "pi": "payments"}
_STRIPE_ID = re.compile(r"^(in|cus|ch|py|pi)_[A-Za-z0-9]{1,128}$")


LOCAL_IMAGE = "Not loaded: this image is on a loopback, private or local address"


@dataclass(frozen=True)
class Shown:
    """One metadata entry as the admin shows it: ``text`` always; ``href`` for a link, ``src`` for an
    image (both already checked); ``title`` for the hover text."""

    key: str
    label: str
    kind: str
    text: str
    href: str | None = None
    src: str | None = None
    title: str | None = None


def safe_url(value: Any) -> str | None:
    """``value`` if it is an http(s) URL fit for ``href``/``src``, else ``None``. Checked on every render:
    the stored type is never trusted on its own (an old row, a bug, a hand-edited database)."""
    if not isinstance(value, str) or not is_http_url(value):
        return None
    return value


def format_money(amount: Any, currency: Any) -> str:
    """``34999, 'eur'`` → ``€349.99``; ``500, 'jpy'`` → ``¥500``; unknown symbols → ``349.99 XYZ``."""
    code = str(currency or "").lower()
    if isinstance(amount, bool) or not isinstance(amount, int):
        return f"{amount} {code.upper()}".strip()
    places = 0 if code in ZERO_DECIMAL else 3 if code in THREE_DECIMAL else 2
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10 ** places)
    number = f"{whole:,}" + (f".{frac:0{places}d}" if places else "")
    symbol = CURRENCY_SYMBOLS.get(code)
    return f"{sign}{symbol}{number}" if symbol else f"{sign}{number} {code.upper()}"


def stripe_url(value: Any) -> str | None:
    """The Stripe dashboard page of an invoice, customer or payment id (``None`` for anything else)."""
    if not isinstance(value, str) or not _STRIPE_ID.match(value):
        return None
    section = STRIPE_SECTIONS[value.split("_", 1)[0]]
    return f"https://dashboard.stripe.com/{section}/{quote(value, safe='')}"


def utc(ts: float | None) -> str:
    """Exact time in UTC: ``2025-03-04 14:03:12 UTC``."""
    if ts is None:
        return ""
    return _dt(ts).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(ts: float | None) -> str:
    """Machine-readable UTC time for ``<time datetime>``."""
    return "" if ts is None else _dt(ts).strftime("%Y-%m-%dT%H:%M:%SZ")


def human_date(ts: float | None, with_time: bool = True) -> str:
    """``4 Mar 2025, 14:03 UTC`` (or ``4 Mar 2025``)."""
    if ts is None:
        return ""
    d = _dt(ts)
    text = f"{d.day} {d.strftime('%b %Y')}"
    return f"{text}, {d.strftime('%H:%M')} UTC" if with_time else text


def ago(ts: float | None, now: float) -> str:
    """``just now``, ``5 minutes ago``, ``in 3 days``; past 30 days the date itself."""
    if ts is None:
        return "never"
    delta = int(now - ts)
    future = delta < 0
    delta = abs(delta)
    if delta < 60:
        return "just now"
    if delta >= 30 * 86400:
        return human_date(ts, with_time=False)
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if delta >= size:
            n = delta // size
            text = f"{n} {unit}{'' if n == 1 else 's'}"
            return f"in {text}" if future else f"{text} ago"
    return "just now"  # pragma: no cover - unreachable


def show_value(key: str, value: Any, kind: str | None) -> Shown:
    """One metadata entry, by the type stored beside it (``None``: an untyped legacy value, as text)."""
    label = display_name(key)
    if kind == DATE and isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return Shown(key, label, kind, human_date(value), title=utc(value))
        except (OverflowError, OSError, ValueError):
            pass
    elif kind in (LINK, IMAGE):
        url = safe_url(value)
        if url and kind == IMAGE and not is_local_url(url):
            return Shown(key, label, kind, url, href=url, src=url)
        if url and kind == IMAGE:
            # Loading it would send the teammate's browser into their own network: a link only.
            return Shown(key, label, kind, url, href=url, title=LOCAL_IMAGE)
        if url:
            return Shown(key, label, kind, url, href=url)
    elif kind == RICH_LINK and isinstance(value, dict):
        text = str(value.get("value") or value.get("url") or "")
        return Shown(key, label, kind, text, href=safe_url(value.get("url")), title=_str(value.get("url")))
    elif kind == STRIPE:
        return Shown(key, label, kind, _str(value), href=stripe_url(value))
    elif kind == MONEY and isinstance(value, dict):
        return Shown(key, label, kind, format_money(value.get("amount"), value.get("currency")))
    elif kind == NUMBER and isinstance(value, (int, float)) and not isinstance(value, bool):
        return Shown(key, label, kind, f"{value:,}" if isinstance(value, int) else f"{value:,.10g}")
    return Shown(key, label, kind or "string", _str(value))


def show_metadata(metadata: dict[str, Any], types: dict[str, str]) -> list[Shown]:
    """Every metadata entry of an event, in the order it was sent."""
    return [show_value(key, value, types.get(key)) for key, value in metadata.items()]


def show_avatar(url: str | None) -> Shown | None:
    """A contact's avatar: an image when it is an http(s) URL on a public host, else a link or text."""
    return show_value("avatar", url, IMAGE) if url else None


def show_attribute(value: Any) -> str:
    """A custom attribute value as text."""
    return _str(value)


def _str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _dt(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC)
