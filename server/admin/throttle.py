"""Failed sign-ins, counted per client address and per account (in-process: each server process counts its own).

- Per address: after ``address_free`` failures the address is blocked with exponential backoff (2 s, 4 s, 8 s …
  up to ``max_block``); a blocked address gets 429 without a password being hashed.
- Per account: failures only *slow down* the next attempts (0.5 s, 1 s, 2 s … up to ``max_delay``) before the
  password is checked. A correct password from an address that did not fail always gets in, so nobody can lock
  a teammate out by guessing wrong passwords for their email.

Failures are forgotten ``window`` seconds after the last one, and on a successful sign-in.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

_MAX_KEYS = 10_000  # a flood of made-up emails or addresses must not grow memory without bound


@dataclass
class _Failures:
    count: int
    last: float


class SignInThrottle:
    def __init__(self, *, address_free: int = 5, account_free: int = 3, window: float = 900,
                 max_block: float = 900, max_delay: float = 8, clock: Callable[[], float] = time.monotonic) -> None:
        self.address_free, self.account_free = address_free, account_free
        self.window, self.max_block, self.max_delay, self.clock = window, max_block, max_delay, clock
        self._addresses: dict[str, _Failures] = {}
        self._accounts: dict[str, _Failures] = {}

    def address_wait(self, address: str) -> float:
        """Seconds this address must still wait before it may try again (0: it may)."""
        f = self._recent(self._addresses, address)
        if f is None or f.count < self.address_free:
            return 0.0
        block = min(self.max_block, 2.0 ** (f.count - self.address_free + 1))
        return max(0.0, f.last + block - self.clock())

    def account_delay(self, email: str) -> float:
        """Seconds to wait before checking a password for this account: it slows guessing, never refuses."""
        f = self._recent(self._accounts, email)
        if f is None or f.count < self.account_free:
            return 0.0
        return float(min(self.max_delay, 0.5 * 2 ** (f.count - self.account_free)))

    def failed(self, address: str, email: str) -> None:
        for table, key in ((self._addresses, address), (self._accounts, email)):
            f = self._recent(table, key)
            if f is None and len(table) >= _MAX_KEYS:
                self._prune(table)
            table[key] = _Failures((f.count if f else 0) + 1, self.clock())

    def succeeded(self, address: str, email: str) -> None:
        self._addresses.pop(address, None)
        self._accounts.pop(email, None)

    def _recent(self, table: dict[str, _Failures], key: str) -> _Failures | None:
        f = table.get(key)
        if f is not None and self.clock() - f.last >= self.window:
            del table[key]
            return None
        return f

    def _prune(self, table: dict[str, _Failures]) -> None:
        now = self.clock()
        for key in [k for k, f in table.items() if now - f.last >= self.window]:
            del table[key]
        if len(table) >= _MAX_KEYS:  # all recent: drop the oldest half
            for key in sorted(table, key=lambda k: table[k].last)[:len(table) // 2]:
                del table[key]
