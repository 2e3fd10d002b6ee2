"""Every metadata and event-name rule of the product document (seed doc, "Event Metadata"), table-driven:
what is kept (and as which type), what is dropped (and why), for keys, values, the key limit and names."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trailmark.metadata import (
    DATE,
    IMAGE,
    LINK,
    MAX_METADATA_KEYS,
    MONEY,
    NUMBER,
    RICH_LINK,
    STRING,
    STRIPE,
    InvalidEventName,
    check_key,
    display_name,
    normalize_event_name,
    validate_metadata,
)

ALL_TYPES = {STRING, NUMBER, DATE, LINK, RICH_LINK, IMAGE, STRIPE, MONEY}


def one(key: str, value: Any) -> tuple[dict[str, Any], dict[str, str], list[dict[str, str]]]:
    clean = validate_metadata({key: value})
    return clean.values, clean.types, [d.as_dict() for d in clean.dropped]


# ------------------------------------------------------------------ values that are kept, and their type
KEPT = [
    # (key, value, type, stored value)
    ("type", "JPEG", STRING, "JPEG"),
    ("empty", "", STRING, ""),
    ("s255", "x" * 255, STRING, "x" * 255),
    ("unicode", "é" * 255, STRING, "é" * 255),
    ("duration", 19, NUMBER, 19),
    ("load", 3.67, NUMBER, 3.67),
    ("delta", -42, NUMBER, -42),
    ("neg_float", -0.5, NUMBER, -0.5),
    ("zero", 0, NUMBER, 0),
    ("max_safe", 2**53, NUMBER, 2**53),
    ("min_safe", -(2**53), NUMBER, -(2**53)),
    ("contact_date", 1392036272, DATE, 1392036272),
    ("paid_at", 1392036272, DATE, 1392036272),
    ("float_at", 1392036272.9, DATE, 1392036272),
    ("Signup_AT", 1392036272, DATE, 1392036272),  # keys are case-insensitive, so is the suffix
    ("before_1970_date", -86400, DATE, -86400),
    ("year_9999_date", 253402300799, DATE, 253402300799),
    ("date", 1392036272, NUMBER, 1392036272),  # no "_date" suffix: just a number
    ("updated_at_ms", 1392036272000, NUMBER, 1392036272000),  # suffix must end the key
    ("label_at", "yesterday", STRING, "yesterday"),  # a string under a date key stays a string
    ("article", "https://example.org/ab1de.html", LINK, "https://example.org/ab1de.html"),
    ("plain_http", "http://example.org", LINK, "http://example.org"),
    ("long_link", "https://example.org/" + "a" * 300, LINK, "https://example.org/" + "a" * 300),
    ("file_location", "https://cdn.example/example.jpg", IMAGE, "https://cdn.example/example.jpg"),
    ("upper_ext", "https://cdn.example/A.PNG", IMAGE, "https://cdn.example/A.PNG"),
    ("query_ext", "https://cdn.example/a.webp?w=200", IMAGE, "https://cdn.example/a.webp?w=200"),
    ("svg", "http://cdn.example/logo.svg", IMAGE, "http://cdn.example/logo.svg"),
    ("jpg_in_query", "https://cdn.example/view?f=a.jpg", LINK, "https://cdn.example/view?f=a.jpg"),
    ("js_url", "javascript:alert(1)", STRING, "javascript:alert(1)"),
    ("ftp_url", "ftp://files.example/a.png", STRING, "ftp://files.example/a.png"),
    ("no_host", "http://", STRING, "http://"),
    ("spaced_url", "https://exa mple.org/", STRING, "https://exa mple.org/"),
    ("order_number", {"url": "https://shop.example/o/1", "value": "TX186373"}, RICH_LINK,
     {"url": "https://shop.example/o/1", "value": "TX186373"}),
    ("invoice", "in_1MtHbELkdIwHu7ixl4OzzPMv", STRIPE, "in_1MtHbELkdIwHu7ixl4OzzPMv"),
    ("customer", "cus_NffrFeUfNV2Hib", STRIPE, "cus_NffrFeUfNV2Hib"),
    ("charge", "ch_3MmlLrLkdIwHu7ix0snN0B15", STRIPE, "ch_3MmlLrLkdIwHu7ix0snN0B15"),
    ("subscription", "sub_1MowQVLkdIwHu7ixeRlqHVzs", STRING, "sub_1MowQVLkdIwHu7ixeRlqHVzs"),
    ("short_stripe", "in_abc", STRING, "in_abc"),
    ("price", {"amount": 34999, "currency": "eur"}, MONEY, {"amount": 34999, "currency": "eur"}),
    ("upper_currency", {"amount": 100, "currency": "USD"}, MONEY, {"amount": 100, "currency": "usd"}),
    ("free", {"amount": 0, "currency": "gbp"}, MONEY, {"amount": 0, "currency": "gbp"}),
]


@pytest.mark.parametrize(("key", "value", "kind", "stored"), KEPT, ids=[k[0] for k in KEPT])
def test_value_is_kept_with_its_type(key: str, value: Any, kind: str, stored: Any) -> None:
    values, types, dropped = one(key, value)
    assert dropped == []
    assert values == {key.lower(): stored}
    assert types == {key.lower(): kind}
    assert type(values[key.lower()]) is type(stored)


# ------------------------------------------------------------------ values that are dropped, and why
DROPPED = [
    # (id, key, value, words the reason must contain)
    ("string_256", "s", "x" * 256, "longer than 255"),
    ("nan", "n", math.nan, "finite"),
    ("inf", "n", math.inf, "finite"),
    ("minus_inf", "n", -math.inf, "finite"),
    ("beyond_2_53", "n", 2**53 + 1, "too large"),
    ("below_minus_2_53", "n", -(2**53) - 1, "too large"),
    ("huge_float", "n", 1e300, "too large"),
    ("ms_date", "signup_date", 1392036272000, "milliseconds"),
    ("ms_at", "paid_at", 1700000000000, "milliseconds"),
    ("ancient_date", "born_date", -62135596801, "milliseconds"),
    ("true", "flag", True, "booleans"),
    ("false", "flag", False, "booleans"),
    ("null", "gone", None, "null"),
    ("list", "tags", ["a", "b"], "lists"),
    ("empty_list", "tags", [], "lists"),
    ("nested", "address", {"city": "Paris"}, "nested"),
    ("empty_object", "o", {}, "nested"),
    ("rich_link_extra_key", "r", {"url": "https://a.example", "value": "A", "x": 1}, "nested"),
    ("rich_link_no_value", "r", {"url": "https://a.example"}, "nested"),
    ("rich_link_js_url", "r", {"url": "javascript:alert(1)", "value": "A"}, "http or https"),
    ("rich_link_ftp_url", "r", {"url": "ftp://a.example/x", "value": "A"}, "http or https"),
    ("rich_link_url_not_string", "r", {"url": 5, "value": "A"}, "http or https"),
    ("rich_link_empty_value", "r", {"url": "https://a.example", "value": ""}, "non-empty"),
    ("rich_link_blank_value", "r", {"url": "https://a.example", "value": "   "}, "non-empty"),
    ("rich_link_value_not_string", "r", {"url": "https://a.example", "value": 7}, "non-empty"),
    ("rich_link_value_256", "r", {"url": "https://a.example", "value": "v" * 256}, "non-empty"),
    ("money_negative", "p", {"amount": -1, "currency": "eur"}, "non-negative integer"),
    ("money_float", "p", {"amount": 349.99, "currency": "eur"}, "non-negative integer"),
    ("money_float_integral", "p", {"amount": 100.0, "currency": "eur"}, "non-negative integer"),
    ("money_bool", "p", {"amount": True, "currency": "eur"}, "non-negative integer"),
    ("money_string_amount", "p", {"amount": "100", "currency": "eur"}, "non-negative integer"),
    ("money_too_large", "p", {"amount": 2**53 + 1, "currency": "eur"}, "non-negative integer"),
    ("money_currency_4", "p", {"amount": 100, "currency": "EURO"}, "ISO 4217"),
    ("money_currency_unknown", "p", {"amount": 100, "currency": "zzz"}, "'zzz' is not an ISO 4217 currency code"),
    ("money_currency_testing", "p", {"amount": 100, "currency": "XTS"}, "not an ISO 4217 currency code"),
    ("money_currency_digits", "p", {"amount": 100, "currency": "12a"}, "ISO 4217"),
    ("money_currency_number", "p", {"amount": 100, "currency": 978}, "ISO 4217"),
    ("money_currency_empty", "p", {"amount": 100, "currency": ""}, "ISO 4217"),
]


@pytest.mark.parametrize(("key", "value", "reason"), [d[1:] for d in DROPPED], ids=[d[0] for d in DROPPED])
def test_value_is_dropped_with_a_reason(key: str, value: Any, reason: str) -> None:
    values, types, dropped = one(key, value)
    assert values == {} and types == {}
    assert len(dropped) == 1
    assert dropped[0]["key"] == key
    assert reason in dropped[0]["reason"]


def test_dropping_one_entry_keeps_the_others() -> None:
    clean = validate_metadata({"duration": 19, "flag": True, "type": "JPEG"})
    assert clean.values == {"duration": 19, "type": "JPEG"}
    assert [d.key for d in clean.dropped] == ["flag"]


# ------------------------------------------------------------------ key names
FORBIDDEN = [*".$~`!@#%^&*'{}|\\\"", "\x00"]


@pytest.mark.parametrize("char", FORBIDDEN, ids=[f"U+{ord(c):04X}" for c in FORBIDDEN])
@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_key_with_a_forbidden_character_is_dropped(char: str, where: str) -> None:
    key = {"start": char + "plan", "middle": "pl" + char + "an", "end": "plan" + char}[where]
    clean = validate_metadata({key: "pro", "ok": 1})
    assert clean.values == {"ok": 1}
    [drop] = clean.dropped
    assert drop.key == key.replace("\x00", "\\u0000")  # NUL is reported escaped (PostgreSQL text can't hold it)
    assert "not allowed" in drop.reason
    assert ("NUL" if char == "\x00" else char) in drop.reason


KEY_OK = [
    ("dash", "invited-friend", "invited-friend"),
    ("space", "invited friend", "invited friend"),
    ("underscore", "file_location", "file_location"),
    ("upper", "Plan", "plan"),
    ("digits", "step2", "step2"),
    ("unicode", "größe", "größe"),
    ("colon_slash", "utm:source/x", "utm:source/x"),
    ("trimmed", "  plan ", "plan"),
    ("key_255", "k" * 255, "k" * 255),
]


@pytest.mark.parametrize(("raw", "stored"), [k[1:] for k in KEY_OK], ids=[k[0] for k in KEY_OK])
def test_allowed_key_is_stored_lower_case(raw: str, stored: str) -> None:
    assert check_key(raw) == stored
    assert validate_metadata({raw: 1}).values == {stored: 1}


KEY_BAD = [
    ("empty", "", "empty"),
    ("blank", "   ", "empty"),
    ("key_256", "k" * 256, "longer than 255"),
]


@pytest.mark.parametrize(("raw", "reason"), [k[1:] for k in KEY_BAD], ids=[k[0] for k in KEY_BAD])
def test_bad_key_is_dropped(raw: str, reason: str) -> None:
    clean = validate_metadata({raw: 1})
    assert clean.values == {}
    assert [d.key for d in clean.dropped] == [raw]
    assert reason in clean.dropped[0].reason


def test_non_string_key_is_refused_by_check_key() -> None:
    with pytest.raises(ValueError, match="string"):
        check_key(5)


@pytest.mark.parametrize(("first", "second"),
                         [("Plan", "plan"), ("plan", "PLAN"), ("Invited-Friend", "invited-friend")])
def test_keys_are_case_insensitive_so_the_second_spelling_is_a_duplicate(first: str, second: str) -> None:
    clean = validate_metadata({first: "pro", second: "free"})
    assert clean.values == {first.lower(): "pro"}  # the first one sent wins
    [drop] = clean.dropped
    assert drop.key == second and "duplicate" in drop.reason


def test_dash_and_space_stay_different_keys_but_display_alike() -> None:
    clean = validate_metadata({"invited-friend": "ann@example.com", "invited friend": "bob@example.com"})
    assert clean.values == {"invited-friend": "ann@example.com", "invited friend": "bob@example.com"}
    assert clean.dropped == []
    assert display_name("invited-friend") == display_name("invited friend") == "Invited friend"


@pytest.mark.parametrize(("name", "shown"), [
    ("invited-friend", "Invited friend"),
    ("invited friend", "Invited friend"),
    ("upload-complete", "Upload complete"),
    ("a--b", "A b"),
    ("-leading-dash", "Leading dash"),
    ("file_location", "File location"),
    ("x", "X"),
    ("", ""),
], ids=["dash", "space", "event-name", "double-dash", "leading-dash", "underscore", "one-char", "empty"])
def test_display_name_drops_dashes_and_underscores(name: str, shown: str) -> None:
    assert display_name(name) == shown


# ------------------------------------------------------------------ the 20-key limit
def test_twenty_keys_are_kept_the_twenty_first_is_dropped_in_sent_order() -> None:
    raw = {f"k{i:02d}": i for i in range(MAX_METADATA_KEYS + 1)}
    clean = validate_metadata(raw)
    assert MAX_METADATA_KEYS == 20
    assert list(clean.values) == [f"k{i:02d}" for i in range(20)]
    assert [(d.key, d.reason) for d in clean.dropped] == [("k20", "more than 20 metadata keys")]


def test_order_is_the_order_sent_not_alphabetical() -> None:
    keys = [f"z{i}" if i % 2 else f"a{i}" for i in range(25)]
    clean = validate_metadata({k: 1 for k in keys})
    assert list(clean.values) == keys[:20]
    assert [d.key for d in clean.dropped] == keys[20:]


def test_dropped_entries_do_not_use_up_the_twenty_slots() -> None:
    raw: dict[str, Any] = {"bad.key": 1, "flag": True}
    raw.update({f"k{i:02d}": i for i in range(20)})
    clean = validate_metadata(raw)
    assert list(clean.values) == [f"k{i:02d}" for i in range(20)]
    assert [d.key for d in clean.dropped] == ["bad.key", "flag"]


def test_twenty_keys_exactly_drop_nothing() -> None:
    clean = validate_metadata({f"k{i}": "v" for i in range(20)})
    assert len(clean.values) == 20 and clean.dropped == []


# ------------------------------------------------------------------ event names
NAMES_OK = [
    ("plain", "upload-complete", "upload-complete"),
    ("trimmed", "  upload-complete\t", "upload-complete"),
    ("case", "Completed-Order", "completed-order"),
    ("dot", "completed.order", "completed-order"),
    ("dollar", "$pageview", "-pageview"),
    ("dots_and_dollars", "a.b$c", "a-b-c"),
    ("spaces_inside", "Purchased item", "purchased item"),
    ("unicode", "Größe-geändert", "größe-geändert"),
    ("len_255", "e" * 255, "e" * 255),
    ("len_255_after_trim", "  " + "e" * 255 + "  ", "e" * 255),
]


@pytest.mark.parametrize(("raw", "name"), [n[1:] for n in NAMES_OK], ids=[n[0] for n in NAMES_OK])
def test_event_name_is_normalised(raw: str, name: str) -> None:
    assert normalize_event_name(raw) == name


NAMES_BAD = [
    ("empty", "", "empty"),
    ("blank", "   ", "empty"),
    ("len_256", "e" * 256, "longer than 255"),
    ("newline_inside", "upload\ncomplete", "control"),
    ("nul_inside", "upload\x00complete", "control"),
    ("del_inside", "upload\x7fcomplete", "control"),
    ("escape_inside", "upload\x1bcomplete", "control"),
    ("none", None, "string"),
    ("number", 42, "string"),
    ("bool", True, "string"),
    ("list", ["upload"], "string"),
    ("object", {"name": "upload"}, "string"),
]


@pytest.mark.parametrize(("raw", "reason"), [n[1:] for n in NAMES_BAD], ids=[n[0] for n in NAMES_BAD])
def test_bad_event_name_is_refused(raw: Any, reason: str) -> None:
    with pytest.raises(InvalidEventName, match=reason):
        normalize_event_name(raw)


# ------------------------------------------------------------------ properties
json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=300)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=3), max_leaves=8)
special_objects = st.fixed_dictionaries({"url": json_values, "value": json_values}) | st.fixed_dictionaries(
    {"amount": st.integers(min_value=-5, max_value=10**6) | st.floats(), "currency": st.text(max_size=4)})
metadata_dicts = st.dictionaries(
    st.text(max_size=12) | st.sampled_from(["Plan", "plan", "x_at", "x_date", "a.b", "link"]),
    json_values | special_objects | st.sampled_from(["https://a.example/p.png", "cus_12345678", "http://a.example"]),
    max_size=30)


@pytest.mark.slow
@settings(max_examples=300, database=None, deadline=None)
@given(metadata_dicts)
def test_validate_metadata_accounts_for_every_key_and_never_raises(raw: dict[str, Any]) -> None:
    clean = validate_metadata(raw)
    assert len(clean.values) <= MAX_METADATA_KEYS
    assert list(clean.values) == list(clean.types)  # every kept key has a type, in the same order
    assert set(clean.types.values()) <= ALL_TYPES
    assert len(clean.values) + len(clean.dropped) == len(raw)  # each key is either kept or reported
    for key in clean.values:
        assert check_key(key) == key  # kept keys are valid and already in stored (lower-case) form
    dropped = {d.key for d in clean.dropped}
    kept_raw = [k for k in raw if k.replace("\x00", "\\u0000") not in dropped]
    assert [k.strip().lower() for k in kept_raw] == list(clean.values)  # sent order is kept


@pytest.mark.slow
@settings(max_examples=300, database=None, deadline=None)
@given(metadata_dicts)
def test_validating_kept_metadata_again_changes_nothing(raw: dict[str, Any]) -> None:
    """A stored value, read back and re-sent (e.g. by an export/import), keeps its value and type."""
    first = validate_metadata(raw)
    second = validate_metadata(first.values)
    assert second.values == first.values
    assert second.types == first.types
    assert second.dropped == []


# ------------------------------------------------------------------ the speedups give the same answers
# (server/metadata.py: a fast path for ordinary http(s) URLs instead of urlsplit; keys and event names
# checked once per distinct spelling)
def urlsplit_path(value: str) -> str | None:
    """The rule as first written: urlsplit decides (kept here as the reference)."""
    from urllib.parse import urlsplit

    from trailmark.metadata import CONTROL_CHARS, MAX_URL_LENGTH

    if len(value) > MAX_URL_LENGTH or CONTROL_CHARS.search(value) or " " in value:
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    return parts.path if parts.scheme in ("http", "https") and parts.netloc else None


URLS = ["http://", "https://", "http://x", "https://a.example/p.png", "https://a.example/P.PNG?size=2#top",
        "http://a.example?x=/b.png", "http://a.example#/b.png", "http://a.example/b.png#x?y", "http://a.example/b?c#d",
        "http://user:pw@a.example:99999/x.gif", "http://[::1]/a.png", "http://[::1/a.png", "http://::1]/a.png",
        "http://a.example/[x].png", "http://\u2100.example/x.png", "https://a.example/é.png", "https:///path.png",
        "http:/a.example/x.png", "HTTP://a.example/x.png", "http://a.example/ x.png", "http://a.example/\tx.png",
        "https://a.example/" + "p" * 2040, "ftp://a.example/x.png", "http://a.example/x.png/", "http://?#"]
url_text = st.lists(st.sampled_from([*"ab.:/?#[]@%-_~é\u2100 \t", "http://", "https://", ".png"]),
                   max_size=30).map("".join)


@pytest.mark.parametrize("url", URLS)
def test_url_fast_path_agrees_with_urlsplit(url: str) -> None:
    from trailmark.metadata import _http_url_path, is_http_url

    assert _http_url_path(url) == urlsplit_path(url)
    assert is_http_url(url) == (urlsplit_path(url) is not None)


@settings(max_examples=500, database=None, deadline=None)
@given(url_text)
def test_url_fast_path_agrees_with_urlsplit_on_any_text(text: str) -> None:
    from trailmark.metadata import _http_url_path

    for url in (text, "http://" + text, "https://" + text, "https://a.example/" + text):
        assert _http_url_path(url) == urlsplit_path(url), url


@pytest.mark.slow
@settings(max_examples=200, database=None, deadline=None)
@given(metadata_dicts)
def test_checking_a_key_again_gives_the_same_answer(raw: dict[str, Any]) -> None:
    from trailmark import metadata

    metadata._KEYS.clear()
    cold = validate_metadata(raw)
    warm = validate_metadata(raw)
    assert (warm.values, warm.types, warm.dropped) == (cold.values, cold.types, cold.dropped)


def test_key_and_name_caches_are_bounded_and_keep_refusing() -> None:
    from trailmark import metadata

    for i in range(metadata._KEYS_LIMIT + 10):
        assert validate_metadata({f"Key{i}": i}).values == {f"key{i}": i}
        assert normalize_event_name(f"Name.{i}") == f"name-{i}"
    assert len(metadata._KEYS) <= metadata._KEYS_LIMIT and len(metadata._NAMES) <= metadata._KEYS_LIMIT
    for _ in range(2):
        assert [d.as_dict() for d in validate_metadata({"a.b": 1, " ": 2, "X\x00": 3}).dropped] == [
            {"key": "a.b", "reason": "key contains characters that are not allowed: ."},
            {"key": " ", "reason": "key must not be empty"},
            {"key": "X\\u0000", "reason": "key contains characters that are not allowed: NUL"}]
        with pytest.raises(InvalidEventName, match="empty"):
            normalize_event_name("  ")
        with pytest.raises(InvalidEventName, match="string"):
            normalize_event_name(5)


def test_a_renamed_event_name_is_reported_like_a_dropped_entry_with_one_reason_text() -> None:
    from trailmark.ingest import reported_drops, validate_event
    from trailmark.metadata import RENAMED_EVENT_NAME

    for raw, stored in (("checkout.completed", "checkout-completed"), (" Cart$Total ", "cart-total")):
        # Strict or not: a rename is never a refusal.
        event = validate_event({"event_name": raw, "metadata": {"flag": True}}, strict=False, now=1_800_000_000,
                               dedupe_key="k")
        assert event.event_name == stored
        # The metadata drops (what the admin and the import summary count) hold only real drops ...
        assert [d["key"] for d in event.dropped] == ["flag"]
        # ... and the sender hears of the rename as well, with a constant reason and the name apart.
        assert reported_drops(event)[1:] == [{"key": "event_name", "reason": RENAMED_EVENT_NAME, "stored_as": stored}]
        assert validate_event({"event_name": raw}, strict=True, now=1_800_000_000, dedupe_key="k").renamed
    plain = validate_event({"event_name": "Checkout-Completed"}, strict=True, now=1_800_000_000, dedupe_key="k")
    assert not plain.renamed and reported_drops(plain) == []


async def test_rest_and_segment_senders_hear_about_a_renamed_event(harness) -> None:
    import base64
    import json
    import time

    from trailmark.metadata import RENAMED_EVENT_NAME

    h = harness
    user = await h.store.create_contact(h.workspace, "user", external_id="u1")
    r = await h.client.post("/events", json={"event_name": "a$b", "user_id": "u1", "created_at": int(time.time()) - 60},
                            headers=h.auth)
    assert r.status_code == 202, r.text
    assert json.loads(r.headers["X-Trailmark-Dropped-Metadata"]) == [
        {"key": "event_name", "reason": "'.' and '$' are not allowed in event names: stored renamed (see stored_as)",
         "stored_as": "a-b"}]
    assert [e.event_name for e in await h.store.events_for(h.workspace, user, limit=10)] == ["a-b"]
    # Segment's track (Basic auth with the access token, as tests/test_segment.py posts).
    auth = "Basic " + base64.b64encode(f"{h.workspace.access_token}:".encode()).decode()
    r = await h.client.post("/v1/track", json={"userId": "u1", "event": "Order.Completed"},
                            headers={"Authorization": auth})
    assert r.status_code == 200, r.text
    assert r.json()["dropped"] == [{"key": "event_name", "reason": RENAMED_EVENT_NAME, "stored_as": "order-completed"}]
