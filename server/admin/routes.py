"""The admin pages under ``/admin``: sign-in, contacts, a contact's profile, event settings.

Server-rendered HTML (``server/templates/``). Every page but sign-in needs a signed-in teammate (else a
redirect to ``/admin/login``); every POST needs the session's CSRF token (else 403, nothing changed) and
answers with a redirect (303) to the page to show next, which carries a one-time notice.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote, urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from ..assets import package_file
from ..domain_errors import DomainError
from ..event_filter_labels import OP_LABELS
from ..store import SQLStore
from ..store.admin_reads import OPS_WITH_VALUE, ContactPage, Teammate
from ..store.models import VISITOR, Workspace
from ..store.sql_helpers import DAY
from . import filters as contact_filters
from . import timeline
from .auth import (
    Session,
    SessionCodec,
    csrf_ok,
    fingerprint,
    session_codec,
    verify_password_async,
)
from .charts import daily_chart
from .render import show_avatar
from .templating import SECURITY_HEADERS, page
from .throttle import SignInThrottle

CONTACTS_PAGE = 50
TIMELINE_PAGE = 50
MAX_DESCRIPTION = 1000
STATIC_FILES = {"admin.css": "text/css; charset=utf-8", "admin.js": "text/javascript; charset=utf-8",
                "live.js": "text/javascript; charset=utf-8", "message_preview.js": "text/javascript; charset=utf-8"}
HOME = "/admin/contacts"


@dataclass
class Admin:
    """One admin request: the store, the session (re-sent when it changed), the teammate and workspace."""

    request: Request
    store: SQLStore
    codec: SessionCodec
    session: Session
    teammate: Teammate | None
    workspaces: list[Workspace] = field(default_factory=list)
    workspace: Workspace | None = None
    form: FormData | None = None
    changed: bool = False

    def set_session(self, session: Session) -> None:
        self.session, self.changed = session, True

    def notice(self, message: str, error: bool = False) -> None:
        self.set_session(self.session.with_flash(message, error))

    def field(self, name: str, limit: int = 1000) -> str:
        value = self.form.get(name) if self.form is not None else None
        return value[:limit] if isinstance(value, str) else ""

    def render(self, template: str, status_code: int = 200, **context: Any) -> Response:
        flash, flash_error = self.session.flash, self.session.flash_error
        if flash:
            self.set_session(self.session.with_flash(None))
        context.setdefault("section", "")
        response = page(self.request, template, status_code, admin=self, csrf=self.session.csrf, flash=flash,
                        flash_error=flash_error, ops=OP_LABELS, ops_with_value=OPS_WITH_VALUE,
                        **context)
        return self.finish(response)

    def redirect(self, url: str) -> Response:
        return self.finish(RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS))

    def finish(self, response: Response) -> Response:
        if self.changed:
            self.codec.save(self.request, response, self.session)
        return response


async def load(request: Request) -> Admin:
    store: SQLStore = request.app.state.store
    codec = await session_codec(request)
    session = codec.load(request)
    admin = Admin(request, store, codec, session or Session.fresh(), None, changed=session is None)
    if admin.session.teammate_id is not None:
        teammate = await store.teammate_by_id(admin.session.teammate_id)
        # A new password or a raised session version (sign-out) ends every session issued before.
        if (teammate and hmac.compare_digest(admin.session.password or "", fingerprint(teammate.password_hash))
                and admin.session.version == teammate.session_version):
            admin.teammate = teammate
    if admin.teammate is not None:
        admin.workspaces = await store.list_workspaces()
        chosen = [w for w in admin.workspaces if w.app_id == admin.session.app_id]
        admin.workspace = next(iter(chosen or admin.workspaces), None)
    return admin


Handler = Callable[[Admin], Awaitable[Response]]


def signed_in(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Signed out → the sign-in page (nothing done). POST without the session's CSRF token → 403."""
    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        admin = await load(request)
        if admin.teammate is None:
            target = "/admin/login"
            if request.method == "GET":
                here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                target += "?" + urlencode({"next": here})
            return admin.redirect(target)
        if request.method == "POST":
            admin.form = await request.form(max_files=0, max_fields=50)
            if not csrf_ok(admin.session, admin.form.get("csrf")):
                return forbidden(admin)
        if admin.workspace is None:
            return admin.render("message.html", title="No workspace yet",
                                message="Create one with `trailmark workspace create`, then reload.")
        return await handler(admin)

    return endpoint


