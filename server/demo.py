"""``trailmark demo``: the demo site (``demo_site/``, copied into the package as ``assets/demo_site``) served with
the snippet wired to a Trailmark server, and the story it tells a newcomer in four steps: browse as an anonymous
visitor → get in touch → see the new lead and the visit's history in the admin (a one-time sign-in link) → sign
in as Ada (verified by ``user_hash``) and see the lead merged into the user.
"""

from __future__ import annotations

import asyncio
import mimetypes
import secrets
from dataclasses import dataclass, replace
from importlib.resources.abc import Traversable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from .admin.auth import hash_password
from .admin.login_link import LINK_MINUTES, LoginLink
from .assets import package_file
from .identity import user_hash
from .messages.document import parse_message
from .store import SQLStore, with_store
from .store.models import Workspace

DEMO_DATABASE = "trailmark-demo.db"  # not `serve`'s default: the demo never mixes with real data
DEMO_TEAMMATE = "demo@trailmark.local"


# The product document's example, live in the demo: an upload on upload.html shows a banner built from the event's
# metadata ("Your JPEG upload is ready"), each time (docs/messages.md). Applied at start, idempotent by key.
def demo_messages(demo_url: str | None = None) -> list[dict[str, Any]]:
    content: dict[str, Any] = {"text": "Your {{event.type}} upload is ready"}
    if demo_url:
        content["button"] = {"label": "Order prints", "url": demo_url.rstrip("/") + "/order.html"}
    return [{"key": "upload-done", "name": "Upload ready (demo)", "kind": "banner", "state": "live",
             "trigger": {"event": "upload-complete", "when": "every_time",
                         "metadata": [{"key": "type", "op": "eq", "value": "JPEG"}]},
             "audience": {"roles": ["visitor", "lead", "user"]}, "frequency": {"max": None},
             "content": content, "banner": {"position": "top", "dismissible": True}}]


# The demo's signed-in user. A real site knows who is signed in from its own session.
ADA = {"user_id": "demo-ada", "email": "ada@example.com", "name": "Ada Lovelace"}


def create_demo_app(server_url: str, app_id: str, identity_secret: str | None = None,
                    directory: Traversable | None = None) -> Starlette:
    """HTML pages get the placeholders ``TRAILMARK_URL`` and ``APP_ID`` of the pasted loader filled in;
    other files are served as they are. ``/demo-login`` plays the site's own server: it signs Ada in and
    computes her ``user_hash`` with the workspace's identity secret, which never reaches the browser."""
    root = directory if directory is not None else package_file("assets", "demo_site")
    names = {entry.name for entry in root.iterdir() if entry.is_file()}  # flat folder: nothing else is served

    async def demo_login(request: Request) -> Response:
        proof = {"user_hash": user_hash(identity_secret, ADA["user_id"])} if identity_secret else {}
        return JSONResponse({**ADA, **proof}, headers={"Cache-Control": "no-store"})

    async def page(request: Request) -> Response:
        name = request.path_params.get("name") or "index.html"
        if name not in names:
            return HTMLResponse("<h1>Not found</h1>", status_code=404)
        data = (root / name).read_bytes()
        if name.endswith(".html"):
            html = data.decode().replace("TRAILMARK_URL", server_url.rstrip("/")).replace("APP_ID", app_id)
            return HTMLResponse(html)
        media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return Response(data, media_type=media_type)

    return Starlette(routes=[Route("/demo-login", demo_login, methods=["POST"]), Route("/", page),
                             Route("/{name:path}", page)])


@dataclass
class DemoSetup:
    workspace: Workspace  # with a fresh access token (tokens are stored hashed: a new one per run)
    sample: dict[str, int] | None


async def prepare(store: SQLStore, sample_data: bool, demo_url: str | None = None) -> DemoSetup:
    """The demo workspace (made on the first run), Ada as an existing verified user, the demo teammate, the
    upload banner (:func:`demo_messages`) and (``--sample-data``) a few weeks of visitors, leads and users."""
    workspaces = await store.list_workspaces()
    ws = workspaces[0] if workspaces else await store.create_workspace("Pebble (demo)")
    token = ws.access_token or await store.create_access_token(ws, "trailmark demo")
    if await store.find_contact(ws, user_id=ADA["user_id"]) is None:
        await store.create_contact(ws, "user", external_id=ADA["user_id"], email=ADA["email"], name=ADA["name"])
    if await store.teammate_by_email(DEMO_TEAMMATE) is None:
        # Nobody knows this password: the demo signs in with the one-time link.
        await store.create_teammate(DEMO_TEAMMATE, hash_password(secrets.token_urlsafe(24)))
    for doc in demo_messages(demo_url):
        m = parse_message(doc)
        await store.messages.apply(ws, key=m.key, kind=m.kind, state=m.state, event_name=m.trigger.event,
                                   document=m.document)
    sample = None
    if sample_data:
        from .sample_data import fill

        sample = await fill(store, ws)
    return DemoSetup(replace(ws, access_token=token), sample)


def story(server_url: str, demo_url: str, database: str, setup: DemoSetup, link: LoginLink) -> str:
    ws = setup.workspace
    lines = [
        "Trailmark demo: a visitor becomes a lead, then a verified user, and you watch it in the admin.",
        "",
        f"  1. Browse as an anonymous visitor: {demo_url}  (each page says what it tracks)",
        "  2. Get in touch: the chat button, bottom right; leave an email and a message (you become a lead)",
        "  3. See the new lead, with the visit's history, in the admin. One-time sign-in link",
        f"     (works once, for {LINK_MINUTES} minutes, from this computer): {server_url}{link.path()}",
        "  4. Back on the demo site, \"Sign in as Ada\" (verified by user_hash): the lead is merged into the user Ada",
        "  Also: an upload on the Upload page shows a banner built from the event (message 'upload-done')",
        "",
        f"  Server {server_url} · app_id {ws.app_id} · database {database} (delete it to start over)",
        f"  REST: curl -H 'Authorization: Bearer {ws.access_token}' '{server_url}/events?type=user&user_id=demo-ada'",
    ]
    if setup.sample:
        lines.append("  Sample data: " + ", ".join(f"{v:,} {k}" for k, v in setup.sample.items()))
    return "\n".join(lines) + "\n"


def run_demo(host: str, port: int, demo_port: int, database: str, log_level: str, sample_data: bool) -> int:
    import uvicorn

    from .app import create_app
    from .settings import Settings

    server_url, demo_url = f"http://{host}:{port}", f"http://{host}:{demo_port}"
    setup: DemoSetup = asyncio.run(with_store(database, lambda store: prepare(store, sample_data, demo_url)))
    link = LoginLink(DEMO_TEAMMATE)
    print(story(server_url, demo_url, database, setup, link), flush=True)
    api_app = create_app(Settings(database_url=database, public_url=server_url))
    api_app.state.login_link = link

    async def run() -> None:
        api = uvicorn.Server(uvicorn.Config(api_app, host=host, port=port, log_level=log_level, access_log=False))
        demo = uvicorn.Server(uvicorn.Config(create_demo_app(server_url, setup.workspace.app_id,
                                                             setup.workspace.identity_secret),
                                             host=host, port=demo_port, log_level=log_level, access_log=False))
        await asyncio.gather(api.serve(), demo.serve())

    asyncio.run(run())
    return 0
