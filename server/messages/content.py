"""A message's words: placeholders, their filters, and the HTML allow-list of Intercom's ``POST /messages``.

Placeholders: ``{{event.<key>}}`` (the triggering event's metadata) and ``{{contact.<attr>}}`` (``name``,
``email``, ``user_id``, ``phone``, ``role`` or a custom attribute), each optionally followed by filters:
``| fallback: "there"`` (used when the value is missing or empty), ``| date`` (unix seconds → "2 Dec 2026"),
``| money`` (money metadata ``{amount, currency}`` → "€349.99"). The result is **text**: whatever a value holds
(``<script>``, ``<b>``) is shown as those characters, never interpreted; the renderer must set it as text
(``textContent``), and :func:`text_as_html` escapes it for a page that needs HTML.

Intercom's ``POST /messages`` body is HTML; only ``p a b i br`` survive, links only with an absolute http(s)
``href``. The sanitiser is nh3 (Python bindings to Ammonia, a maintained Rust HTML sanitiser built on the
html5ever parser): it parses as a browser does (unclosed and misnested tags, comments, entities, ``<script>``
and ``<style>`` contents dropped rather than kept as text), which a hand-written ``html.parser`` allow-list
gets subtly wrong; the ``attribute_filter`` keeps only absolute http(s) links (Ammonia would otherwise pass
relative URLs through).
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import nh3

from ..currencies import is_currency

PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_FILTER = re.compile(r'^\s*(fallback)\s*:\s*"([^"]*)"\s*$|^\s*(date|money)\s*$')
_PATH = re.compile(r"^\s*(event|contact)\.([^\s|{}]+)\s*$")
CONTACT_FIELDS = ("name", "email", "user_id", "phone", "role")
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

@dataclass(frozen=True)
class Placeholder:
    source: str  # event | contact
    name: str
    fallback: str | None
    filters: tuple[str, ...]  # date | money, in order


def parse_placeholder(inner: str) -> Placeholder:
    """``event.amount | money | fallback: "soon"`` → a :class:`Placeholder`; ValueError says what is wrong."""
    path, *parts = inner.split("|")
    m = _PATH.match(path)
    if m is None:
        raise ValueError(f"unknown placeholder {{{{{inner.strip()}}}}}: use {{{{event.<key>}}}} or "
                         f"{{{{contact.<attribute>}}}}")
    fallback, filters = None, []
    for part in parts:
        f = _FILTER.match(part)
        if f is None:
            raise ValueError(f"unknown filter {part.strip()!r} in {{{{{inner.strip()}}}}}: use "
                             f'fallback: "…", date or money')
        if f.group(1):
            fallback = f.group(2)
        else:
            filters.append(f.group(3))
    return Placeholder(m.group(1), m.group(2).lower() if m.group(1) == "event" else m.group(2), fallback,
                       tuple(filters))


def placeholder_problems(text: str) -> list[str]:
    """Every placeholder of ``text`` that cannot be rendered, and why (reported when a message is saved)."""
    problems = []
    for m in PLACEHOLDER.finditer(text):
        try:
            parse_placeholder(m.group(1))
        except ValueError as exc:
            problems.append(str(exc))
    rest = PLACEHOLDER.sub("", text)
    if "{{" in rest:
        problems.append("a {{ without its closing }}")
    return problems


def format_money(value: Any) -> str | None:
    """``{amount: 34999, currency: "eur"}`` → ``"€349.99"`` (the admin's own formatter, so a message and the
    timeline show an amount alike); None when it is not money."""
    from ..admin.render import format_money as shown  # late: the admin package imports this one

    if not isinstance(value, Mapping):
        return None
    amount, currency = value.get("amount"), value.get("currency")
    if isinstance(amount, bool) or not isinstance(amount, int) or not isinstance(currency, str):
        return None
    if not is_currency(currency.lower()):
        return None
    return shown(amount, currency.lower())


def format_date(value: Any, tz: dt.tzinfo = dt.UTC) -> str | None:
    """Unix seconds → ``"2 Dec 2026"`` (in the message's time zone); None when it is not a date."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        d = dt.datetime.fromtimestamp(int(value), tz=tz)
    except (OverflowError, OSError, ValueError):
        return None
    return f"{d.day} {d.strftime('%b %Y')}"


def _plain(value: Any, kind: str | None) -> str | None:
    """A value as text, by its metadata type (rich links show their text, money is formatted)."""
    if value is None:
        return None
    if kind == "money" or (isinstance(value, Mapping) and set(value) == {"amount", "currency"}):
        return format_money(value)
    if isinstance(value, Mapping) and "value" in value:  # a rich link {url, value}
        return str(value["value"])
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (str, int, float)):
        return str(value)
    return None