def forbidden(admin: Admin) -> Response:
    return admin.render("message.html", status_code=403, title="This form has expired",
                        message="Nothing was changed. Go back, reload the page and try again.")


def not_found(admin: Admin, what: str = "page") -> Response:
    return admin.render("message.html", status_code=404, title=f"No such {what}",
                        message=f"This {what} does not exist in this workspace.")


def safe_next(value: Any) -> str:
    """Only a path inside the admin may follow sign-in (no open redirect)."""
    if (isinstance(value, str) and value.startswith("/admin/") and not value.startswith("/admin/log")
            and "\\" not in value and "//" not in value and len(value) < 2000):
        return value
    return HOME


def _throttle(request: Request) -> SignInThrottle:
    throttle: SignInThrottle | None = getattr(request.app.state, "admin_throttle", None)
    if throttle is None:
        throttle = request.app.state.admin_throttle = SignInThrottle()
    return throttle


# ------------------------------------------------------------------------------------------ sign-in
async def login_form(request: Request) -> Response:
    admin = await load(request)
    target = safe_next(request.query_params.get("next"))
    if admin.teammate is not None:
        return admin.redirect(target)
    return admin.render("login.html", next=target, email="", error=None)


async def login(request: Request) -> Response:
    admin = await load(request)
    admin.form = await request.form(max_files=0, max_fields=10)
    if not csrf_ok(admin.session, admin.form.get("csrf")):
        return forbidden(admin)
    email = admin.field("email", 320).strip().lower()
    password = admin.field("password", 1024)
    target = safe_next(admin.form.get("next"))
    throttle = _throttle(request)
    address = request.client.host if request.client else ""
    wait = throttle.address_wait(address)
    if wait > 0:
        response = admin.render("login.html", status_code=429, next=target, email=email,
                                error=f"Too many failed sign-ins from your address. Try again in {_duration(wait)}.")
        response.headers["Retry-After"] = str(math.ceil(wait))
        return response
    # Failures for this account slow every attempt down (guessing gets slow) but never refuse one.
    await asyncio.sleep(throttle.account_delay(email))
    teammate = await admin.store.teammate_by_email(email) if email else None
    if not await verify_password_async(password, teammate.password_hash if teammate else None) or teammate is None:
        throttle.failed(address, email)
        return admin.render("login.html", status_code=401, next=target, email=email,
                            error="Wrong email or password.")
    throttle.succeeded(address, email)
    admin.set_session(admin.session.signed_in(teammate.id, teammate.password_hash, teammate.session_version))
    return admin.redirect(target)


def _duration(seconds: float) -> str:
    return f"{math.ceil(seconds)} seconds" if seconds < 120 else f"{math.ceil(seconds / 60)} minutes"


@signed_in
async def logout(admin: Admin) -> Response:
    """Signing out ends every session of this teammate (the version is per teammate): a copied cookie
    stops working too."""
    assert admin.teammate is not None
    await admin.store.end_teammate_sessions(admin.teammate.id)
    admin.set_session(Session.fresh())
    return admin.redirect("/admin/login")


@signed_in
async def account(admin: Admin) -> Response:
    return admin.render("account.html", section="account")


@signed_in
async def sign_out_everywhere(admin: Admin) -> Response:
    assert admin.teammate is not None
    await admin.store.end_teammate_sessions(admin.teammate.id)
    admin.set_session(Session.fresh().with_flash("Signed out everywhere: every session of yours has ended."))
    return admin.redirect("/admin/login")


@signed_in
async def choose_workspace(admin: Admin) -> Response:
    app_id = admin.field("app_id", 100)
    if any(w.app_id == app_id for w in admin.workspaces):
        admin.set_session(replace(admin.session, app_id=app_id))
    return admin.redirect(HOME)


