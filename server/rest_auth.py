"""REST authentication: ``Authorization: Bearer <workspace access token>``, as Intercom's SDKs send it."""

from __future__ import annotations

import re

from starlette.requests import Request

from .errors import ApiError, unauthorized
from .store import SQLStore
from .store.models import Workspace

# Intercom accepts 1.0 … 2.17, Unstable and Preview; a missing header means the app default.
_VERSION = re.compile(r"^(1\.[0-4]|2\.([0-9]|1[0-7])|Unstable|Preview)$")


async def rest_workspace(request: Request) -> Workspace:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("Access Token Invalid")
    store: SQLStore = request.app.state.store
    ws = await store.workspace_by_token(token.strip())
    if ws is None:
        raise unauthorized("Access Token Invalid")
    version = request.headers.get("intercom-version")
    if version is not None and not _VERSION.match(version.strip()):
        raise ApiError(400, "intercom_version_invalid", "The requested version could not be found",
                       "Intercom-Version")
    return ws
