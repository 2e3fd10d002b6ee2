"""The store backends the suite runs against. PostgreSQL joins when a server answers (see issue 4)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

BACKENDS = ["sqlite"]


@contextlib.asynccontextmanager
async def backend_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    if backend == "sqlite":
        yield str(tmp_path / "trailmark.db")
        return
    raise ValueError(backend)
