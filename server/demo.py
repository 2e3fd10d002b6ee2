"""The demo site (``demo_site/``, copied into the package as ``assets/demo_site``) served with the snippet wired
to a Trailmark server."""

from __future__ import annotations

import mimetypes
from importlib.resources.abc import Traversable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from .assets import package_file
from .identity import user_hash


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
