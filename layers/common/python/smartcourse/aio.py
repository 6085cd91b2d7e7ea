"""The event loop of the long-running processes (worker, relay, consumers): uvloop when installed.

uvicorn[standard] brings uvloop and the API's processes already run on it; the worker, the relay and the consumers
spend much of their CPU in the loop itself (socket round trips to PostgreSQL, Temporal's bridge callbacks, Kafka),
where uvloop's loop is cheaper than asyncio's (figures: docs/benchmarks.md). Workflow code is unaffected: Temporal
runs workflows on its own deterministic loop, not this one."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on a uvloop loop if uvloop is importable, else on asyncio's."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is installed with uvicorn[standard] on Linux and macOS
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)
