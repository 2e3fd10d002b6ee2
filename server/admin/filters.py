"""The contact list's filters in the URL: ``role``, filter rows ``e0/op0/n0``, ``e1/op1/n1``, …, ``url``
("visited a URL containing …", page views) and the keyset cursor ``after``.

Plain GET parameters, so a filtered list is a link a teammate can bookmark or share, and the page works
without JavaScript: the form submits the rows it shows plus one empty row to fill in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlencode

from starlette.datastructures import QueryParams

from ..limits import MAX_SQL_INT, ascii_int
from ..metadata import display_name
from ..store.admin_reads import EVENT_FILTER_OPS, MAX_URL_FILTER, OPS_WITH_VALUE, EventFilter
from ..store.models import ROLES

MAX_FILTER_ROWS = 10
MAX_VALUE = 100_000  # days or counts; a bigger number is a typo


@dataclass(frozen=True)
class FilterRow:
    """One row of the form as the teammate left it (``error`` set when it cannot be applied)."""

    event_name: str
    op: str
    value: str
    error: str | None = None

    def describe(self) -> str:
        """The row in words: 'did "Upload complete" more than 3 times'."""
        name = f"“{display_name(self.event_name)}”"
        n = self.value
        days = f"{n} day{'' if n == '1' else 's'} ago"
        return {
            "done": f"did {name}", "not_done": f"never did {name}",
            "count_gt": f"did {name} more than {n} times", "count_lt": f"did {name} fewer than {n} times",
            "count_eq": f"did {name} exactly {n} times",
            "first_gt": f"first did {name} more than {days}", "first_lt": f"first did {name} less than {days}",
            "first_eq": f"first did {name} exactly {days}",
            "last_gt": f"last did {name} more than {days}", "last_lt": f"last did {name} less than {days}",
            "last_eq": f"last did {name} exactly {days}",
        }.get(self.op, name)

    def as_filter(self) -> EventFilter | None:
        if self.error or not self.event_name:
            return None
        return EventFilter(self.op, self.event_name, int(self.value) if self.op in OPS_WITH_VALUE else 0)


@dataclass
class ContactQuery:
    role: str | None = None
    rows: list[FilterRow] = field(default_factory=list)
    after: tuple[int, str] | None = None
    url: str = ""  # visited a URL containing this (after the event rows, so their stats keep their places)

    @property
    def filters(self) -> list[EventFilter]:
        found = [f for f in (row.as_filter() for row in self.rows) if f is not None]
        return [*found, EventFilter.visited(self.url)] if self.url else found

    def describe_url(self) -> str:
        return f"visited a URL containing “{self.url}”"

    def params(self, *, role: str | bool | None = False, after: tuple[int, str] | None = None,
               without: int | None = None) -> str:
        """This query as a URL query string, with ``role`` replaced (when given), the cursor ``after``,
        and the row ``without`` left out."""
        pairs: list[tuple[str, str]] = []
        chosen = self.role if role is False else role
        if chosen:
            pairs.append(("role", str(chosen)))
        kept = [r for i, r in enumerate(self.rows) if i != without and r.event_name]
        for i, row in enumerate(kept):
            pairs += [(f"e{i}", row.event_name), (f"op{i}", row.op)]
            if row.op in OPS_WITH_VALUE:
                pairs.append((f"n{i}", row.value))
        if self.url:
            pairs.append(("url", self.url))
        if after is not None:
            pairs.append(("after", f"{after[0]}:{after[1]}"))
        return urlencode(pairs)


def parse(params: QueryParams) -> ContactQuery:
    role = params.get("role") or None
    query = ContactQuery(role=role if role in ROLES else None)
    for i in range(MAX_FILTER_ROWS):
        name = (params.get(f"e{i}") or "").strip()
        op = params.get(f"op{i}") or "done"
        value = (params.get(f"n{i}") or "").strip()
        if not name:  # the form's blank row (submitted with its condition's default): the page adds a fresh one
            continue
        query.rows.append(FilterRow(name, op, value, _row_error(name, op, value)))
    query.url = (params.get("url") or "").strip()[:MAX_URL_FILTER]
    query.after = _cursor(params.get("after"))
    return query


def _row_error(name: str, op: str, value: str) -> str | None:
    if not name:
        return None  # the empty row: ignored
    if op not in EVENT_FILTER_OPS:
        return "choose a condition"
    if op in OPS_WITH_VALUE:
        # ASCII digits only: "²".isdigit() is True but int("²") raises, and 5,000 digits exceed int()'s limit.
        if not (value.isascii() and value.isdigit()):
            return "enter a whole number"
        if ascii_int(value, maximum=MAX_VALUE) is None:
            return f"enter a number up to {MAX_VALUE:,}"
    return None


def _cursor(raw: str | None) -> tuple[int, str] | None:
    if not raw or ":" not in raw:
        return None
    seen, _, contact_id = raw.partition(":")
    value = ascii_int(seen, minimum=-MAX_SQL_INT)  # a cursor this page handed out; anything else: page 1
    return None if value is None else (value, contact_id)
