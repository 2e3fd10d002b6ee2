"""Intercom's contact search, as the REST API takes it: the searchable fields and their operators, the
query parser (``POST /contacts/search``), and the ``starting_after`` cursors of contact lists. The store
runs the parsed :data:`Query` (``store.contacts_store.compile_query``).
"""

from __future__ import annotations

import base64
import math
from typing import Any

from .errors import bad_request
from .limits import MAX_ATTRIBUTE_LENGTH, MAX_SAFE_INT, MAX_TIMESTAMP, ascii_int
from .store.contacts_store import ATTRIBUTE, BOOLEAN, CUSTOM_PREFIX, DATE, INTEGER, STRING, Filter, Group, Query
from .store.models import LEAD, USER

MAX_IN_VALUES = 100  # our bound on IN / NIN lists
MAX_GROUP = 15  # Intercom: "a limit of max 15 filters for each AND or OR group"
MAX_NESTING = 2  # Intercom: "a limit of max 2 nested filters"

# Searchable fields and their kinds (Intercom's "Accepted Fields" table, the part Trailmark stores).
SEARCH_FIELDS: dict[str, str] = {
    "id": STRING, "role": STRING, "name": STRING, "avatar": STRING, "owner_id": INTEGER, "email": STRING,
    "email_domain": STRING, "phone": STRING, "external_id": STRING, "created_at": DATE, "signed_up_at": DATE,
    "updated_at": DATE, "last_seen_at": DATE, "last_contacted_at": DATE, "unsubscribed_from_emails": BOOLEAN,
}
# Which operators go with which kind of value (Intercom's "Accepted Operators" table).
OPERATORS = {
    STRING: {"=", "!=", "IN", "NIN", "~", "!~", "^", "$"},
    DATE: {"=", "!=", "IN", "NIN", ">", "<"},
    INTEGER: {"=", "!=", "IN", "NIN", ">", "<"},
    BOOLEAN: {"=", "!="},
}
ALL_OPERATORS = ("=", "!=", "IN", "NIN", ">", "<", "~", "!~", "^", "$")


def field_kind(name: str) -> str | None:
    if name.startswith(CUSTOM_PREFIX) and len(name) > len(CUSTOM_PREFIX):
        return ATTRIBUTE
    return SEARCH_FIELDS.get(name)


def parse_search(node: Any, path: str = "query", depth: int = 0) -> Query:
    """Intercom's search query: a filter ``{field, operator, value}`` or a group ``{operator: AND|OR,
    value: [...]}``; groups nest at most 2 deep and hold at most 15 items. 400 ``parameter_invalid``
    (with the offending path in ``field``) otherwise."""
    if not isinstance(node, dict):
        raise bad_request("a search query must be an object", path)
    op = node.get("operator")
    if "field" not in node and op in ("AND", "OR"):
        if depth >= MAX_NESTING:
            raise bad_request(f"search queries nest at most {MAX_NESTING} levels of AND/OR", path)
        items = node.get("value")
        if not isinstance(items, list) or not items:
            raise bad_request(f"{op} needs a non-empty list of filters as its value", f"{path}.value")
        if len(items) > MAX_GROUP:
            raise bad_request(f"at most {MAX_GROUP} filters in each AND or OR group", f"{path}.value")
        return Group(op, tuple(parse_search(item, f"{path}.value[{i}]", depth + 1) for i, item in enumerate(items)))
    return _parse_filter(node, path)


