"""`heartbeats.run_heartbeat`: the first beat may take as long as a start-up's first connection does; a beat the
database did not answer in time is one log line, not a traceback (explore32 F2)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from smartcourse.services import heartbeats


async def test_a_slow_first_beat_is_recorded_and_a_late_one_is_one_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    every = 0.2
    recorded: list[datetime | None] = []
    stop = asyncio.Event()

    async def beat(sessionmaker: Any, process: str, instance: str, *, started_at: datetime | None = None) -> datetime:
        if not recorded:
            await asyncio.sleep(every * 4)  # the first connection of a busy start: longer than a period
        elif len(recorded) == 1:
            recorded.append(None)
            await asyncio.sleep(every * 10)  # a database that does not answer: cancelled at the period
        else:
            stop.set()
        at = datetime.now(UTC)
        recorded.append(at)
        return at

    monkeypatch.setattr(heartbeats, "beat", beat)
    monkeypatch.setattr(heartbeats, "FIRST_BEAT_TIMEOUT", every * 10)
    with caplog.at_level(logging.WARNING, logger=heartbeats.log.name):
        await asyncio.wait_for(heartbeats.run_heartbeat(None, "worker", stop=stop, every=every), 10)
    assert recorded[0] is not None and recorded[1] is None and recorded[2] is not None  # the first one kept
    [late] = [r for r in caplog.records if "not recorded" in r.getMessage()]
    assert late.getMessage() == "heartbeat of worker not recorded: the database did not answer within 0.2 s"
    assert late.exc_info is None
