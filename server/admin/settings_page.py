"""``/admin/settings``: the current workspace's settings, its identity secret and server code for user_hash.

Two forms, both CSRF-checked by ``signed_in`` (routes.py): the settings, and rotating the identity secret.
Destructive changes (identity verification off, a shorter retention, a rotation) are not applied at once:
the answer is a confirmation page that posts the same values again with ``confirmed=yes``. The check is on
the server, so it holds without JavaScript.
"""

from __future__ import annotations

import time

from starlette.responses import Response
from starlette.routing import Route

from ..store.models import Workspace
from ..store.sql_helpers import DAY
from . import identity_examples
from .routes import Admin, signed_in
from .settings_form import DEFAULT_GRACE_DAYS, GRACE_DAYS, SettingsForm, current_values, read_grace_days, read_settings

URL = "/admin/settings"


def _confirmed(admin: Admin) -> bool:
    return admin.field("confirmed", 10) == "yes"


def _show(admin: Admin, form: SettingsForm | None = None, status_code: int = 200) -> Response:
    ws = admin.workspace
    assert ws is not None
    return admin.render(
        "settings.html", status_code=status_code, section="settings", ws=ws,
        values=form.values if form else current_values(ws), errors=form.errors if form else {},
        grace_days=GRACE_DAYS, default_grace=DEFAULT_GRACE_DAYS, examples=identity_examples.USER_HASH,
        jwt_examples=identity_examples.JWT, secret_env=identity_examples.SECRET_ENV,
        boot_example=identity_examples.boot_example(ws.app_id),
        previous_until=ws.previous_secret_expires_at if _in_grace(ws) else None)


def _in_grace(ws: Workspace) -> bool:
    return bool(ws.previous_identity_secret) and (ws.previous_secret_expires_at or 0) > time.time()


@signed_in
async def settings(admin: Admin) -> Response:
    if admin.request.method == "GET":
        return _show(admin)
    action = admin.field("action", 20)
    if action == "save":
        return await _save(admin)
    if action == "rotate":
        return await _rotate(admin)
    admin.notice("Unknown action: nothing was changed.", error=True)
    return admin.redirect(URL)


async def _save(admin: Admin) -> Response:
    ws = admin.workspace
    assert ws is not None and admin.form is not None
    form = read_settings(ws, admin.form)
    if form.errors:
        return _show(admin, form, status_code=400)
    if not form.changes:
        admin.notice("Nothing to save: the settings were already so.")
        return admin.redirect(URL)
    if form.risky and not _confirmed(admin):
        return admin.render("settings_confirm.html", section="settings", ws=ws, action="save",
                            title="Confirm these changes", risks=form.risky, values=form.values)
    await admin.store.update_workspace(ws.id, **form.changes)
    admin.notice("Settings saved." + (" The snippet picks up consent settings within 5 minutes (browser cache)."
                                      if {"consent_required", "honour_gpc"} & set(form.changes) else ""))
    return admin.redirect(URL)


async def _rotate(admin: Admin) -> Response:
    ws = admin.workspace
    assert ws is not None
    days = read_grace_days(admin.field("grace_days", 4))
    if days is None:
        admin.notice("Choose a grace period from the list: nothing was changed.", error=True)
        return admin.redirect(URL)
    if not _confirmed(admin):
        return admin.render("settings_confirm.html", section="settings", ws=ws, action="rotate",
                            title="Rotate the identity secret?", grace_days=days,
                            ends_at=int(time.time()) + days * DAY,
                            cut_short=ws.previous_secret_expires_at if _in_grace(ws) else None)
    await admin.store.rotate_identity_secret(ws, grace_seconds=days * DAY)
    admin.notice(f"New identity secret made. The previous one keeps verifying for {days} "
                 f"day{'' if days == 1 else 's'}: update {identity_examples.SECRET_ENV} on your servers before then.")
    return admin.redirect(URL)


def settings_routes() -> list[Route]:
    return [Route("/settings", settings, methods=["GET", "POST"])]
