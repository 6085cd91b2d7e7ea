"""The outbox relay through a database outage: logged once with its traceback, a line per failed round after that,
rounds spaced out, and the recovery said (explore38 F3: a traceback every 0.5 s, 77 of them in 40 s)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from smartcourse.services import outbox


async def test_an_outage_is_logged_once_then_a_line_per_round_and_its_end(caplog: pytest.LogCaptureFixture) -> None:
    stop = asyncio.Event()
    calls = 0
    pauses: list[float] = []

    async def relay_once(*_: Any, **__: Any) -> int:
        nonlocal calls
        calls += 1
        if calls <= 4:
            raise ConnectionRefusedError("the database is away")
        if calls == 6:
            stop.set()
        return 0

    async def pause(_stop: asyncio.Event, seconds: float) -> None:
        pauses.append(seconds)
        await asyncio.sleep(0)

    # Passed, not patched on the module: a product's relay in this process calls the module's (a CI run failed when
    # it called this test's round and counted in its calls).
    relay = outbox.run_relay(None, None, stop=stop, idle_sleep=0.5, rounds=relay_once, pause=pause)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger=outbox.log.name):
        await asyncio.wait_for(relay, 10)
    failures = [r for r in caplog.records if "relay round failed" in r.getMessage()]
    assert [r.exc_info is not None for r in failures] == [True, False, False, False]
    assert "failed again (4 in a row): the database is away" in failures[-1].getMessage()
    assert any("relay resumed after 4 failed rounds" in r.getMessage() for r in caplog.records)
    assert pauses[:5] == [0.5, 1.0, 2.0, 4.0, 0.5]  # doubling while it fails, back to the idle pause after
