"""RFC 6901 JSON pointers, for naming the field a validation error is about."""

from __future__ import annotations


def escape(token: str | int) -> str:
    """One reference token: ``~`` → ``~0``, ``/`` → ``~1`` (RFC 6901 §3)."""
    return str(token).replace("~", "~0").replace("/", "~1")


def join(base: str, *tokens: str | int) -> str:
    return base + "".join("/" + escape(t) for t in tokens)