def _parse_filter(node: dict[str, Any], path: str) -> Filter:
    name, op = node.get("field"), node.get("operator")
    if not isinstance(name, str) or not name:
        raise bad_request("each filter needs a field (or an AND/OR operator)", f"{path}.field")
    kind = field_kind(name)
    if kind is None:
        raise bad_request(f"'{name}' is not a searchable field", f"{path}.field")
    if op not in ALL_OPERATORS:
        raise bad_request(f"operator must be one of {', '.join(ALL_OPERATORS)}", f"{path}.operator")
    if "value" not in node:
        raise bad_request("each filter needs a value", f"{path}.value")
    value = node["value"]
    where = f"{path}.value"
    if op in ("IN", "NIN"):
        if not isinstance(value, list) or not value or len(value) > MAX_IN_VALUES:
            raise bad_request(f"{op} needs a list of 1 to {MAX_IN_VALUES} values", where)
        checked = [_filter_value(name, kind, "=", v, f"{where}[{i}]") for i, v in enumerate(value)]
        if any(v is None for v in checked):
            raise bad_request(f"{op} values must not be null", where)
        if kind == ATTRIBUTE and len({_json_kind(v) for v in checked}) > 1:
            raise bad_request(f"{op} values must all be of one type", where)
        return Filter(name, op, checked, kind)
    return Filter(name, op, _filter_value(name, kind, op, value, where), kind)


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return "string"


def _filter_value(name: str, kind: str, op: str, value: Any, where: str) -> Any:
    """One filter value, checked against the field's type and the operator."""
    if value is None:
        if op not in ("=", "!="):
            raise bad_request(f"null only goes with = and != ({name})", where)
        return None
    if kind == ATTRIBUTE:
        vkind = _json_kind(value)
        if isinstance(value, (list, dict)):
            raise bad_request("custom attribute filters compare a string, number or boolean", where)
        if isinstance(value, float) and not math.isfinite(value):
            raise bad_request("numbers must be finite", where)
        allowed = {"string": OPERATORS[STRING], "number": OPERATORS[INTEGER], "boolean": OPERATORS[BOOLEAN]}[vkind]
        if op not in allowed:
            raise bad_request(f"operator {op} does not apply to a {vkind} value", where)
        if isinstance(value, str) and len(value) > MAX_ATTRIBUTE_LENGTH:
            raise bad_request(f"value is longer than {MAX_ATTRIBUTE_LENGTH} characters", where)
        if vkind == "number" and abs(value) > MAX_SAFE_INT:
            raise bad_request("value is too large", where)
        return value
    if op not in OPERATORS[kind] and op not in ("IN", "NIN"):
        raise bad_request(f"operator {op} does not apply to {name} (a {kind} field)", where)
    if kind == STRING:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or len(value) > MAX_ATTRIBUTE_LENGTH:
            raise bad_request(f"{name} is compared with a string of at most {MAX_ATTRIBUTE_LENGTH} characters", where)
        if name == "role" and value not in (USER, LEAD):
            raise bad_request("role is 'user' or 'lead'", where)
        if op in ("~", "!~", "^", "$") and not value:
            raise bad_request(f"operator {op} needs a non-empty string", where)
        return value
    if kind in (DATE, INTEGER):
        if isinstance(value, bool) or not isinstance(value, int) or abs(value) > MAX_TIMESTAMP:
            raise bad_request(f"{name} is compared with {'a unix timestamp' if kind == DATE else 'an integer'}",
                              where)
        return value
    if not isinstance(value, bool):
        raise bad_request(f"{name} is compared with a boolean", where)
    return value


# ------------------------------------------------------------------------------------------ cursors
def encode_cursor(page: int, created_at: int, contact_id: str) -> str:
    raw = f"{page}:{created_at}:{contact_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int, str] | None:
    """``(page, created_at, id)`` of the last contact on the previous page; ``None`` when malformed."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    page, _, rest = raw.partition(":")
    created_at, _, contact_id = rest.partition(":")
    # ASCII digits, bounded: int() would take "²"-style digits and raise past 4,300 of them.
    number, created = ascii_int(page, minimum=1), ascii_int(created_at, minimum=-2**62, maximum=2**62)
    if number is None or created is None or not contact_id:
        return None
    return number, created, contact_id


def cursor_param(raw: Any, field: str = "starting_after") -> tuple[int, int, str] | None:
    if raw is None or raw == "":
        return None
    cursor = decode_cursor(raw) if isinstance(raw, str) else None
    if cursor is None:
        raise bad_request("starting_after is not a cursor this server handed out", field)
    return cursor