async def home(request: Request) -> Response:
    return RedirectResponse(HOME, status_code=303)


# ------------------------------------------------------------------------------------------ contacts
@signed_in
async def contacts(admin: Admin) -> Response:
    assert admin.workspace is not None
    query = contact_filters.parse(admin.request.query_params)
    broken = any(r.error for r in query.rows)
    # A filter that cannot be applied lists nobody (not everyone): its row says what to fix.
    listing = (ContactPage([], None) if broken else
               await admin.store.admin_contacts(admin.workspace, role=query.role, filters=query.filters,
                                                after=query.after, limit=CONTACTS_PAGE))
    # The tabs count every live contact; with filters applied, counting matches would walk them all,
    # so the tabs show no numbers rather than numbers that do not describe the list below.
    counts = None if (broken or query.filters) else await admin.store.admin_role_counts(admin.workspace)
    names = await admin.store.event_names(admin.workspace)
    rows = list(query.rows)
    if len(rows) < contact_filters.MAX_FILTER_ROWS:
        rows.append(contact_filters.FilterRow("", "done", ""))
    applied = [(i, r) for i, r in enumerate(query.rows) if r.as_filter() is not None]
    return admin.render("contacts.html", section="contacts", query=query, listing=listing, counts=counts,
                        names=names, rows=rows, applied=applied, broken=broken)


async def _contact_or_none(admin: Admin) -> Any:
    assert admin.workspace is not None
    return await admin.store.get_contact(admin.workspace, admin.request.path_params["contact_id"])


@signed_in
async def contact(admin: Admin) -> Response:
    ws = admin.workspace
    assert ws is not None
    person = await _contact_or_none(admin)
    if person is None:
        return not_found(admin, "contact")
    before = timeline.parse_cursor(admin.request.query_params.get("before"))
    only = admin.request.query_params.get("event", "").strip()[:255] or None
    page = await timeline.timeline_page(admin.store, ws, person, limit=TIMELINE_PAGE, before=before, event_name=only)
    summary = await admin.store.event_summary(ws, person)
    history = await admin.store.admin_merge_history(ws, person)
    survivor = await admin.store.get_contact(ws, person.merged_into) if person.merged_into else None
    expires_at = None
    if person.role == VISITOR and person.merged_into is None:
        oldest = await admin.store.admin_oldest_event_at(ws, person.id)
        expires_at = (oldest or person.last_seen_at or person.created_at) + ws.retention_days * DAY
    conversations = await admin.store.conversations.for_contact(ws, person.id) if person.role != VISITOR else []
    view = await admin.store.contact_view(ws, person.id)
    return admin.render("contact.html", section="contacts", contact=person, timeline=page.items, older=page.older,
                        avatar=show_avatar(view.avatar if view else None),
                        newer=before is not None, summary=summary, history=history, survivor=survivor,
                        expires_at=expires_at, retention_days=ws.retention_days, conversations=conversations,
                        only=only, deliveries=await admin.store.messages.deliveries_for_contact(ws, person.id))


@signed_in
async def convert_contact(admin: Admin) -> Response:
    assert admin.workspace is not None and admin.teammate is not None
    person = await _contact_or_none(admin)
    if person is None:
        return not_found(admin, "contact")
    url = f"/admin/contacts/{person.id}"
    if person.role != VISITOR or person.merged_into:
        admin.notice(f"This contact is already a {person.role}.", error=True)
        return admin.redirect(url)
    await admin.store.convert_to_lead(admin.workspace, person.id,
                                      reason=f"converted by teammate {admin.teammate.email}", proof="admin")
    admin.notice("Converted to a lead. Their recent visitor history stays on the timeline.")
    return admin.redirect(url)


@signed_in
async def undo_merge(admin: Admin) -> Response:
    assert admin.workspace is not None and admin.teammate is not None
    person = await _contact_or_none(admin)
    if person is None:
        return not_found(admin, "contact")
    try:
        merge_id = int(admin.request.path_params["merge_id"])
    except ValueError:
        return not_found(admin, "merge")
    merges = await admin.store.merges_for(admin.workspace, person.id)
    if not any(m.id == merge_id for m in merges):
        return not_found(admin, "merge")
    try:
        await admin.store.undo_merge(admin.workspace, merge_id, undone_by=f"teammate {admin.teammate.email}")
    except DomainError as exc:
        admin.notice(str(exc), error=True)
    else:
        admin.notice("Undone. The contacts and their events are as they were before.")
    return admin.redirect(f"/admin/contacts/{person.id}")


