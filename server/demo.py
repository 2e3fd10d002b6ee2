"""The demo site (``demo_site/``) served with the snippet wired to a Trailmark server."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route

DEMO_DIR = Path(__file__).resolve().parent.parent / "demo_site"


def create_demo_app(server_url: str, app_id: str, directory: Path = DEMO_DIR) -> Starlette:
    """HTML pages get the placeholders ``TRAILMARK_URL`` and ``APP_ID`` of the pasted loader filled in;
    other files are served as they are."""
    root = directory.resolve()

    async def page(request: Request) -> Response:
        name = request.path_params.get("name") or "index.html"
        path = (root / name).resolve()
        if root not in path.parents or not path.is_file():
            return HTMLResponse("<h1>Not found</h1>", status_code=404)
        if path.suffix == ".html":
            html = path.read_text().replace("TRAILMARK_URL", server_url.rstrip("/")).replace("APP_ID", app_id)
            return HTMLResponse(html)
        return FileResponse(path)

    return Starlette(routes=[Route("/", page), Route("/{name:path}", page)])
