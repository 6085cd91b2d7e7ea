"""The worker started while the workflow engine is down waits for it instead of exiting (explore18 F2: `run`
restarted the exiting worker five times in about 52 s, then stopped the whole product, the API included)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from smartcourse.errors import Unavailable
from smartcourse.worker import connect_when_reachable


class EngineBackAfter:
    def __init__(self, failures: int) -> None:
        self.failures, self.calls = failures, 0

    async def temporal(self) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise Unavailable("workflow engine unreachable at 127.0.0.1:7233", code="workflow_engine_unavailable")
        return "client"


async def test_the_worker_waits_for_the_engine_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    c = EngineBackAfter(failures=3)
    with caplog.at_level(logging.WARNING, logger="smartcourse.worker"):
        client = await asyncio.wait_for(connect_when_reachable(c, stop=asyncio.Event(), first_delay=0.01), 5)
    assert client == "client" and c.calls == 4
    waits = [r.getMessage() for r in caplog.records if "the worker waits for it" in r.getMessage()]
    assert len(waits) == 3 and "127.0.0.1:7233" in waits[0]


async def test_a_worker_stopped_while_waiting_ends_without_a_client() -> None:
    c, stop = EngineBackAfter(failures=10**6), asyncio.Event()
    waiting = asyncio.create_task(connect_when_reachable(c, stop=stop, first_delay=0.01))
    await asyncio.sleep(0.1)
    stop.set()
    assert await asyncio.wait_for(waiting, 5) is None
