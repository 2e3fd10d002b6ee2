"""A message's JSON document → a typed :class:`Message`, or every problem with it.

``parse_message(doc)`` checks the whole document and either returns a :class:`Message` or raises
:class:`DocumentInvalid` listing *each* bad field by its JSON pointer (RFC 6901) and why; nothing is applied
from an invalid document. ``Message.document`` is the normalised document (defaults filled in), which is what
the store keeps and what ``trailmark message list`` prints, so a listing can be applied elsewhere unchanged.

The format, field by field, is in docs/messages.md.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field, replace
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..metadata import InvalidEventName, check_key, is_http_url, normalize_event_name
from ..store.admin_reads import EVENT_FILTER_OPS, MAX_URL_FILTER, OPS_WITH_VALUE, VISITED_URL, EventFilter
from ..store.models import ROLES
from .pointer import join

KINDS = ("banner", "post", "chat")
STATES = ("draft", "live", "paused", "archived")
WHENS = ("every_time", "first_time")
# Metadata conditions: which ops exist, and what value each takes.
STRING_OPS = ("eq", "contains")
NUMBER_OPS = ("gt", "lt", "eq", "gte", "lte")
DATE_OPS = ("before", "after")
METADATA_OPS = ("eq", "contains", "gt", "lt", "gte", "lte", "before", "after", "exists")
ATTRIBUTE_OPS = ("eq", "contains", "exists", "gt", "lt")
PAGE_OPS = ("equals", "contains", "starts_with")
POSITIONS = ("top", "bottom")
STYLES = ("floating", "push")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
STANDARD_ATTRIBUTES = ("name", "email", "user_id", "phone", "role", "created_at", "signed_up_at", "last_seen_at")

KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
TIME = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
MAX_TEXT = 1000
# Moments a message compares with or is scheduled at: 1900 to 9998, so any time zone can show them.
MIN_DATE, MAX_DATE = -2_208_988_800, 253_370_764_800
MAX_LABEL = 60
MAX_CONDITIONS = 20
DEFAULT_FREQUENCY = {"max": 1, "per_days": 1}
TOP_LEVEL = ("key", "name", "kind", "state", "trigger", "audience", "frequency", "schedule", "content", "banner",
             "chat")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a document: where (a JSON pointer) and why."""

    pointer: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"pointer": self.pointer, "message": self.message}

    def __str__(self) -> str:
        return f"{self.pointer or '/'}: {self.message}"


class DocumentInvalid(ValueError):
    """A document (or a list of them) that cannot be applied; ``problems`` names every bad field."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class Condition:
    """A condition on the triggering event's metadata."""

    key: str
    op: str
    value: Any = None
    currency: str | None = None  # money: the amount is compared only in this currency


@dataclass(frozen=True)
class Trigger:
    event: str
    when: str = "every_time"
    metadata: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class AttributeCondition:
    attr: str  # a standard attribute (STANDARD_ATTRIBUTES) or a custom attribute's name
    op: str
    value: Any = None


@dataclass(frozen=True)
class PageCondition:
    op: str
    value: str


@dataclass(frozen=True)
class Audience:
    roles: tuple[str, ...] = ROLES
    events: tuple[EventFilter, ...] = ()
    attributes: tuple[AttributeCondition, ...] = ()
    page_url: tuple[PageCondition, ...] = ()


@dataclass(frozen=True)
class Frequency:
    max: int | None = 1  # None: no cap
    per_days: int = 1


@dataclass(frozen=True)
class OfficeHours:
    days: tuple[int, ...]  # 0 = Monday
    start: dt.time
    end: dt.time  # before start: the hours run past midnight


@dataclass(frozen=True)
class Schedule:
    start: int | None = None
    end: int | None = None
    timezone: str = "UTC"
    office_hours: OfficeHours | None = None


@dataclass(frozen=True)
class Button:
    label: str
    url: str


@dataclass(frozen=True)
class Content:
    text: str | None = None
    title: str | None = None
    body: str | None = None
    image_url: str | None = None
    button: Button | None = None


