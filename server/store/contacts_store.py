"""The REST contacts API's store queries: create, update, delete, list and search users and leads, update
visitors, and the event summaries ``POST /events/summaries`` imports.

A part of :class:`~trailmark.store.sql_store.SQLStore` (which offers its methods as its own). The SQL is
portable between SQLite and PostgreSQL with ``?`` placeholders; the only dialect-specific pieces are the JSON
expressions for ``custom_attributes.*`` search filters and ``email_domain``, asked of ``self.db.dialect``
(dialect.py).

Scope: the contacts API shows *live users and leads*. Visitors are reached through ``/visitors``, and a
contact merged into another one (``merged_into`` set) no longer exists for the API (404), as in Intercom.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..domain_errors import Conflict, InvalidInput, NotFound
from .db import Conn, Database
from .dialect import Dialect
from .models import LEAD, USER, Contact, Workspace
from .sql_helpers import DAY, new_contact_id, now_s, placeholders

# Contact fields PUT/POST may set, as columns. ``custom_attributes`` is merged separately.
WRITABLE = ("role", "external_id", "email", "phone", "name", "avatar", "signed_up_at", "last_seen_at",
            "owner_id", "unsubscribed_from_emails")


@dataclass(frozen=True)
class ContactView:
    """A contact row with the profile columns the REST API adds (migration 2)."""

    contact: Contact
    avatar: str | None = None
    owner_id: int | None = None
    unsubscribed_from_emails: bool = False

    @classmethod
    def from_row(cls, row: Any) -> ContactView:
        keys = set(row.keys())
        return cls(Contact.from_row(row),
                   avatar=row["avatar"] if "avatar" in keys else None,
                   owner_id=row["owner_id"] if "owner_id" in keys else None,
                   unsubscribed_from_emails=bool(row["unsubscribed_from_emails"])
                   if "unsubscribed_from_emails" in keys else False)


# ------------------------------------------------------------------------------------------ search
# The kinds of value a search compares (which fields are searchable, and with which operators, is the REST
# API's table: rest_search.py). Custom attributes are named "custom_attributes.<key>".
STRING, DATE, INTEGER, BOOLEAN, ATTRIBUTE = "string", "date", "integer", "boolean", "attribute"
CUSTOM_PREFIX = "custom_attributes."
# The column each searchable field reads.
COLUMNS: dict[str, str] = {
    "id": "c.id", "role": "c.role", "name": "c.name", "avatar": "c.avatar", "owner_id": "c.owner_id",
    "email": "c.email", "email_domain": "",  # dialect-specific expression, see _column
    "phone": "c.phone", "external_id": "c.external_id", "created_at": "c.created_at",
    "signed_up_at": "c.signed_up_at", "updated_at": "c.updated_at", "last_seen_at": "c.last_seen_at",
    "last_contacted_at": "c.contacted_at", "unsubscribed_from_emails": "c.unsubscribed_from_emails",
}


@dataclass(frozen=True)
class Filter:
    """One search condition, already checked by the REST layer (field known, operator fits the value)."""

    field: str
    operator: str
    value: Any
    kind: str  # STRING | DATE | INTEGER | BOOLEAN | ATTRIBUTE


@dataclass(frozen=True)
class Group:
    operator: str  # AND | OR
    items: tuple[Filter | Group, ...] = field(default_factory=tuple)


Query = Filter | Group


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


_LIKE_PATTERNS = {"~": "%{}%", "!~": "%{}%", "^": "{}%", "$": "%{}"}


_ATTRIBUTES = "c.custom_attributes"  # JSON text


@dataclass(frozen=True)
class _Expr:
    """A SQL expression and the arguments of its ``?`` placeholders (repeated each time it is used)."""

    sql: str
    args: tuple[Any, ...] = ()


class _Compiler:
    """A :data:`Query` → a SQL condition and its arguments, for one dialect. Arguments are appended in
    the order their placeholders appear (f-strings evaluate left to right)."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.args: list[Any] = []

    def compile(self, node: Query) -> str:
        if isinstance(node, Group):
            joiner = " AND " if node.operator == "AND" else " OR "
            return "(" + joiner.join(self.compile(item) for item in node.items) + ")"
        kind = node.kind
        if kind == ATTRIBUTE:
            return self._attribute(node.field[len(CUSTOM_PREFIX):], node.operator, node.value)
        column, value = _Expr(self._column(node.field)), node.value
        if node.field in ("email", "email_domain"):  # emails match whatever their case
            column = _Expr(f"lower({column.sql})")
            value = [_lower(v) for v in value] if isinstance(value, list) else _lower(value)
        if kind == DATE:
            return self._date(column, node.operator, value)
        if kind == BOOLEAN and value is not None:
            value = [int(bool(v)) for v in value] if isinstance(value, list) else int(bool(value))
        return self._scalar(column, node.operator, value)

    def _column(self, name: str) -> str:
        if name == "email_domain":
            return self.dialect.email_domain("c.email")
        return COLUMNS[name]

    def _arg(self, value: Any) -> str:
        self.args.append(value)
        return "?"

    def _use(self, expr: _Expr) -> str:
        self.args.extend(expr.args)
        return expr.sql

    def _scalar(self, column: _Expr, op: str, value: Any) -> str:
        """Negated operators (``!=``, ``NIN``, ``!~``) also match contacts where the field is empty."""
        if value is None:  # "=" null: the field is empty; "!=" null: it is set
            return f"{self._use(column)} IS NULL" if op == "=" else f"{self._use(column)} IS NOT NULL"
        if op == "=":
            return f"{self._use(column)} = {self._arg(value)}"
        if op == "!=":
            return f"COALESCE({self._use(column)} <> {self._arg(value)}, TRUE)"
        if op in ("IN", "NIN"):
            col = self._use(column)
            marks = ", ".join(self._arg(v) for v in value)
            return f"{col} IN ({marks})" if op == "IN" else f"COALESCE({col} NOT IN ({marks}), TRUE)"
        if op in (">", "<"):
            return f"{self._use(column)} {op} {self._arg(value)}"
        pattern = _LIKE_PATTERNS[op].format(_like_escape(str(value).lower()))
        like = f"lower({self._use(column)}) LIKE {self._arg(pattern)} ESCAPE '\\'"
        return f"COALESCE(NOT ({like}), TRUE)" if op == "!~" else like

    def _date(self, column: _Expr, op: str, value: Any) -> str:
        """Intercom matches timestamps by UTC day: ``> t`` means from the day after t's day on, ``< t``
        before t's day, ``= t`` anywhere in t's day."""
        if value is None:
            return self._scalar(column, op, None)
        if op == ">":
            return f"{self._use(column)} >= {self._arg((int(value) // DAY + 1) * DAY)}"
        if op == "<":
            return f"{self._use(column)} < {self._arg(int(value) // DAY * DAY)}"
        ranges = []
        for v in value if isinstance(value, list) else [value]:
            start = int(v) // DAY * DAY
            ranges.append(f"({self._use(column)} >= {self._arg(start)} "
                          f"AND {self._use(column)} < {self._arg(start + DAY)})")
        within = "(" + " OR ".join(ranges) + ")"
        return within if op in ("=", "IN") else f"COALESCE(NOT {within}, TRUE)"

    # custom_attributes are JSON text; the value's JSON type decides how it compares.
    def _json_type(self, key: str) -> _Expr:
        return _Expr(*self.dialect.json_type(_ATTRIBUTES, key))

    def _typed(self, key: str, kind: str) -> _Expr:
        """The attribute's value when its JSON type is ``kind`` (string | number | boolean), else NULL."""
        return _Expr(*self.dialect.json_value(_ATTRIBUTES, key, kind))

    def _attribute(self, key: str, op: str, value: Any) -> str:
        if value is None:  # JSON null and a missing key both count as "not set"
            typ = self._json_type(key)
            present = f"COALESCE({self._use(typ)} <> 'null', FALSE)"
            return f"NOT {present}" if op == "=" else present
        sample = value[0] if isinstance(value, list) else value
        kind = "boolean" if isinstance(sample, bool) else "number" if isinstance(sample, (int, float)) else "string"

        def convert(v: Any) -> Any:
            if kind == "boolean":
                return "true" if v else "false"
            return float(v) if kind == "number" else str(v)

        value = [convert(v) for v in value] if isinstance(value, list) else convert(value)
        return self._scalar(self._typed(key, kind), op, value)


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def compile_query(query: Query, dialect: Dialect) -> tuple[str, list[Any]]:
    compiler = _Compiler(dialect)
    sql = compiler.compile(query)
    return sql, compiler.args


