"""The dispatcher says an outage as the relay does: the traceback once, then a line per failed round, then that it
resumed (explore40 F12: a traceback at `error` every round while PostgreSQL was away)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from smartcourse.services import dispatcher


async def test_an_outage_is_one_traceback_then_a_line_per_round_then_resumed(
    monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    stop = asyncio.Event()
    outcomes: list[Any] = [ConnectionRefusedError("database away")] * 3 + [dispatcher.Round()]

    async def dispatch_once(_container: Any, _cfg: Any) -> dispatcher.Round:
        outcome = outcomes.pop(0) if outcomes else dispatcher.Round()
        if not outcomes:
            stop.set()
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(dispatcher, "dispatch_once", dispatch_once)  # the module's own function, not asyncio's
    cfg = dispatcher.DispatchConfig(backoff_min=0.01, backoff_max=0.01, idle_sleep=0.01)
    caplog.set_level(logging.INFO, logger=dispatcher.__name__)
    await asyncio.wait_for(dispatcher.run_dispatcher(object(), stop=stop, cfg=cfg), 10)
    failed = [r for r in caplog.records if "dispatch round failed" in r.getMessage()]
    assert [r.exc_info is not None for r in failed] == [True, False, False], [r.getMessage() for r in failed]
    assert "failed again (3 in a row)" in failed[-1].getMessage()
    assert any("resumed after 3 failed rounds" in r.getMessage() for r in caplog.records)