@dataclass(frozen=True)
class BannerOptions:
    position: str = "top"
    style: str = "floating"
    dismissible: bool = True


@dataclass(frozen=True)
class Message:
    key: str
    kind: str
    state: str
    trigger: Trigger
    content: Content
    name: str | None = None
    audience: Audience = Audience()
    frequency: Frequency = Frequency()
    schedule: Schedule = Schedule()
    banner: BannerOptions | None = None
    chat_from: str | None = None
    document: dict[str, Any] = field(default_factory=dict, compare=False)


# ------------------------------------------------------------------------------------------ checking
class _Checker:
    """Collects problems while reading a document; every reader returns a usable default on error so the
    whole document is checked in one pass."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def bad(self, pointer: str, message: str) -> None:
        self.problems.append(Problem(pointer, message))

    def obj(self, value: Any, pointer: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.bad(pointer, "must be an object")
            return {}
        for k in value:
            if k not in allowed:
                self.bad(join(pointer, k), f"unknown field (allowed: {', '.join(allowed)})")
        return value

    def array(self, value: Any, pointer: str, limit: int = MAX_CONDITIONS) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.bad(pointer, "must be an array")
            return []
        if len(value) > limit:
            self.bad(pointer, f"at most {limit} entries")
            return value[:limit]
        return value

    def text(self, value: Any, pointer: str, *, required: bool = False, limit: int = MAX_TEXT) -> str | None:
        if value is None:
            if required:
                self.bad(pointer, "is required")
            return None
        if not isinstance(value, str):
            self.bad(pointer, "must be a string")
            return None
        if required and not value.strip():
            self.bad(pointer, "must not be empty")
            return None
        if len(value) > limit:
            self.bad(pointer, f"at most {limit} characters")
            return None
        return value

    def choice(self, value: Any, pointer: str, choices: tuple[str, ...], default: str | None = None) -> str:
        if value is None and default is not None:
            return default
        if not isinstance(value, str) or value not in choices:
            self.bad(pointer, f"must be one of {', '.join(choices)}" + ("" if value is not None else " (required)"))
            return default or choices[0]
        return value

    def integer(self, value: Any, pointer: str, minimum: int = 0, maximum: int = 10**9) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.bad(pointer, "must be an integer")
            return None
        if not minimum <= value <= maximum:
            self.bad(pointer, f"must be between {minimum} and {maximum}")
            return None
        return value

    def url(self, value: Any, pointer: str, *, required: bool = False) -> str | None:
        text = self.text(value, pointer, required=required, limit=2048)
        if text is not None and not is_http_url(text):
            self.bad(pointer, "must be an http or https URL")
            return None
        return text

    def moment(self, value: Any, pointer: str, tz: dt.tzinfo) -> int | None:
        """Unix seconds, or an ISO 8601 date or date-time (a date is its midnight in ``tz``)."""
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            if MIN_DATE <= value <= MAX_DATE:
                return value
            self.bad(pointer, "dates are unix seconds between 1900 and 9998 (milliseconds are too large)")
            return None
        if isinstance(value, str):
            try:
                parsed = dt.datetime.fromisoformat(value)
                if parsed.tzinfo is None:
                    parsed = parsed.replace(tzinfo=tz)
                seconds = int(parsed.timestamp())
            except (ValueError, OverflowError, OSError):
                pass
            else:
                if MIN_DATE <= seconds <= MAX_DATE:
                    return seconds
        self.bad(pointer, "must be unix seconds or an ISO 8601 date (2026-12-02 or 2026-12-02T09:00:00+01:00)")
        return None


def parse_message(doc: Any, pointer: str = "") -> Message:
    """Check a whole document; a :class:`Message`, or :class:`DocumentInvalid` naming every problem."""
    from .content import placeholder_problems  # content imports nothing from here at import time

    c = _Checker()
    if not isinstance(doc, dict):
        raise DocumentInvalid([Problem(pointer, "a message must be a JSON object")])
    c.obj(doc, pointer, TOP_LEVEL)
    key = c.text(doc.get("key"), join(pointer, "key"), required=True, limit=100)
    if key is not None and not KEY.match(key):
        c.bad(join(pointer, "key"), "lower-case letters, digits, - and _ only, starting with a letter or digit")
    name = c.text(doc.get("name"), join(pointer, "name"), limit=200)
    kind = c.choice(doc.get("kind"), join(pointer, "kind"), KINDS)
    state = c.choice(doc.get("state"), join(pointer, "state"), STATES, "draft")
    trigger = _trigger(c, doc.get("trigger"), join(pointer, "trigger"))
    audience = _audience(c, doc.get("audience"), join(pointer, "audience"))
    frequency = _frequency(c, doc.get("frequency"), join(pointer, "frequency"))
    schedule = _schedule(c, doc.get("schedule"), join(pointer, "schedule"))
    content = _content(c, doc.get("content"), join(pointer, "content"), kind)
    banner = None
    if kind == "banner":
        banner = _banner(c, doc.get("banner"), join(pointer, "banner"))
    elif doc.get("banner") is not None:
        c.bad(join(pointer, "banner"), f"only for kind banner (this message is a {kind})")
    chat_from = None
    if kind == "chat":
        chat = c.obj(doc.get("chat"), join(pointer, "chat"), ("from",))
        chat_from = c.text(chat.get("from"), join(pointer, "chat", "from"), required=True, limit=MAX_LABEL)
    elif doc.get("chat") is not None:
        c.bad(join(pointer, "chat"), f"only for kind chat (this message is a {kind})")
    for where, text in (("text", content.text), ("title", content.title), ("body", content.body)):
        for problem in placeholder_problems(text or ""):
            c.bad(join(pointer, "content", where), problem)
    if content.button is not None:
        for problem in placeholder_problems(content.button.label):
            c.bad(join(pointer, "content", "button", "label"), problem)
    if c.problems:
        raise DocumentInvalid(c.problems)
    assert key is not None
    message = Message(key=key, kind=kind, state=state, trigger=trigger, content=content, name=name,
                      audience=audience, frequency=frequency, schedule=schedule, banner=banner, chat_from=chat_from)
    return replace(message, document=to_document(message))


def parse_messages(data: Any) -> list[Message]:
    """One document or a list of them; all are checked, and problems are named by pointer into ``data``."""
    docs = data if isinstance(data, list) else [data]
    out: list[Message] = []
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for i, doc in enumerate(docs):
        where = f"/{i}" if isinstance(data, list) else ""
        try:
            message = parse_message(doc, where)
        except DocumentInvalid as exc:
            problems += exc.problems
            continue
        if message.key in seen:
            problems.append(Problem(join(where, "key"), f"the key {message.key!r} is used twice in this file"))
        seen[message.key] = i
        out.append(message)
    if problems:
        raise DocumentInvalid(problems)
    return out


def _trigger(c: _Checker, raw: Any, pointer: str) -> Trigger:
    t = c.obj(raw, pointer, ("event", "when", "metadata"))
    if raw is None:
        c.bad(pointer, "is required")
    event = ""
    if t:
        if not isinstance(t.get("event"), str):
            c.bad(join(pointer, "event"), "is required: the event name that triggers the message")
        else:
            try:
                event = normalize_event_name(t["event"])
            except InvalidEventName as exc:
                c.bad(join(pointer, "event"), str(exc))
    when = c.choice(t.get("when"), join(pointer, "when"), WHENS, "every_time")
    conditions = []
    for i, raw_cond in enumerate(c.array(t.get("metadata"), join(pointer, "metadata"))):
        cond = _metadata_condition(c, raw_cond, join(pointer, "metadata", i))
        if cond is not None:
            conditions.append(cond)
    return Trigger(event, when, tuple(conditions))


def _metadata_condition(c: _Checker, raw: Any, pointer: str) -> Condition | None:
    d = c.obj(raw, pointer, ("key", "op", "value", "currency"))
    if not d:
        if raw is not None and isinstance(raw, dict):
            c.bad(pointer, "needs key and op")
        return None
    try:
        key = check_key(d.get("key"))
    except ValueError as exc:
        c.bad(join(pointer, "key"), str(exc))
        key = ""
    op = c.choice(d.get("op"), join(pointer, "op"), METADATA_OPS)
    value = d.get("value")
    vp = join(pointer, "value")
    currency = None
    if op == "exists":
        if value is not None:
            c.bad(vp, "exists takes no value")
    elif op == "contains":
        if not isinstance(value, str) or not value:
            c.bad(vp, "contains needs a non-empty string")
    elif op == "eq":
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            c.bad(vp, "eq needs a string or a number")
    elif op in NUMBER_OPS:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            c.bad(vp, f"{op} needs a number (money: an amount in cents)")
    elif op in DATE_OPS:
        value = c.moment(value, vp, dt.UTC)
        if value is None and d.get("value") is None:
            c.bad(vp, f"{op} needs a date")
    if d.get("currency") is not None:
        raw_cur = d["currency"]
        if op not in NUMBER_OPS or not isinstance(raw_cur, str) or not re.match(r"^[A-Za-z]{3}$", raw_cur):
            c.bad(join(pointer, "currency"), "a three-letter currency code, only with gt/lt/eq/gte/lte on money")
        else:
            currency = raw_cur.lower()
    return Condition(key, op, value, currency)


def _audience(c: _Checker, raw: Any, pointer: str) -> Audience:
    a = c.obj(raw, pointer, ("roles", "events", "attributes", "page_url"))
    roles: tuple[str, ...] = ROLES
    if "roles" in a:
        listed = c.array(a["roles"], join(pointer, "roles"), 3)
        picked = []
        for i, r in enumerate(listed):
            if r not in ROLES:
                c.bad(join(pointer, "roles", i), f"must be one of {', '.join(ROLES)}")
            elif r not in picked:
                picked.append(r)
        if not listed and isinstance(a["roles"], list):
            c.bad(join(pointer, "roles"), "at least one role (or leave roles out: everyone)")
        roles = tuple(r for r in ROLES if r in picked)
    events = []
    for i, raw_f in enumerate(c.array(a.get("events"), join(pointer, "events"))):
        fp = join(pointer, "events", i)
        f = c.obj(raw_f, fp, ("op", "event", "value", "url"))
        op = c.choice(f.get("op"), join(fp, "op"), (*EVENT_FILTER_OPS, VISITED_URL))
        if op == VISITED_URL:
            # "Visited a URL containing …": the contact's page views, not an event.
            url = c.text(f.get("url"), join(fp, "url"), required=True, limit=MAX_URL_FILTER) or ""
            for extra in ("event", "value"):
                if f.get(extra) is not None:
                    c.bad(join(fp, extra), f"{VISITED_URL} takes only a url")
            if url:
                events.append(EventFilter.visited(url))
            continue
        elif f.get("url") is not None:
            c.bad(join(fp, "url"), f"only {VISITED_URL} takes a url")
        name = ""
        try:
            name = normalize_event_name(f.get("event"))
        except InvalidEventName as exc:
            c.bad(join(fp, "event"), str(exc))
        number = 0
        if op in OPS_WITH_VALUE:
            number = c.integer(f.get("value"), join(fp, "value"), 0, 10**9) or 0
        elif f.get("value") is not None:
            c.bad(join(fp, "value"), f"{op} takes no value")
        events.append(EventFilter(op, name, number))
    attributes = []
    for i, raw_a in enumerate(c.array(a.get("attributes"), join(pointer, "attributes"))):
        ap = join(pointer, "attributes", i)
        d = c.obj(raw_a, ap, ("attr", "op", "value"))
        attr = c.text(d.get("attr"), join(ap, "attr"), required=True, limit=255) or ""
        op = c.choice(d.get("op"), join(ap, "op"), ATTRIBUTE_OPS)
        value: Any = d.get("value")
        if op == "exists" and value is not None:
            c.bad(join(ap, "value"), "exists takes no value")
        elif op in ("gt", "lt") and (isinstance(value, bool) or not isinstance(value, (int, float))):
            c.bad(join(ap, "value"), f"{op} needs a number")
        elif op == "contains" and (not isinstance(value, str) or not value):
            c.bad(join(ap, "value"), "contains needs a non-empty string")
        elif op == "eq" and not isinstance(value, (str, int, float, bool)):
            c.bad(join(ap, "value"), "eq needs a string, a number or a boolean")
        attributes.append(AttributeCondition(attr, op, value))
    pages = []
    for i, raw_p in enumerate(c.array(a.get("page_url"), join(pointer, "page_url"))):
        pp = join(pointer, "page_url", i)
        d = c.obj(raw_p, pp, ("op", "value"))
        op = c.choice(d.get("op"), join(pp, "op"), PAGE_OPS)
        url = c.text(d.get("value"), join(pp, "value"), required=True, limit=2048) or ""
        pages.append(PageCondition(op, url))
    return Audience(roles, tuple(events), tuple(attributes), tuple(pages))


def _frequency(c: _Checker, raw: Any, pointer: str) -> Frequency:
    f = c.obj(raw, pointer, ("max", "per_days"))
    if raw is not None and isinstance(raw, dict) and "max" in f and f["max"] is None:
        per = c.integer(f.get("per_days", 1), join(pointer, "per_days"), 1, 3650)
        return Frequency(None, per or 1)
    most = c.integer(f.get("max", DEFAULT_FREQUENCY["max"]), join(pointer, "max"), 1, 1000)
    per = c.integer(f.get("per_days", DEFAULT_FREQUENCY["per_days"]), join(pointer, "per_days"), 1, 3650)
    return Frequency(most or 1, per or 1)


def _schedule(c: _Checker, raw: Any, pointer: str) -> Schedule:
    s = c.obj(raw, pointer, ("start", "end", "timezone", "office_hours"))
    tz_name = c.text(s.get("timezone"), join(pointer, "timezone"), limit=64) or "UTC"
    try:
        tz: dt.tzinfo = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        c.bad(join(pointer, "timezone"), "must be an IANA time zone such as Europe/Paris")
        tz, tz_name = dt.UTC, "UTC"
    start = c.moment(s.get("start"), join(pointer, "start"), tz)
    end = c.moment(s.get("end"), join(pointer, "end"), tz)
    if start is not None and end is not None and end <= start:
        c.bad(join(pointer, "end"), "must be after start")
    hours = None
    if s.get("office_hours") is not None:
        hp = join(pointer, "office_hours")
        h = c.obj(s["office_hours"], hp, ("days", "from", "to"))
        days = []
        listed = c.array(h.get("days", list(WEEKDAYS[:5])), join(hp, "days"), 7)
        for i, d in enumerate(listed):
            if d not in WEEKDAYS:
                c.bad(join(hp, "days", i), f"must be one of {', '.join(WEEKDAYS)}")
            elif WEEKDAYS.index(d) not in days:
                days.append(WEEKDAYS.index(d))
        if not listed:
            c.bad(join(hp, "days"), "at least one day")
        times = []
        for side in ("from", "to"):
            value = h.get(side)
            m = TIME.match(value) if isinstance(value, str) else None
            if m is None:
                c.bad(join(hp, side), "a time of day as HH:MM (24-hour)")
                times.append(dt.time(0))
            else:
                times.append(dt.time(int(m.group(1)), int(m.group(2))))
        if times[0] == times[1] and isinstance(h.get("from"), str) and TIME.match(h["from"]):
            c.bad(join(hp, "to"), "must differ from from (to before from runs past midnight)")
        hours = OfficeHours(tuple(sorted(days)), times[0], times[1])
    return Schedule(start, end, tz_name, hours)


def _content(c: _Checker, raw: Any, pointer: str, kind: str) -> Content:
    if raw is None:
        c.bad(pointer, "is required")
    d = c.obj(raw, pointer, ("text", "title", "body", "image_url", "button"))
    text = c.text(d.get("text"), join(pointer, "text"), required=kind in ("banner", "chat"))
    title = c.text(d.get("title"), join(pointer, "title"), required=kind == "post", limit=200)
    body = c.text(d.get("body"), join(pointer, "body"), required=kind == "post", limit=5000)
    image = c.url(d.get("image_url"), join(pointer, "image_url"))
    for name, value in (("text", text), ("title", title), ("body", body), ("image_url", image)):
        allowed = {"banner": ("text",), "chat": ("text",), "post": ("title", "body", "image_url", "text")}[kind]
        if value is not None and name not in allowed:
            c.bad(join(pointer, name), f"not used by a {kind}")
    button = None
    if d.get("button") is not None:
        bp = join(pointer, "button")
        if kind == "chat":
            c.bad(bp, "a chat has no button (the contact replies)")
        b = c.obj(d["button"], bp, ("label", "url"))
        label = c.text(b.get("label"), join(bp, "label"), required=True, limit=MAX_LABEL)
        url = c.url(b.get("url"), join(bp, "url"), required=True)
        if label is not None and url is not None:
            button = Button(label, url)
    return Content(text, title, body, image, button)


def _banner(c: _Checker, raw: Any, pointer: str) -> BannerOptions:
    b = c.obj(raw, pointer, ("position", "style", "dismissible"))
    position = c.choice(b.get("position"), join(pointer, "position"), POSITIONS, "top")
    style = c.choice(b.get("style"), join(pointer, "style"), STYLES, "floating")
    dismissible = b.get("dismissible", True)
    if not isinstance(dismissible, bool):
        c.bad(join(pointer, "dismissible"), "must be true or false")
        dismissible = True
    return BannerOptions(position, style, dismissible)


# ------------------------------------------------------------------------------------------ back to JSON
def to_document(m: Message) -> dict[str, Any]:
    """The normalised document: what the store keeps and the CLI and REST print (it parses back to ``m``)."""
    doc: dict[str, Any] = {"key": m.key}
    if m.name is not None:
        doc["name"] = m.name
    doc.update(kind=m.kind, state=m.state)
    trigger: dict[str, Any] = {"event": m.trigger.event, "when": m.trigger.when}
    if m.trigger.metadata:
        trigger["metadata"] = [_drop_none({"key": x.key, "op": x.op, "value": x.value, "currency": x.currency})
                               for x in m.trigger.metadata]
    doc["trigger"] = trigger
    audience: dict[str, Any] = {"roles": list(m.audience.roles)}
    if m.audience.events:
        audience["events"] = [{"op": f.op, "url": f.url} if f.op == VISITED_URL else
                              _drop_none({"op": f.op, "event": f.event_name,
                                          "value": f.value if f.op in OPS_WITH_VALUE else None})
                              for f in m.audience.events]
    if m.audience.attributes:
        audience["attributes"] = [_drop_none({"attr": a.attr, "op": a.op, "value": a.value})
                                  for a in m.audience.attributes]
    if m.audience.page_url:
        audience["page_url"] = [{"op": p.op, "value": p.value} for p in m.audience.page_url]
    doc["audience"] = audience
    doc["frequency"] = {"max": m.frequency.max, "per_days": m.frequency.per_days}
    schedule: dict[str, Any] = _drop_none({"start": m.schedule.start, "end": m.schedule.end})
    schedule["timezone"] = m.schedule.timezone
    if m.schedule.office_hours is not None:
        h = m.schedule.office_hours
        schedule["office_hours"] = {"days": [WEEKDAYS[d] for d in h.days], "from": h.start.strftime("%H:%M"),
                                    "to": h.end.strftime("%H:%M")}
    doc["schedule"] = schedule
    content = _drop_none({"text": m.content.text, "title": m.content.title, "body": m.content.body,
                          "image_url": m.content.image_url})
    if m.content.button is not None:
        content["button"] = {"label": m.content.button.label, "url": m.content.button.url}
    doc["content"] = content
    if m.banner is not None:
        doc["banner"] = {"position": m.banner.position, "style": m.banner.style,
                         "dismissible": m.banner.dismissible}
    if m.chat_from is not None:
        doc["chat"] = {"from": m.chat_from}
    return doc


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}
