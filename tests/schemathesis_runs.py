"""What the two schemathesis tests share (test_openapi.py: Trailmark's own description; test_intercom_conformance.py:
Intercom's): a bounded, repeatable hypothesis run of one strategy, and a coroutine run beside schemathesis's loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings

EXAMPLES = 8  # generated requests per operation and mode: the run's bound (no time limit: timing lives in bench/)


def run_examples(strategy: Any, headers: dict[str, str], checks: list[Any]) -> None:
    """Call the app with ``EXAMPLES`` cases drawn from ``strategy`` (the same ones each run), checking each answer."""
    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    @given(case=strategy)
    def check(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=checks)

    check()


def in_thread(coro_factory: Callable[[], Any]) -> Any:
    """Run a coroutine on a fresh event loop in another thread (these tests are synchronous; schemathesis runs
    the app on its own loop)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(coro_factory())).result()