def contact_value(contact: Any, name: str) -> Any:
    """A contact attribute by placeholder name: the standard fields, else a custom attribute."""
    if contact is None:
        return None
    if name == "user_id":
        return contact.external_id
    if name in ("name", "email", "phone", "role"):
        return getattr(contact, name)
    return (contact.custom_attributes or {}).get(name)


def render_text(template: str | None, *, metadata: Mapping[str, Any] | None = None,
                metadata_types: Mapping[str, str] | None = None, contact: Any = None,
                tz: dt.tzinfo = dt.UTC) -> str:
    """Fill every placeholder; the result is text (never markup). A missing value without a fallback is
    empty; a value that a filter cannot format (``| money`` on a string) is shown as it is."""
    if not template:
        return ""
    metadata = metadata or {}
    types = metadata_types or {}

    def fill(m: re.Match[str]) -> str:
        try:
            p = parse_placeholder(m.group(1))
        except ValueError:
            return m.group(0)  # validation reports these; never rendered half-way
        if p.source == "event":
            raw, kind = metadata.get(p.name), types.get(p.name)
        else:
            raw, kind = contact_value(contact, p.name), None
        text: str | None = None
        for f in p.filters:
            if f == "date":
                text = format_date(raw, tz)
            elif f == "money":
                text = format_money(raw)
            if text is not None:
                break
        if text is None:
            text = _plain(raw, kind)
        if text is None or text == "":
            text = p.fallback or ""
        return CONTROL.sub("", text)

    return PLACEHOLDER.sub(fill, template)


def text_as_html(text: str) -> str:
    """Rendered text for an HTML page: escaped, line breaks kept."""
    return html.escape(text, quote=True).replace("\n", "<br>")


# ------------------------------------------------------------------------------------------ the allow-list
ALLOWED_TAGS = frozenset({"p", "a", "b", "i", "br"})


def _only_http_links(tag: str, attribute: str, value: str) -> str | None:
    if tag == "a" and attribute == "href":
        v = value.strip()
        return v if re.match(r"^https?://[^\s/?#]+", v, re.IGNORECASE) else None
    return value  # what the allow-list already admits (rel, added by nh3)


def sanitize_html(body: str) -> str:
    """Keep ``p a b i br`` (``a`` with an absolute http/https ``href`` only, opened with ``rel=noopener
    noreferrer nofollow``); drop every other tag (``script`` and ``style`` with their contents), attribute,
    event handler and comment."""
    return nh3.clean(body, tags=set(ALLOWED_TAGS), attributes={"a": {"href"}}, url_schemes={"http", "https"},
                     attribute_filter=_only_http_links, link_rel="noopener noreferrer nofollow",
                     clean_content_tags={"script", "style"}, strip_comments=True)


def html_to_text(body: str) -> str:
    """Sanitised HTML → plain text for places that show text (a conversation part): breaks become new lines."""
    cleaned = sanitize_html(body)
    cleaned = re.sub(r"<br\s*/?>", "\n", cleaned)
    cleaned = re.sub(r"</p>\s*", "\n\n", cleaned)
    cleaned = re.sub(r"<[^>]*>", "", cleaned)
    return html.unescape(cleaned).strip()