@dataclass(frozen=True)
class ContactPage:
    contacts: list[ContactView]
    total_count: int
    page: int
    next_after: tuple[int, int, str] | None  # (page, created_at, id) of its last contact, when more follow


class RestContacts:
    """The queries behind the REST contacts, visitors and event-summaries endpoints."""

    def __init__(self, db: Database, *,
                 delete_contact: Callable[[Workspace, str], Awaitable[dict[str, Any] | None]]) -> None:
        self.db = db
        self.delete_contact = delete_contact  # SourcesStore's: the one erase, shared with the GDPR command

    _LIVE = "c.workspace_id = ? AND c.merged_into IS NULL AND c.role IN ('user', 'lead')"

    # ------------------------------------------------------------ reading
    async def contact_view(self, workspace: Workspace, contact_id: str) -> ContactView | None:
        """A live user or lead by id (``None`` for visitors, merged-away and unknown ids)."""
        async with self.db.read() as conn:
            row = await conn.fetch_one(f"SELECT * FROM contacts c WHERE {self._LIVE} AND c.id = ?",
                                       (workspace.id, contact_id))
        return ContactView.from_row(row) if row else None

    async def contact_by_external_id(self, workspace: Workspace, external_id: str) -> ContactView | None:
        """``GET /contacts/find_by_external_id``: users only, as Intercom."""
        async with self.db.read() as conn:
            row = await conn.fetch_one(
                f"SELECT * FROM contacts c WHERE {self._LIVE} AND c.role = 'user' AND c.external_id = ?",
                (workspace.id, external_id))
        return ContactView.from_row(row) if row else None

    async def contact_page(self, workspace: Workspace, *, per_page: int, after: tuple[int, int, str] | None,
                           query: Query | None = None) -> ContactPage:
        """One page of live users and leads, newest first, keyset-paginated on ``(created_at, id)``;
        ``total_count`` counts every match."""
        where = self._LIVE
        args: list[Any] = [workspace.id]
        if query is not None:
            sql, qargs = compile_query(query, self.db.dialect)
            where += f" AND {sql}"
            args.extend(qargs)
        page_where, page_args = where, list(args)
        page = 1
        if after is not None:
            page = after[0] + 1
            page_where += " AND (c.created_at < ? OR (c.created_at = ? AND c.id < ?))"
            page_args.extend((after[1], after[1], after[2]))
        async with self.db.read() as conn:
            count = await conn.fetch_one(f"SELECT COUNT(*) AS n FROM contacts c WHERE {where}", args)
            rows = await conn.fetch_all(
                f"SELECT * FROM contacts c WHERE {page_where} ORDER BY c.created_at DESC, c.id DESC LIMIT ?",
                (*page_args, per_page + 1))
        views = [ContactView.from_row(r) for r in rows[:per_page]]
        after_last = None
        if len(rows) > per_page and views:
            last = views[-1].contact
            after_last = (page, last.created_at, last.id)
        return ContactPage(views, int(count["n"]) if count else 0, page, after_last)

    # ------------------------------------------------------------ writing
    async def create_api_contact(self, workspace: Workspace, fields: dict[str, Any],
                                 custom_attributes: dict[str, Any]) -> ContactView:
        """``POST /contacts``. ``fields`` holds checked values for :data:`WRITABLE` columns.
        409 when the external id is taken, or (for a user) another user has the email."""
        t = now_s()
        role = fields.get("role") or USER
        contact_id = new_contact_id()

        async def job(conn: Conn) -> None:
            await _check_unique(conn, workspace.id, None, role, fields.get("external_id"), fields.get("email"))
            values = {
                "role": role, "external_id": fields.get("external_id"), "email": fields.get("email"),
                "phone": fields.get("phone"), "name": fields.get("name"), "avatar": fields.get("avatar"),
                "owner_id": fields.get("owner_id"),
                "unsubscribed_from_emails": int(bool(fields.get("unsubscribed_from_emails"))),
                "signed_up_at": fields.get("signed_up_at", t if role == USER else None),
                "last_seen_at": fields.get("last_seen_at"),
            }
            columns = ["id", "workspace_id", *values, "custom_attributes", "created_at", "updated_at"]
            await conn.execute(
                f"INSERT INTO contacts ({', '.join(columns)}) VALUES ({placeholders(len(columns))})",
                (contact_id, workspace.id, *values.values(), json.dumps(custom_attributes), t, t))

        await self._write_unique(job)
        view = await self.contact_view(workspace, contact_id)
        assert view is not None
        return view

    async def update_api_contact(self, workspace: Workspace, contact_id: str, fields: dict[str, Any],
                                 custom_attributes: dict[str, Any] | None) -> ContactView:
        """``PUT /contacts/{id}``: set the given fields (``None`` clears one), merge custom attributes.
        A lead may become a user; a user never becomes a lead."""
        t = now_s()

        async def job(conn: Conn) -> None:
            row = await conn.fetch_one(f"SELECT * FROM contacts c WHERE {self._LIVE} AND c.id = ?",
                                       (workspace.id, contact_id))
            if row is None:
                raise NotFound("Contact Not Found")
            role = fields.get("role") or row["role"]
            if row["role"] == USER and role == LEAD:
                raise InvalidInput("A user cannot become a lead", "role")
            external_id = fields["external_id"] if "external_id" in fields else row["external_id"]
            email = fields["email"] if "email" in fields else row["email"]
            await _check_unique(conn, workspace.id, contact_id, role,
                                external_id if external_id != row["external_id"] else None,
                                email if (email or "").lower() != (row["email"] or "").lower()
                                or role != row["role"] else None)
            sets = {k: v for k, v in fields.items() if k in WRITABLE}
            if "unsubscribed_from_emails" in sets:
                sets["unsubscribed_from_emails"] = int(bool(sets["unsubscribed_from_emails"]))
            if role == USER and row["role"] == LEAD and row["signed_up_at"] is None and "signed_up_at" not in sets:
                sets["signed_up_at"] = t
            if custom_attributes is not None:
                attrs = json.loads(row["custom_attributes"] or "{}")
                attrs.update(custom_attributes)
                sets["custom_attributes"] = json.dumps(attrs)
            sets["updated_at"] = t
            await conn.execute(f"UPDATE contacts SET {', '.join(f'{k} = ?' for k in sets)} WHERE id = ?",
                               (*sets.values(), contact_id))

        await self._write_unique(job)
        view = await self.contact_view(workspace, contact_id)
        assert view is not None
        return view

    async def delete_api_contact(self, workspace: Workspace, contact_id: str) -> ContactView:
        """``DELETE /contacts/{id}``: a live user or lead, erased with everything merged into it by the one
        erase the GDPR command uses too (``delete_contact``)."""
        async with self.db.read() as conn:
            row = await conn.fetch_one(f"SELECT * FROM contacts c WHERE {self._LIVE} AND c.id = ?",
                                       (workspace.id, contact_id))
        if row is None or await self.delete_contact(workspace, contact_id) is None:
            raise NotFound("Contact Not Found")
        return ContactView.from_row(row)

    async def update_visitor(self, workspace: Workspace, contact_id: str, *, name: str | None,
                             custom_attributes: dict[str, Any] | None) -> Contact | None:
        """``PUT /visitors``: name and custom attributes of a (still anonymous, unmerged) visitor."""
        t = now_s()

        async def job(conn: Conn) -> bool:
            row = await conn.fetch_one(
                "SELECT custom_attributes FROM contacts WHERE workspace_id = ? AND id = ? AND role = 'visitor' "
                "AND merged_into IS NULL", (workspace.id, contact_id))
            if row is None:
                return False
            attrs = json.loads(row["custom_attributes"] or "{}")
            attrs.update(custom_attributes or {})
            await conn.execute("UPDATE contacts SET name = COALESCE(?, name), custom_attributes = ?, "
                               "updated_at = ? WHERE id = ?", (name, json.dumps(attrs), t, contact_id))
            return True

        if not await self.db.write(job):
            return None
        async with self.db.read() as conn:
            row = await conn.fetch_one("SELECT * FROM contacts WHERE id = ?", (contact_id,))
        return Contact.from_row(row) if row else None

    async def _write_unique(self, job: Any) -> None:
        try:
            await self.db.write(job)
        except Exception as exc:
            if self.db.dialect.is_unique_violation(exc):  # lost a race to another writer with the same external id
                raise Conflict("A contact matching those details already exists",
                               "external_id") from None
            raise

    # ------------------------------------------------------------ event summaries
    async def add_event_summaries(self, workspace: Workspace, contact_id: str,
                                  summaries: Sequence[tuple[str, int, int, int]]) -> None:
        """Merge ``(event name, count, first, last)`` into the contact's imported per-name aggregates:
        counts add up, ``first`` keeps the minimum, ``last`` the maximum."""
        merged: dict[str, list[int]] = defaultdict(lambda: [0, 2**62, -2**62])
        for name, count, first, last in summaries:
            agg = merged[name]
            agg[0] += count
            agg[1] = min(agg[1], first)
            agg[2] = max(agg[2], last)

        async def job(conn: Conn) -> None:
            await conn.executemany(
                "INSERT INTO event_summaries (workspace_id, contact_id, name, count, first_at, last_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (contact_id, name) DO UPDATE SET "
                "count = event_summaries.count + excluded.count, "
                "first_at = CASE WHEN excluded.first_at < event_summaries.first_at THEN excluded.first_at "
                "ELSE event_summaries.first_at END, "
                "last_at = CASE WHEN excluded.last_at > event_summaries.last_at THEN excluded.last_at "
                "ELSE event_summaries.last_at END",
                [(workspace.id, contact_id, name, c, f, la) for name, (c, f, la) in merged.items()])

        await self.db.write(job)

    async def imported_summaries(self, workspace: Workspace, contact: Contact) -> list[dict[str, Any]]:
        """Imported aggregates over the contact's merged history (its own and its merged contacts')."""
        async with self.db.read() as conn:
            rows = await conn.fetch_all(
                "SELECT s.name, SUM(s.count) AS count, MIN(s.first_at) AS first, MAX(s.last_at) AS last "
                "FROM event_summaries s JOIN contacts c ON c.id = s.contact_id "
                "WHERE s.workspace_id = ? AND (c.id = ? OR c.merged_into = ?) GROUP BY s.name",
                (workspace.id, contact.id, contact.id))
        return [dict(name=r["name"], count=int(r["count"]), first=int(r["first"]), last=int(r["last"]))
                for r in rows]


async def _check_unique(conn: Conn, workspace_id: int, self_id: str | None, role: str,
                        external_id: str | None, email: str | None) -> None:
    """Intercom's 409: an external id belongs to one live contact; a user's email to one user."""
    if external_id is not None:
        row = await conn.fetch_one(
            "SELECT id FROM contacts WHERE workspace_id = ? AND external_id = ? AND merged_into IS NULL "
            "AND id <> ?", (workspace_id, external_id, self_id or ""))
        if row is not None:
            raise Conflict(f"A contact matching those details already exists with id={row['id']}",
                           "external_id")
    if email is not None and role == USER:
        row = await conn.fetch_one(
            "SELECT id FROM contacts WHERE workspace_id = ? AND lower(email) = lower(?) AND role = 'user' "
            "AND merged_into IS NULL AND id <> ?", (workspace_id, email, self_id or ""))
        if row is not None:
            raise Conflict(f"A contact matching those details already exists with id={row['id']}",
                           "email")


__all__ = ["COLUMNS", "ContactPage", "ContactView", "Filter", "Group", "Query", "RestContacts", "compile_query"]
