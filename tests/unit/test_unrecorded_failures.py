"""Workflow failures whose record could not be written (the database away) are kept and written in order once it
answers (explore38 F7: an outage's failed set-ups left no trace in `/ops/workflows`)."""

from __future__ import annotations

import contextlib
from typing import Any

from workflows.failures import Unrecorded


async def test_kept_failures_are_written_in_order_once_the_database_answers() -> None:
    written: list[str] = []
    refusals = 2

    async def write(_sessionmaker: Any, **record: Any) -> None:
        nonlocal refusals
        if refusals:
            refusals -= 1
            raise ConnectionRefusedError("the database is away")
        written.append(record["workflow_id"])

    kept = Unrecorded()
    for wid in ("a", "b", "c"):
        kept.add({"workflow_id": wid})
    assert await kept.flush(write, None) is False and len(kept) == 3  # nothing lost while it fails
    assert await kept.flush(write, None) is False and len(kept) == 3
    assert await kept.flush(write, None) is True
    assert written == ["a", "b", "c"] and len(kept) == 0
    assert await kept.flush(write, None) is True and written == ["a", "b", "c"]  # nothing twice


def test_beyond_its_bound_the_oldest_go_and_are_counted() -> None:
    kept = Unrecorded(maxlen=2)
    for wid in ("a", "b", "c"):
        kept.add({"workflow_id": wid})
    assert len(kept) == 2 and kept.dropped == 1


async def test_only_failures_that_waited_are_said_to_have_waited(caplog: Any) -> None:
    """explore40 F7: every failed step logged "recorded 1 workflow failure(s) kept while the database was away", the
    database up."""
    up = True

    async def write(_sessionmaker: Any, **record: Any) -> None:
        if not up:
            raise ConnectionRefusedError("the database is away")

    kept = Unrecorded()
    caplog.set_level("WARNING", logger="workflows.failures")
    kept.add({"workflow_id": "now"})
    assert await kept.flush(write, None) is True
    assert "kept while the database was away" not in caplog.text
    up = False
    kept.add({"workflow_id": "a"})
    assert await kept.flush(write, None) is False
    up = True
    kept.add({"workflow_id": "b"})  # the next failure's flush writes the one kept, and its own at once
    assert await kept.flush(write, None) is True
    assert "recorded 1 workflow failure(s) kept while the database was away" in caplog.text


async def test_an_attempt_temporal_timed_out_is_a_failure_another_cancellation_is_not() -> None:
    """explore55 F2: an attempt cancelled by its heartbeat or start-to-close timeout (a blocked worker, a hung call)
    was retried with nothing in `/ops/workflows`; a cancellation for any other reason is no failure."""
    import asyncio

    from temporalio.activity import ActivityCancellationDetails
    from temporalio.testing import ActivityEnvironment

    from workflows.failures import timed_out

    assert timed_out() is None  # not in an activity

    async def waits() -> object:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            return timed_out()
        return "not cancelled"

    seen = []
    for details in (ActivityCancellationDetails(timed_out=True), ActivityCancellationDetails(cancel_requested=True)):
        env = ActivityEnvironment()
        running = asyncio.ensure_future(env.run(waits))
        await asyncio.sleep(0.05)
        env.cancel(cancellation_details=details)
        seen.append(await running)
    assert isinstance(seen[0], TimeoutError) and "timed out" in str(seen[0])
    assert seen[1] is None


async def test_a_timed_out_attempt_is_counted_as_such_not_as_a_cancellation() -> None:
    """explore55 F2: `activity_runs_total{outcome="cancelled"}` held the timed-out attempts, in no alert; they are
    `timed_out` now (in `SmartCourseActivitiesFailing`), a cancellation for any other reason stays `cancelled`."""
    import asyncio

    from temporalio.activity import ActivityCancellationDetails
    from temporalio.testing import ActivityEnvironment

    from smartcourse import metrics
    from workflows.metrics import _ActivityMetrics

    class Waits:
        async def execute_activity(self, input: object) -> object:
            await asyncio.sleep(30)
            return None

    counted = []
    for details in (ActivityCancellationDetails(timed_out=True), ActivityCancellationDetails(cancel_requested=True)):
        env = ActivityEnvironment()

        async def attempt() -> None:
            with contextlib.suppress(asyncio.CancelledError):
                await _ActivityMetrics(Waits()).execute_activity(None)  # type: ignore[arg-type]

        name = env.info.activity_type
        before = {o: metrics.ACTIVITY_RUNS.labels(name, o)._value.get() for o in ("timed_out", "cancelled")}
        running = asyncio.ensure_future(env.run(attempt))
        await asyncio.sleep(0.05)
        env.cancel(cancellation_details=details)
        await running
        after = {o: metrics.ACTIVITY_RUNS.labels(name, o)._value.get() for o in ("timed_out", "cancelled")}
        counted.append({o: after[o] - before[o] for o in after})
    assert counted == [{"timed_out": 1, "cancelled": 0}, {"timed_out": 0, "cancelled": 1}]
