"""The outbox relay: publishes committed events in order, marks them sent; at-least-once by design."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import DateTime, Integer, Text, any_, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PG_UUID

from smartcourse import telemetry
from smartcourse.event_contracts import all_contracts
from smartcourse.logging import FailedRounds
from smartcourse.metrics import OUTBOX_FAILURES as RELAY_FAILURES
from smartcourse.metrics import OUTBOX_PUBLISH_DURATION, at_zero
from smartcourse.metrics import OUTBOX_RELAYED as RELAYED
from smartcourse.models import OutboxEvent, utcnow

log = logging.getLogger(__name__)


class Publisher(Protocol):
    """Where the relay sends events: Kafka in production, the in-process consumers when embedded."""

    async def publish(self, topic: str, key: str, envelope: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class Outgoing:
    """One event of a relay round: where it goes, and the context of its publish span (W3C carrier, or None)."""

    topic: str
    key: str
    envelope: dict[str, Any]
    parent: dict[str, str] | None


@runtime_checkable
class BatchPublisher(Publisher, Protocol):
    """A publisher that takes a relay round at once (`consumers.InProcessPublisher`): all of it, or raises."""

    async def publish_batch(self, batch: Sequence[Outgoing]) -> None: ...


_OUTBOX = OutboxEvent.__table__
#: A round's rows (Core, built once: the relay only reads them and marks them; no ORM objects to track).
_UNSENT = (
    select(
        _OUTBOX.c.id,
        _OUTBOX.c.topic,
        _OUTBOX.c.event_type,
        _OUTBOX.c.aggregate_id,
        _OUTBOX.c.payload,
        _OUTBOX.c.trace_context,
    )
    .where(_OUTBOX.c.published_at.is_(None))
    .order_by(_OUTBOX.c.occurred_at, _OUTBOX.c.id)
    .limit(bindparam("batch", type_=Integer))
    .with_for_update(skip_locked=True)
)
_MARK_SENT = (
    update(_OUTBOX)
    .where(_OUTBOX.c.id == any_(bindparam("ids", type_=ARRAY(PG_UUID(as_uuid=True)))))
    .values(published_at=bindparam("sent_at", type_=DateTime(timezone=True)), attempts=_OUTBOX.c.attempts + 1)
)
_MARK_FAILED = (
    update(_OUTBOX)
    .where(_OUTBOX.c.id == bindparam("failed_id", type_=PG_UUID(as_uuid=True)))
    .values(attempts=_OUTBOX.c.attempts + 1, last_error=bindparam("error", type_=Text))
)


#: How long a relay round waits for the broker to take its events (the in-process bus bounds each consumer itself:
#: `consumers.CONSUMER_TIMEOUT_SECONDS`). Past it the round
#: is a failure like any other: counted, logged, recorded on its first event (`last_error`), and tried again. A Kafka
#: outage held the round inside the producer for as long as it lasted (69 s in explore24 F3) with nothing counted,
#: recorded or logged by SmartCourse: `SmartCourseOutboxPublishFailing` could not fire. A send cut off here may still
#: reach Kafka later: consumers dedupe by event id.
PUBLISH_TIMEOUT_SECONDS = 10.0


class _Stalled(Exception):
    def __init__(self, timeout: float) -> None:
        super().__init__(timeout)
        self.timeout = timeout

    def __str__(self) -> str:
        return f"the broker did not acknowledge within {self.timeout:g} s (is it reachable?)"


async def relay_once(
    sessionmaker: Any, publisher: Publisher, *, batch: int = 100, timeout: float = PUBLISH_TIMEOUT_SECONDS
) -> int:
    """Publish one batch of unsent events, oldest first. Rows are locked (SKIP LOCKED) so relays can scale out.

    The row is marked sent only after the publish succeeded, in the same transaction that locked it: a crash
    in between republishes the event, which consumers dedupe by event id. `timeout`: how long the broker has to take
    them (a test passes its own rather than patching the module, which a relay in the same process reads too).
    """
    bound: float | None = None if getattr(publisher, "bounds_itself", False) else timeout
    async with sessionmaker() as session, session.begin():
        rows = list(await session.execute(_UNSENT, {"batch": batch}))
        if len(rows) > 1 and isinstance(publisher, BatchPublisher):
            try:
                together = await _published_together(rows, publisher, bound)
            except _Stalled as exc:  # not again row by row: the first row would wait as long
                await _failed(session, rows[0], exc, of=len(rows))
                return 0
            if together:
                await _mark_sent(session, rows)
                return len(rows)
        sent: list[Any] = []
        for row in rows:
            try:
                with telemetry.publishing(row), OUTBOX_PUBLISH_DURATION.labels(row.event_type).time():
                    await _bounded(publisher.publish(row.topic, row.aggregate_id, row.payload), bound)
            except Exception as exc:
                await _failed(session, row, exc)
                break  # keep per-aggregate order: stop at the first failure, retry next round
            RELAYED.labels(row.event_type).inc()
            sent.append(row)
        await _mark_sent(session, sent)
        return len(sent)


async def _bounded(publishing: Any, timeout: float | None) -> None:
    """The publish, cut off after `timeout` (None: a publisher that bounds its own work, the in-process bus)."""
    if timeout is None:
        await publishing
        return
    try:
        await asyncio.wait_for(publishing, timeout)
    except TimeoutError:
        raise _Stalled(timeout) from None


async def _failed(session: Any, row: Any, exc: Exception, *, of: int = 1) -> None:
    """Count, log and record (on `row`) a failed publish; `of`: the events of the round it held up."""
    RELAY_FAILURES.labels(row.event_type).inc()
    if isinstance(exc, _Stalled):
        log.warning("outbox publish failed: %s; %d event(s) wait for the next round", exc, of)
    else:
        log.warning("outbox publish failed", extra={"event_id": str(row.id)}, exc_info=True)
    await session.execute(_MARK_FAILED, {"failed_id": row.id, "error": str(exc)[:2000]})


async def _mark_sent(session: Any, rows: Sequence[Any]) -> None:
    if rows:
        await session.execute(_MARK_SENT, {"ids": [row.id for row in rows], "sent_at": utcnow()})


async def _published_together(rows: Sequence[Any], publisher: BatchPublisher, timeout: float | None) -> bool:
    """The round's rows in one call (the in-process bus: one transaction per consumer; Kafka: every send, then every
    ack). True: all sent (the caller marks them). False: the round goes on row by row, which keeps the rows before a
    failing one and records the failure on that row (what was already delivered is delivered again: consumers
    dedupe)."""
    batch = []
    for row in rows:  # each row's publish span: its consumers' spans are its children (in-process, Kafka header)
        with telemetry.publishing(row):
            batch.append(Outgoing(row.topic, row.aggregate_id, row.payload, telemetry.current_carrier()))
    started = time.perf_counter()
    try:
        await _bounded(publisher.publish_batch(batch), timeout)
    except _Stalled:
        raise
    except Exception:
        log.warning("publishing %d outbox events together failed; going on one by one", len(rows), exc_info=True)
        return False
    share = (time.perf_counter() - started) / len(rows)  # the histogram is per event: each row its share
    for row in rows:
        OUTBOX_PUBLISH_DURATION.labels(row.event_type).observe(share)
        RELAYED.labels(row.event_type).inc()
    return True


#: Rows per relay round.
ROUND = 100
#: After a round that was not full, the relay waits this long before the next, so that the events committed meanwhile
#: go out together (one transaction per consumer in process, one produce request per partition to Kafka) instead of
#: a round each: like a Kafka producer's `linger.ms`. Events reach their consumers up to this much later.
LINGER_SECONDS = 0.05


#: The longest pause between two relay rounds while they fail (the database away): the rows wait in the outbox.
FAILED_PAUSE_MAX = 5.0


async def run_relay(
    sessionmaker: Any,
    publisher: Publisher,
    *,
    idle_sleep: float = 0.5,
    linger: float = LINGER_SECONDS,
    stop: asyncio.Event | None = None,
    on_error: Callable[[BaseException], Awaitable[None]] | None = None,
    rounds: Callable[..., Awaitable[int]] | None = None,
    pause: Callable[[asyncio.Event, float], Awaitable[None]] | None = None,
) -> None:
    """Relay until `stop`. `rounds` and `pause` stand in for `relay_once` and the wait between rounds in a test,
    passed here rather than patched on the module, which a relay running in the same process uses too (a CI run
    failed when the product's own relay called a test's patched round)."""
    stop = stop or asyncio.Event()
    one_round = rounds or relay_once
    wait = pause or _pause
    # Every event type's failure series at 0 from the start: the alert on its rate fires on the first failure.
    at_zero(RELAY_FAILURES, *{(event_type,) for event_type, _ in all_contracts()})
    # An outage (the database away) is said once with its traceback, then a line per round, rounds spaced out up to
    # `FAILED_PAUSE_MAX` (explore38 F3: a traceback every 0.5 s, 77 in 40 s).
    outage = FailedRounds(log, "outbox relay round", "outbox relay")
    while not stop.is_set():
        try:
            sent = await one_round(sessionmaker, publisher, batch=ROUND)
        except Exception as exc:
            outage.failure(exc)
            if on_error:
                await on_error(exc)
            sent = 0
        else:
            outage.success()
        seconds = idle_sleep if not sent else linger if sent < ROUND else 0.0
        if outage.failed:
            seconds = min(FAILED_PAUSE_MAX, idle_sleep * 2 ** (outage.failed - 1))
        if seconds:
            await wait(stop, seconds)


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    """Wait `seconds`, or less if `stop` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def backlog_figures(session: Any) -> dict[str, Any]:
    """Outbox events not relayed yet and the age of the oldest (0 when none), read from the table: unlike the
    relay's own figures, they show a relay that stopped (/health, the dashboard's workflow_issues)."""
    count, age = (
        await session.execute(
            select(
                func.count(),
                # Never below 0 (`metrics._STATE_SQL`: a row stamped just after this transaction's now()).
                func.greatest(
                    func.coalesce(func.extract("epoch", func.now() - func.min(OutboxEvent.occurred_at)), 0), 0
                ),
            ).where(OutboxEvent.published_at.is_(None))
        )
    ).one()
    return {"unpublished": int(count), "oldest_age_seconds": round(float(age), 1)}
