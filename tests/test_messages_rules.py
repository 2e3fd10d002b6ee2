"""Event-triggered messages, the pure rules (server/messages/), table-driven: the document and its errors by
JSON pointer, metadata conditions per type and operator, first time / every time, audience attributes and
pages, caps and the workspace gap, schedule and office hours (midnight, time zones), placeholders and filters,
text that stays text, and the HTML allow-list."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from trailmark.messages.audience import check_attribute, check_page
from trailmark.messages.content import (
    format_money,
    html_to_text,
    placeholder_problems,
    render_text,
    sanitize_html,
    text_as_html,
)
from trailmark.messages.decide import decide
from trailmark.messages.document import (
    Condition,
    DocumentInvalid,
    Frequency,
    OfficeHours,
    Schedule,
    parse_message,
    parse_messages,
    to_document,
)
from trailmark.messages.frequency import cap_rule, gap_rule, in_office_hours, schedule_rules
from trailmark.messages.rules import History, TrackedEvent
from trailmark.messages.triggers import check_condition
from trailmark.store.models import Contact

NOW = 1_796_212_800  # 2026-12-02 12:00:00 UTC, a Wednesday


def doc(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "key": "upload-done",
        "kind": "banner",
        "state": "live",
        "trigger": {
            "event": "upload-complete",
            "when": "every_time",
            "metadata": [{"key": "type", "op": "eq", "value": "JPEG"}],
        },
        "audience": {"roles": ["visitor", "lead", "user"]},
        "frequency": {"max": 2, "per_days": 1},
        "content": {
            "text": "Your {{event.type}} upload is ready",
            "button": {"label": "Share it", "url": "https://example.org/share"},
        },
        "banner": {"position": "top", "dismissible": True},
    }
    base.update(over)
    return base


def contact(**over: Any) -> Contact:
    fields: dict[str, Any] = {
        "id": "c1",
        "workspace_id": 1,
        "role": "user",
        "visitor_id": None,
        "external_id": "42",
        "email": "ada@example.com",
        "name": "Ada",
        "phone": None,
        "custom_attributes": {"plan": "pro", "seats": 5},
        "message": None,
        "created_at": NOW - 86400,
        "updated_at": NOW,
        "last_seen_at": NOW,
        "contacted_at": None,
        "visitor_floor": None,
        "signed_up_at": NOW - 86400,
        "merged_into": None,
    }
    fields.update(over)
    return Contact(**fields)


def event(**over: Any) -> TrackedEvent:
    fields: dict[str, Any] = {
        "name": "upload-complete",
        "created_at": NOW - 5,
        "dedupe_key": "k1",
        "metadata": {"type": "JPEG"},
        "metadata_types": {"type": "string"},
        "page_url": "https://shop.example/upload",
    }
    fields.update(over)
    return TrackedEvent(**fields)


# ------------------------------------------------------------------------------------------ the document
def test_the_example_document_parses_and_round_trips():
    m = parse_message(doc())
    assert (m.key, m.kind, m.state, m.trigger.event) == ("upload-done", "banner", "live", "upload-complete")
    assert m.trigger.metadata == (Condition("type", "eq", "JPEG"),)
    assert m.frequency == Frequency(2, 1)
    assert m.banner is not None and (m.banner.position, m.banner.style, m.banner.dismissible) == (
        "top",
        "floating",
        True,
    )
    again = parse_message(m.document)
    assert again == m and to_document(again) == m.document


def test_defaults_are_filled_in_the_normalised_document():
    m = parse_message(
        {
            "key": "p",
            "kind": "post",
            "trigger": {"event": "Signed.Up"},
            "content": {"title": "Welcome", "body": 'Hi {{contact.name | fallback: "there"}}'},
        }
    )
    assert m.state == "draft" and m.trigger.event == "signed-up" and m.trigger.when == "every_time"
    assert m.document["audience"] == {"roles": ["visitor", "lead", "user"]}
    assert m.document["frequency"] == {"max": 1, "per_days": 1}
    assert m.document["schedule"] == {"timezone": "UTC"}


INVALID = [
    # (change, pointer, words in the reason)
    ({"key": "Bad Key"}, "/key", "lower-case"),
    ({"kind": "popup"}, "/kind", "banner, post, chat"),
    ({"state": "on"}, "/state", "draft, live"),
    ({"trigger": {"event": ""}}, "/trigger/event", "empty"),
    ({"trigger": {"event": "x", "when": "sometimes"}}, "/trigger/when", "every_time"),
    (
        {"trigger": {"event": "x", "metadata": [{"key": "a.b", "op": "eq", "value": "1"}]}},
        "/trigger/metadata/0/key",
        "not allowed",
    ),
    (
        {"trigger": {"event": "x", "metadata": [{"key": "n", "op": "gt", "value": "5"}]}},
        "/trigger/metadata/0/value",
        "number",
    ),
    (
        {"trigger": {"event": "x", "metadata": [{"key": "n", "op": "near", "value": 1}]}},
        "/trigger/metadata/0/op",
        "one of",
    ),
    (
        {"trigger": {"event": "x", "metadata": [{"key": "d_at", "op": "before", "value": "soon"}]}},
        "/trigger/metadata/0/value",
        "ISO 8601",
    ),
    (
        {"trigger": {"event": "x", "metadata": [{"key": "n", "op": "exists", "value": 1}]}},
        "/trigger/metadata/0/value",
        "no value",
    ),
    ({"audience": {"roles": ["admin"]}}, "/audience/roles/0", "visitor, lead, user"),
    ({"audience": {"events": [{"op": "count_gt", "event": "x"}]}}, "/audience/events/0/value", "integer"),
    (
        {"audience": {"attributes": [{"attr": "seats", "op": "gt", "value": "many"}]}},
        "/audience/attributes/0/value",
        "number",
    ),
    ({"audience": {"page_url": [{"op": "regex", "value": "x"}]}}, "/audience/page_url/0/op", "equals"),
    ({"frequency": {"max": 0}}, "/frequency/max", "between"),
    ({"schedule": {"timezone": "Mars/Olympus"}}, "/schedule/timezone", "IANA"),
    ({"schedule": {"start": "2026-12-10", "end": "2026-12-01"}}, "/schedule/end", "after start"),
    (
        {"schedule": {"office_hours": {"days": ["mon"], "from": "9am", "to": "17:00"}}},
        "/schedule/office_hours/from",
        "HH:MM",
    ),
    (
        {"schedule": {"office_hours": {"days": ["funday"], "from": "09:00", "to": "17:00"}}},
        "/schedule/office_hours/days/0",
        "mon",
    ),
    ({"content": {"text": ""}}, "/content/text", "empty"),
    ({"content": {"text": "Hi {{user.name}}"}}, "/content/text", "unknown placeholder"),
    ({"content": {"text": "Hi {{contact.name | upper}}"}}, "/content/text", "unknown filter"),
    ({"content": {"text": "Hi {{contact.name"}}, "/content/text", "closing"),
    (
        {"content": {"text": "x", "button": {"label": "Go", "url": "javascript:alert(1)"}}},
        "/content/button/url",
        "http",
    ),
    ({"content": {"text": "x", "title": "T"}}, "/content/title", "not used by a banner"),
    ({"banner": {"position": "middle"}}, "/banner/position", "top, bottom"),
    ({"banner": {"dismissible": "yes"}}, "/banner/dismissible", "true or false"),
    ({"chat": {"from": "Ada"}}, "/chat", "only for kind chat"),
    ({"colour": "red"}, "/colour", "unknown field"),
]


@pytest.mark.parametrize("change,pointer,words", INVALID)
def test_each_bad_field_is_named_by_its_pointer(change, pointer, words):
    with pytest.raises(DocumentInvalid) as caught:
        parse_message(doc(**change))
    found = {p.pointer: p.message for p in caught.value.problems}
    assert pointer in found, found
    assert words in found[pointer]


def test_every_problem_is_reported_at_once_and_pointers_escape_slash_and_tilde():
    bad = doc(kind="post", content={"title": ""}, frequency={"max": -1, "per_days": 0})
    bad["trigger"] = {"event": "x", "metadata": [{"key": "a/b~c", "op": "contains", "value": ""}]}
    with pytest.raises(DocumentInvalid) as caught:
        parse_message(bad)
    pointers = {p.pointer for p in caught.value.problems}
    assert {
        "/content/title",
        "/content/body",
        "/frequency/max",
        "/frequency/per_days",
        "/banner",
        "/trigger/metadata/0/value",
    } <= pointers


def test_a_list_names_the_document_by_index_and_refuses_a_repeated_key():
    with pytest.raises(DocumentInvalid) as caught:
        parse_messages([doc(), doc(), doc(key="other", kind="chat")])
    pointers = {p.pointer for p in caught.value.problems}
    assert "/1/key" in pointers and "/2/chat/from" in pointers and "/2/banner" in pointers


def test_chat_needs_its_sender_and_has_no_button():
    m = parse_message(
        {
            "key": "hi",
            "kind": "chat",
            "trigger": {"event": "signed-up"},
            "content": {"text": "Hi!"},
            "chat": {"from": "Grace"},
        }
    )
    assert m.chat_from == "Grace"
    with pytest.raises(DocumentInvalid) as caught:
        parse_message(
            {
                "key": "hi",
                "kind": "chat",
                "trigger": {"event": "x"},
                "content": {"text": "Hi", "button": {"label": "a", "url": "https://x.org"}},
            }
        )
    assert {p.pointer for p in caught.value.problems} >= {"/chat/from", "/content/button"}


def test_dates_are_unix_seconds_or_iso_in_the_messages_time_zone():
    m = parse_message(doc(schedule={"start": "2026-12-01", "end": 1_800_000_000, "timezone": "Europe/Paris"}))
    assert m.schedule.start == int(dt.datetime(2026, 12, 1, tzinfo=ZoneInfo("Europe/Paris")).timestamp())
    assert m.schedule.end == 1_800_000_000


# ------------------------------------------------------------------------------------------ metadata conditions
CONDITIONS = [
    # (condition, metadata, types, passes)
    (Condition("type", "eq", "jpeg"), {"type": "JPEG"}, {"type": "string"}, True),  # equals ignores case
    (Condition("type", "eq", "PNG"), {"type": "JPEG"}, {"type": "string"}, False),
    (Condition("type", "contains", "pe"), {"type": "JPEG"}, {"type": "string"}, True),
    (Condition("type", "contains", "x"), {"type": "JPEG"}, {"type": "string"}, False),
    (Condition("type", "gt", 3), {"type": "JPEG"}, {"type": "string"}, False),  # op does not fit a string
    (Condition("site", "contains", "example.org"), {"site": "https://example.org/a"}, {"site": "link"}, True),
    (Condition("pic", "contains", ".png"), {"pic": "https://cdn.x/a.png"}, {"pic": "image"}, True),
    (Condition("invoice", "eq", "in_12345678"), {"invoice": "in_12345678"}, {"invoice": "stripe"}, True),
    (
        Condition("order", "eq", "TX1"),
        {"order": {"url": "https://s.x/o/1", "value": "TX1"}},
        {"order": "rich_link"},
        True,
    ),
    (Condition("duration", "gt", 10), {"duration": 19}, {"duration": "number"}, True),
    (Condition("duration", "gt", 19), {"duration": 19}, {"duration": "number"}, False),
    (Condition("duration", "gte", 19), {"duration": 19}, {"duration": "number"}, True),
    (Condition("duration", "lt", 19), {"duration": 19}, {"duration": "number"}, False),
    (Condition("duration", "lte", 19), {"duration": 19}, {"duration": "number"}, True),
    (Condition("duration", "eq", 19), {"duration": 19.0}, {"duration": "number"}, True),
    (Condition("duration", "eq", "19"), {"duration": 19}, {"duration": "number"}, False),  # a string is not a number
    (Condition("duration", "contains", "1"), {"duration": 19}, {"duration": "number"}, False),
    (Condition("price", "gt", 10000), {"price": {"amount": 34999, "currency": "eur"}}, {"price": "money"}, True),
    (Condition("price", "lt", 10000), {"price": {"amount": 34999, "currency": "eur"}}, {"price": "money"}, False),
    (
        Condition("price", "gte", 34999, "eur"),
        {"price": {"amount": 34999, "currency": "eur"}},
        {"price": "money"},
        True,
    ),
    (Condition("price", "gte", 100, "usd"), {"price": {"amount": 34999, "currency": "eur"}}, {"price": "money"}, False),
    (Condition("paid_at", "after", NOW - 10), {"paid_at": NOW}, {"paid_at": "date"}, True),
    (Condition("paid_at", "before", NOW - 10), {"paid_at": NOW}, {"paid_at": "date"}, False),
    (Condition("paid_at", "gt", 1), {"paid_at": NOW}, {"paid_at": "date"}, False),  # dates: before/after
    (Condition("duration", "before", NOW), {"duration": 1}, {"duration": "number"}, False),
    (Condition("type", "exists"), {"type": ""}, {"type": "string"}, True),
    (Condition("type", "exists"), {}, {}, False),
    (Condition("type", "eq", "JPEG"), {}, {}, False),  # missing
]


@pytest.mark.parametrize("cond,metadata,types,passes", CONDITIONS)
def test_metadata_conditions_compare_by_the_metadata_type(cond, metadata, types, passes):
    rule = check_condition(cond, metadata, types)
    assert rule.passed is passes, rule.sentence
    assert rule.sentence.endswith(".") and cond.key in rule.sentence


# ------------------------------------------------------------------------------------------ decide
def rules_by_name(decision: Any) -> dict[str, list[bool]]:
    out: dict[str, list[bool]] = {}
    for r in decision.reasons:
        out.setdefault(r.name, []).append(r.passed)
    return out


def test_decide_sends_and_reports_every_rule():
    m = parse_message(doc())
    d = decide(m, event(), contact(), History(went_live_at=NOW - 3600), NOW)
    assert d.send, [r.sentence for r in d.failing]
    assert set(rules_by_name(d)) == {"state", "trigger", "recent", "metadata", "role", "frequency"}


DECISIONS: list[tuple[dict[str, Any], dict[str, Any], dict[str, Any], History, str]] = [
    # (document change, event change, contact change, history, failing rule)
    ({"state": "paused"}, {}, {}, History(went_live_at=NOW - 60), "state"),
    ({}, {"name": "signed-up"}, {}, History(went_live_at=NOW - 60), "trigger"),
    ({}, {"created_at": NOW - 700}, {}, History(went_live_at=NOW - 3600), "recent"),
    ({}, {"created_at": NOW - 100}, {}, History(went_live_at=NOW - 60), "recent"),  # before going live
    ({}, {}, {}, History(went_live_at=None), "recent"),
    ({}, {"metadata": {"type": "PNG"}}, {}, History(went_live_at=NOW - 60), "metadata"),
    ({"audience": {"roles": ["lead"]}}, {}, {}, History(went_live_at=NOW - 60), "role"),
    ({}, {}, {}, History(went_live_at=NOW - 60, sent_at=(NOW - 100, NOW - 50)), "frequency"),
    (
        {"trigger": {"event": "upload-complete", "when": "first_time"}},
        {},
        {},
        History(went_live_at=NOW - 60, earlier_occurrences=1),
        "first_time",
    ),
    (
        {"audience": {"events": [{"op": "count_gt", "event": "upload-complete", "value": 3}]}},
        {},
        {},
        History(went_live_at=NOW - 60, event_filters=(False,)),
        "event_filter",
    ),
    (
        {"audience": {"attributes": [{"attr": "plan", "op": "eq", "value": "free"}]}},
        {},
        {},
        History(went_live_at=NOW - 60),
        "attribute",
    ),
    (
        {"audience": {"page_url": [{"op": "starts_with", "value": "https://shop.example/checkout"}]}},
        {},
        {},
        History(went_live_at=NOW - 60),
        "page_url",
    ),
    ({"schedule": {"end": NOW - 1}}, {}, {}, History(went_live_at=NOW - 60), "schedule"),
    (
        {"schedule": {"office_hours": {"days": ["sat", "sun"], "from": "09:00", "to": "17:00"}}},
        {},
        {},
        History(went_live_at=NOW - 60),
        "office_hours",
    ),
    ({}, {}, {}, History(went_live_at=NOW - 60, gap_minutes=30, last_any_at=NOW - 600), "workspace_gap"),
]


@pytest.mark.parametrize("change,ev,who,history,failing", DECISIONS)
def test_each_rule_can_stop_a_message_and_says_why(change, ev, who, history, failing):
    d = decide(parse_message(doc(**change)), event(**ev), contact(**who), history, NOW)
    assert not d.send
    assert [r.name for r in d.failing] == [failing], [r.sentence for r in d.failing]
    assert all(r.sentence for r in d.reasons)


def test_first_time_passes_with_no_earlier_occurrence_and_every_time_ignores_them():
    first = parse_message(doc(trigger={"event": "upload-complete", "when": "first_time"}))
    assert decide(first, event(), contact(), History(went_live_at=NOW - 60), NOW).send
    every = parse_message(doc())
    assert decide(every, event(), contact(), History(went_live_at=NOW - 60, earlier_occurrences=9), NOW).send


# ------------------------------------------------------------------------------------------ audience
ATTRIBUTES = [
    ({"attr": "email", "op": "eq", "value": "ADA@example.com"}, True),
    ({"attr": "email", "op": "contains", "value": "@example."}, True),
    ({"attr": "user_id", "op": "eq", "value": "42"}, True),
    ({"attr": "name", "op": "exists"}, True),
    ({"attr": "phone", "op": "exists"}, False),
    ({"attr": "plan", "op": "eq", "value": "pro"}, True),
    ({"attr": "plan", "op": "contains", "value": "x"}, False),
    ({"attr": "seats", "op": "gt", "value": 4}, True),
    ({"attr": "seats", "op": "lt", "value": 5}, False),
    ({"attr": "seats", "op": "eq", "value": 5}, True),
    ({"attr": "seats", "op": "eq", "value": "5"}, False),
    ({"attr": "plan", "op": "gt", "value": 1}, False),  # not a number
    ({"attr": "missing", "op": "eq", "value": "x"}, False),
    ({"attr": "signed_up_at", "op": "gt", "value": NOW - 2 * 86400}, True),
    ({"attr": "role", "op": "eq", "value": "user"}, True),
]


@pytest.mark.parametrize("cond,passes", ATTRIBUTES)
def test_attribute_conditions(cond, passes):
    m = parse_message(doc(audience={"attributes": [cond]}))
    rule = check_attribute(m.audience.attributes[0], contact())
    assert rule.passed is passes, rule.sentence


PAGES = [
    ("equals", "https://shop.example/upload", "https://shop.example/upload", True),
    ("equals", "https://shop.example/upload", "https://shop.example/upload?x=1", False),
    ("contains", "/upload", "https://shop.example/upload", True),
    ("starts_with", "https://shop.example/", "https://shop.example/upload", True),
    ("starts_with", "https://other.example/", "https://shop.example/upload", False),
    ("contains", "/upload", None, False),  # a server source has no page
]


@pytest.mark.parametrize("op,value,url,passes", PAGES)
def test_page_url_conditions(op, value, url, passes):
    m = parse_message(doc(audience={"page_url": [{"op": op, "value": value}]}))
    assert check_page(m.audience.page_url[0], url).passed is passes


# ------------------------------------------------------------------------------------------ frequency and time
CAPS = [
    (Frequency(2, 1), (), True),
    (Frequency(2, 1), (NOW - 10,), True),
    (Frequency(2, 1), (NOW - 10, NOW - 20), False),
    (Frequency(2, 1), (NOW - 86400 - 1, NOW - 86400 - 2), True),  # outside the window
    (Frequency(1, 7), (NOW - 6 * 86400,), False),
    (Frequency(1, 7), (NOW - 8 * 86400,), True),
    (Frequency(None, 1), tuple(NOW - i for i in range(50)), True),
]


@pytest.mark.parametrize("freq,sent,passes", CAPS)
def test_caps_count_a_sliding_window(freq, sent, passes):
    assert cap_rule(freq, sent, NOW).passed is passes


def test_the_workspace_gap_is_off_by_default_and_counts_minutes():
    assert gap_rule(None, NOW - 1, NOW) is None
    for last, passes in ((None, True), (NOW - 29 * 60, False), (NOW - 30 * 60, True)):
        rule = gap_rule(30, last, NOW)
        assert rule is not None and rule.passed is passes


def at(tz: str, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    return int(dt.datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(tz)).timestamp())


WEEKDAYS_9_TO_5 = OfficeHours((0, 1, 2, 3, 4), dt.time(9), dt.time(17))
FRIDAY_NIGHT = OfficeHours((4,), dt.time(22), dt.time(2))  # Friday 22:00 → Saturday 02:00
OFFICE = [
    (WEEKDAYS_9_TO_5, "Europe/Paris", at("Europe/Paris", 2026, 12, 2, 9, 0), True),  # Wednesday 09:00
    (WEEKDAYS_9_TO_5, "Europe/Paris", at("Europe/Paris", 2026, 12, 2, 16, 59), True),
    (WEEKDAYS_9_TO_5, "Europe/Paris", at("Europe/Paris", 2026, 12, 2, 17, 0), False),  # the end is excluded
    (WEEKDAYS_9_TO_5, "Europe/Paris", at("Europe/Paris", 2026, 12, 5, 12, 0), False),  # Saturday
    # 08:30 UTC is 09:30 in Paris but 03:30 in New York: the message's time zone decides.
    (WEEKDAYS_9_TO_5, "Europe/Paris", at("UTC", 2026, 12, 2, 8, 30), True),
    (WEEKDAYS_9_TO_5, "America/New_York", at("UTC", 2026, 12, 2, 8, 30), False),
    # Across midnight: Friday 23:00 and Saturday 01:00 are in, Saturday 03:00 and Friday 21:00 are not,
    # nor is Thursday night (the hours start on Fridays only).
    (FRIDAY_NIGHT, "Asia/Tokyo", at("Asia/Tokyo", 2026, 12, 4, 23, 0), True),
    (FRIDAY_NIGHT, "Asia/Tokyo", at("Asia/Tokyo", 2026, 12, 5, 1, 0), True),
    (FRIDAY_NIGHT, "Asia/Tokyo", at("Asia/Tokyo", 2026, 12, 5, 3, 0), False),
    (FRIDAY_NIGHT, "Asia/Tokyo", at("Asia/Tokyo", 2026, 12, 4, 21, 0), False),
    (FRIDAY_NIGHT, "Asia/Tokyo", at("Asia/Tokyo", 2026, 12, 4, 1, 0), False),
    # Daylight saving: 09:30 local on the Monday after Paris changes clocks (26 Oct 2026).
    (WEEKDAYS_9_TO_5, "Europe/Paris", at("Europe/Paris", 2026, 10, 26, 9, 30), True),
]


@pytest.mark.parametrize("hours,tz,now,inside", OFFICE)
def test_office_hours_in_the_messages_time_zone(hours, tz, now, inside):
    assert in_office_hours(hours, tz, now) is inside
    [rule] = schedule_rules(Schedule(office_hours=hours, timezone=tz), now)
    assert rule.passed is inside and tz in rule.sentence


def test_schedule_start_and_end():
    assert not schedule_rules(Schedule(start=NOW + 1), NOW)[0].passed
    assert schedule_rules(Schedule(start=NOW), NOW)[0].passed
    assert not schedule_rules(Schedule(end=NOW), NOW)[0].passed
    assert schedule_rules(Schedule(start=NOW - 1, end=NOW + 1), NOW)[0].passed
    assert schedule_rules(Schedule(), NOW) == []


# ------------------------------------------------------------------------------------------ content
RENDER: list[tuple[str, dict[str, Any], dict[str, str], str]] = [
    ("Your {{event.type}} upload is ready", {"type": "JPEG"}, {"type": "string"}, "Your JPEG upload is ready"),
    ("Hi {{ contact.name }}", {}, {}, "Hi Ada"),
    ('Hi {{contact.nickname | fallback: "there"}}', {}, {}, "Hi there"),
    ("Hi {{contact.nickname}}!", {}, {}, "Hi !"),  # missing, no fallback: empty
    ('{{event.missing | fallback: "soon"}}', {}, {}, "soon"),
    ('{{event.type | fallback: "x"}}', {"type": ""}, {"type": "string"}, "x"),  # empty counts as missing
    ("Plan {{contact.plan}}, {{contact.seats}} seats, id {{contact.user_id}}", {}, {}, "Plan pro, 5 seats, id 42"),
    ("Paid {{event.paid_at | date}}", {"paid_at": NOW}, {"paid_at": "date"}, "Paid 2 Dec 2026"),
    ("{{event.price | money}}", {"price": {"amount": 34999, "currency": "eur"}}, {"price": "money"}, "€349.99"),
    ("{{event.price}}", {"price": {"amount": 1999, "currency": "usd"}}, {"price": "money"}, "$19.99"),
    ("{{event.price | money}}", {"price": {"amount": 1500, "currency": "jpy"}}, {"price": "money"}, "¥1,500"),
    ("{{event.price | money}}", {"price": {"amount": 123456, "currency": "sek"}}, {"price": "money"}, "1,234.56 SEK"),
    ("{{event.type | money}}", {"type": "JPEG"}, {"type": "string"}, "JPEG"),  # a filter that cannot apply
    ('{{event.when | date | fallback: "—"}}', {}, {}, "—"),
    ("{{event.order}}", {"order": {"url": "https://s.x/o/1", "value": "TX1"}}, {"order": "rich_link"}, "TX1"),
    ("{{event.load}}", {"load": 3.0}, {"load": "number"}, "3"),
    ("{{EVENT.type}}", {"type": "x"}, {}, "{{EVENT.type}}"),  # unknown: left as written (validation reports it)
    # Markup in values stays text: the characters themselves, never interpreted.
    ("{{event.type}}", {"type": "<script>alert(1)</script>"}, {"type": "string"}, "<script>alert(1)</script>"),
    ("{{event.type}}", {"type": "a\x00b\x1bc"}, {"type": "string"}, "abc"),
]


@pytest.mark.parametrize("template,metadata,types,expected", RENDER)
def test_placeholders_and_filters(template, metadata, types, expected):
    assert render_text(template, metadata=metadata, metadata_types=types, contact=contact()) == expected


def test_date_filter_uses_the_messages_time_zone_and_text_as_html_escapes():
    late = int(dt.datetime(2026, 12, 2, 23, 30, tzinfo=dt.UTC).timestamp())
    assert render_text("{{event.d_at | date}}", metadata={"d_at": late}, tz=ZoneInfo("Asia/Tokyo")) == "3 Dec 2026"
    shown = render_text("{{event.x}}", metadata={"x": '<img src=x onerror="alert(1)">'})
    assert text_as_html(shown) == "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;"


def test_placeholder_problems_are_listed():
    assert placeholder_problems('Hi {{contact.name}} {{event.type | date | fallback: "x"}}') == []
    assert len(placeholder_problems("{{foo}} {{event.a | shout}} {{")) == 3
    assert format_money({"amount": 100, "currency": "zzz"}) is None


SANITIZE = [
    ("<p>Hello <b>Ada</b>, <i>welcome</i><br>back</p>", "<p>Hello <b>Ada</b>, <i>welcome</i><br>back</p>"),
    ("<script>alert(1)</script>Hi", "Hi"),  # scripts go with their content
    ("<style>p{color:red}</style>Hi", "Hi"),
    ('<p onclick="steal()">Hi</p>', "<p>Hi</p>"),  # event handlers
    ('<a href="javascript:alert(1)">x</a>', '<a rel="noopener noreferrer nofollow">x</a>'),
    ('<a href=" JaVaScRiPt:alert(1)">x</a>', '<a rel="noopener noreferrer nofollow">x</a>'),
    ('<a href="data:text/html,<script>1</script>">x</a>', '<a rel="noopener noreferrer nofollow">x</a>'),
    ('<a href="/relative">x</a>', '<a rel="noopener noreferrer nofollow">x</a>'),
    (
        '<a href="https://example.org/?a=1&b=2" target="_blank" style="x">x</a>',
        '<a href="https://example.org/?a=1&amp;b=2" rel="noopener noreferrer nofollow">x</a>',
    ),
    ("<img src=x onerror=alert(1)>Hi", "Hi"),
    ("<div><span><b>nested</b></span></div>", "<b>nested</b>"),  # other tags are unwrapped, content kept
    ("<iframe src=https://evil.example></iframe>ok", "ok"),
    ("<b><i>unclosed", "<b><i>unclosed</i></b>"),
    ("<!-- a comment -->Hi", "Hi"),
    ("<svg><script>alert(1)</script></svg>x", "x"),
    ("1 < 2 & 3 > 2", "1 &lt; 2 &amp; 3 &gt; 2"),
]


@pytest.mark.parametrize("dirty,clean", SANITIZE)
def test_the_html_allow_list(dirty, clean):
    assert sanitize_html(dirty) == clean


def test_html_to_text_for_a_conversation_part():
    assert (
        html_to_text("<p>Hi <b>Ada</b></p><p>Line<br>two &amp; more</p><script>x</script>")
        == "Hi Ada\n\nLine\ntwo & more"
    )
