"""A one-time sign-in link for the demo (``trailmark demo`` prints it beside the demo site's address).

It exists only in the process that made it (``app.state.login_link``, never in the database), works once,
only from the loopback interface, and only for a few minutes: a newcomer clicks it and lands in the admin
without a password, and nobody else can use it.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import time
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .routes import load

LINK_MINUTES = 10


@dataclass
class LoginLink:
    teammate_email: str
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    expires_at: float = field(default_factory=lambda: time.time() + LINK_MINUTES * 60)
    used: bool = False

    def path(self) -> str:
        return f"/admin/login/link/{self.token}"


def _loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def follow_link(request: Request) -> Response:
    admin = await load(request)
    link: LoginLink | None = getattr(request.app.state, "login_link", None)
    given = request.path_params["token"]
    valid = (link is not None and not link.used and time.time() < link.expires_at and _loopback(request)
             and hmac.compare_digest(given.encode(), link.token.encode()))
    if not valid or link is None:
        return admin.render("message.html", status_code=403, title="This sign-in link no longer works",
                            message="Sign-in links work once, for a few minutes, from this computer only. "
                                    "Restart `trailmark demo` for a new one, or sign in with a password.")
    teammate = await admin.store.teammate_by_email(link.teammate_email)
    if teammate is None:
        return admin.render("message.html", status_code=403, title="No such teammate",
                            message="The teammate this link was made for does not exist any more.")
    link.used = True
    admin.set_session(admin.session.signed_in(teammate.id, teammate.password_hash, teammate.session_version))
    return admin.redirect("/admin/contacts")


def login_link_routes() -> list[BaseRoute]:
    return [Route("/login/link/{token}", follow_link, methods=["GET"])]
