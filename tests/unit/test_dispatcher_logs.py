"""The dispatcher's log lines as on-call reads them (explore55 F9): a failed start's line carries the trace of the
request that admitted the enrollment, and the end of a backoff is said."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import pytest

from smartcourse import telemetry
from smartcourse.logging import install_record_factory
from smartcourse.services import dispatcher
from smartcourse.services.dispatcher import DispatchConfig, Round


class _Refusing:
    async def start(self, workflow: str, arg: Any, *, workflow_id: str) -> str:
        raise RuntimeError("Unavailable: the engine is away")


async def test_a_failed_start_is_logged_in_the_trace_of_its_admission(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    install_record_factory()
    provider = TracerProvider()  # a private one (the global one may be the suite's)
    monkeypatch.setattr(telemetry, "tracer", lambda: provider.get_tracer("test"))
    enrollment = uuid.uuid4()
    admitted_in = "4bf92f3577b34da6a3ce929d0e0e4736"
    stored = {"traceparent": f"00-{admitted_in}-00f067aa0ba902b7-01"}  # what its outbox row kept
    with caplog.at_level(logging.WARNING, logger=dispatcher.log.name):
        started, failed = await dispatcher._start_all(
            _Refusing(), [(enrollment, f"enroll-{enrollment}")], DispatchConfig(), {enrollment: stored}
        )
    assert (started, failed) == ([], 1)
    [line] = [r for r in caplog.records if "could not start workflow" in r.getMessage()]
    assert getattr(line, "trace_id", None) == admitted_in, line.__dict__


async def test_the_end_of_a_backoff_is_said(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    stop = asyncio.Event()
    rounds: list[Round | Exception] = [RuntimeError("database away"), Round(failed=2), Round(started=3)]

    async def one_round(container: Any, cfg: DispatchConfig) -> Round:
        if not rounds:
            stop.set()
            return Round()
        result = rounds.pop(0)
        if isinstance(result, Exception):
            raise result
        return result

    monkeypatch.setattr(dispatcher, "dispatch_once", one_round)
    cfg = DispatchConfig(backoff_min=0.01, backoff_max=0.02, idle_sleep=0.01)
    with caplog.at_level(logging.INFO, logger=dispatcher.log.name):
        await asyncio.wait_for(dispatcher.run_dispatcher(object(), stop=stop, cfg=cfg), 10)
    said = [r.getMessage() for r in caplog.records]
    assert sum("dispatcher backing off" in m for m in said) == 2, said
    assert said[-1] == "workflow dispatcher resumed after 2 rounds backing off", said