# ------------------------------------------------------------------------------------------ events
@signed_in
async def events(admin: Admin) -> Response:
    assert admin.workspace is not None
    names = await admin.store.event_names(admin.workspace)
    active = sum(1 for n in names if not n.archived)
    sort = admin.request.query_params.get("sort", "name")
    if sort == "count":
        names = sorted(names, key=lambda n: (-n.event_count, n.name))
    elif sort == "last_seen":
        names = sorted(names, key=lambda n: (-(n.last_seen or 0), n.name))
    else:
        sort = "name"
    refused = await admin.store.refused_event_names(admin.workspace)
    return admin.render("events.html", section="events", names=names, active=active, sort=sort, refused=refused)


@signed_in
async def event(admin: Admin) -> Response:
    ws = admin.workspace
    assert ws is not None
    name = admin.request.path_params["name"]
    found = await admin.store.event_name(ws, name)
    if found is None:
        return not_found(admin, "event")
    if admin.request.method == "POST":
        return await _change_event(admin, name)
    chart = daily_chart(await admin.store.daily_counts(ws, found.id, 30))
    drops = await admin.store.metadata_drops(ws, found.id)
    return admin.render("event.html", section="events", event=found, chart=chart, drops=drops)


async def _change_event(admin: Admin, name: str) -> Response:
    ws = admin.workspace
    assert ws is not None
    action = admin.field("action", 20)
    try:
        if action == "describe":
            await admin.store.set_event_description(ws, name, admin.field("description", MAX_DESCRIPTION).strip())
            admin.notice("Description saved.")
        elif action in ("archive", "unarchive"):
            await admin.store.set_event_archived(ws, name, action == "archive")
            admin.notice("Archived: new occurrences are dropped and counted as dropped." if action == "archive"
                         else "Unarchived: new occurrences are stored again.")
        else:
            admin.notice("Unknown action.", error=True)
    except DomainError as exc:
        admin.notice(str(exc), error=True)
    return admin.redirect(f"/admin/events/{quote(name, safe='')}")


@signed_in
async def missing(admin: Admin) -> Response:
    return not_found(admin)


# ------------------------------------------------------------------------------------------ static
async def static(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in STATIC_FILES:
        return Response("Not found", status_code=404, media_type="text/plain")
    return Response(package_file("static", name).read_bytes(), media_type=STATIC_FILES[name],
                    headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"})


def admin_routes(*more: BaseRoute) -> list[BaseRoute]:
    """The admin's routes, for ``trailmark.app.routes()``: one ``Mount`` at ``/admin`` (HTML pages and
    form posts, outside the JSON API and its error shape and OpenAPI document). ``more``: the routes of
    the other admin modules (the inbox, the settings), placed before the catch-all."""
    return [
        Route("/admin", home),
        Mount("/admin", routes=[
            *more,
            Route("/", home),
            Route("/static/{name}", static),
            Route("/login", login_form, methods=["GET"]),
            Route("/login", login, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
            Route("/account", account, methods=["GET"]),
            Route("/account/sign-out-everywhere", sign_out_everywhere, methods=["POST"]),
            Route("/workspace", choose_workspace, methods=["POST"]),
            Route("/contacts", contacts, methods=["GET"]),
            Route("/contacts/{contact_id}", contact, methods=["GET"]),
            Route("/contacts/{contact_id}/convert", convert_contact, methods=["POST"]),
            Route("/contacts/{contact_id}/merges/{merge_id}/undo", undo_merge, methods=["POST"]),
            Route("/events", events, methods=["GET"]),
            Route("/events/{name:path}", event, methods=["GET", "POST"]),
            Route("/{rest:path}", missing, methods=["GET"]),
        ]),
    ]
