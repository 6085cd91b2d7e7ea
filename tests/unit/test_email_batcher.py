"""EmailBatcher: concurrent welcome e-mails coalesced into one `notifications.send_emails` task (no engines: the
enqueue is a recording function; the task itself runs on a real worker in tests/integration)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

import pytest
from opentelemetry import trace


class Recorder:
    def __init__(self, fail: bool = False, hold: threading.Event | None = None) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.fail, self.hold = fail, hold
        self.span_valid: list[bool] = []

    def __call__(self, emails: list[dict[str, Any]]) -> None:
        if self.hold is not None:
            self.hold.wait(5)
        self.span_valid.append(trace.get_current_span().get_span_context().is_valid)
        self.batches.append(emails)
        if self.fail:
            raise RuntimeError("broker down")


async def after(batcher: Any, seconds: float) -> uuid.UUID:
    """An enrollment set-up finishing `seconds` from now, then enqueuing its e-mail."""
    await asyncio.sleep(seconds)
    nid = uuid.uuid4()
    await batcher.enqueue(nid)
    return nid


async def test_the_first_email_goes_at_once_and_those_within_the_window_share_the_next_task() -> None:
    from smartcourse.tasks import EmailBatcher

    send = Recorder()
    batcher = EmailBatcher(window=1.0, send=send)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    first = await after(batcher, 0)
    assert loop.time() - t0 < 0.5 and [len(b) for b in send.batches] == [1]  # waited for nothing
    rest = await asyncio.gather(*(after(batcher, 0.02 * i) for i in range(6)))
    assert [len(b) for b in send.batches] == [1, 6]  # every caller returned only after its task's enqueue
    assert loop.time() - t0 >= 1.0  # sent a window after the first
    assert [e["id"] for e in send.batches[0]] == [str(first)]
    assert sorted(e["id"] for e in send.batches[1]) == sorted(str(i) for i in rest)


async def test_after_a_quiet_window_an_email_goes_at_once_again() -> None:
    from smartcourse.tasks import EmailBatcher

    send = Recorder()
    batcher = EmailBatcher(window=0.5, send=send)
    loop = asyncio.get_running_loop()
    for _ in range(3):
        await asyncio.sleep(0.6)
        t0 = loop.time()
        await batcher.enqueue(uuid.uuid4())
        assert loop.time() - t0 < 0.4  # not the window
    assert [len(b) for b in send.batches] == [1, 1, 1]


async def test_a_full_batch_goes_at_once_and_the_rest_opens_the_next() -> None:
    from smartcourse.tasks import EmailBatcher

    send = Recorder()
    batcher = EmailBatcher(window=1.0, max_size=3, send=send)
    async with asyncio.timeout(10):
        await after(batcher, 0)  # the first: alone, at once
        t0 = asyncio.get_running_loop().time()
        await asyncio.gather(*(after(batcher, 0) for _ in range(3)))  # full: no waiting for the window
        assert asyncio.get_running_loop().time() - t0 < 0.7
        await asyncio.gather(*(after(batcher, 0) for _ in range(4)))
    assert [len(b) for b in send.batches] == [1, 3, 3, 1]


async def test_each_email_carries_its_callers_trace_and_the_enqueue_runs_outside_them() -> None:
    from opentelemetry.sdk.trace import TracerProvider

    from smartcourse.tasks import EmailBatcher

    tracer = TracerProvider().get_tracer("test")
    send = Recorder()
    batcher = EmailBatcher(window=0.1, send=send)

    async def traced(name: str) -> str:
        with tracer.start_as_current_span(name) as span:
            await batcher.enqueue(uuid.uuid4())
            return format(span.get_span_context().trace_id, "032x")

    traces = await asyncio.gather(traced("a"), traced("b"))  # the same tick: one task
    [batch] = send.batches
    assert [e["trace"]["traceparent"].split("-")[1] for e in batch] == traces
    assert send.span_valid == [False]  # not a child of whichever caller opened the batch


async def test_a_failed_enqueue_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    """`send` is `enqueue_emails`, which never raises; even a raising one releases every caller (the rows stay
    pending for the sweeper)."""
    from smartcourse.tasks import EmailBatcher

    batcher = EmailBatcher(window=0.1, send=Recorder(fail=True))
    async with asyncio.timeout(5):
        await asyncio.gather(after(batcher, 0), after(batcher, 0))
    assert "could not enqueue 2 notification e-mails" in caplog.text


async def test_a_cancelled_caller_does_not_cancel_the_others_enqueue() -> None:
    from smartcourse.tasks import EmailBatcher

    hold = threading.Event()
    send = Recorder(hold=hold)
    batcher = EmailBatcher(window=0.1, send=send)
    first = asyncio.create_task(after(batcher, 0))
    second = asyncio.create_task(after(batcher, 0))
    await asyncio.sleep(0.05)  # the batch is closed and its enqueue is held
    first.cancel()
    hold.set()
    await second
    assert first.cancelled() and [len(b) for b in send.batches] == [2]


def test_the_batch_task_names_its_notifications_and_skips_what_is_not_one() -> None:
    from smartcourse.tasks import _batch_items, send_emails_task

    a, b = uuid.uuid4(), uuid.uuid4()
    items = _batch_items([{"id": str(a), "trace": {"traceparent": "x"}}, {"id": "nope"}, "junk", {"id": str(b)}])
    assert items == [(a, {"traceparent": "x"}), (b, None)]
    assert _batch_items(None) == []
    assert send_emails_task.name == "notifications.send_emails" and send_emails_task.max_retries >= 1


def test_replaying_an_email_task_names_the_notifications_to_hand_back() -> None:
    """POST /ops/dead-letters/{id}/replay resets these notifications from failed to pending before resending."""
    from smartcourse.services.operations import _notification_ids

    a, b = uuid.uuid4(), uuid.uuid4()
    assert _notification_ids("notifications.send_email", [str(a)]) == [a]
    assert _notification_ids("notifications.send_emails", [[{"id": str(a)}, {"id": "x"}, "y", {"id": str(b)}]]) == [
        a,
        b,
    ]
    assert _notification_ids("notifications.sweep_pending", []) == []
    assert _notification_ids("notifications.send_emails", ["not a list"]) == []
