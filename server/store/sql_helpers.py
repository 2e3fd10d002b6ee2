"""Small pieces every part of the store writes its SQL with: the clock, new contact ids, ``?`` lists."""

from __future__ import annotations

import secrets
import time

DAY = 86400


def now_s() -> int:
    """Now, in whole seconds: every stored time is one."""
    return int(time.time())


def new_contact_id() -> str:
    return secrets.token_hex(12)  # 24 hex characters, the shape of Intercom's contact ids


def tally(span: list[int], at: int) -> None:
    """One more event at ``at`` into ``span`` = [count, first, last, …] (a new span starts as [1, at, at])."""
    span[0] += 1
    if at < span[1]:
        span[1] = at
    elif at > span[2]:
        span[2] = at


def placeholders(n: int) -> str:
    """``?, ?, …`` for an ``IN (…)`` list of ``n`` values."""
    return ", ".join("?" * n)
