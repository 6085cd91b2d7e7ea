"""The enrollment workflow dispatcher: starts the workflows of admissions, fed by the outbox, with a bound.

`POST /enrollments` commits the admission and its `enrollment.created` event and answers; a promotion from the
waitlist commits `waitlist.promoted` with the drop. The dispatcher reads those outbox rows (the partial index
`ix_outbox_dispatch_queue`: `dispatched_at` is null, the admission needs a workflow), oldest first, and starts each
enrollment's workflow by its deterministic id (REJECT_DUPLICATE: a second start of the same id does nothing), then
marks the enrollment (`workflow_started_at`) and the outbox row (`dispatched_at`).

* **Bound on work in flight.** At most `max_in_flight` enrollments are pending with a started workflow; beyond it
  the dispatcher waits and the rest stays queued in PostgreSQL (the outbox rows and the pending enrollments), so a
  burst never lands on the Temporal worker all at once.
* **Batches.** One round takes up to `batch` queued admissions and starts them concurrently, at most
  `concurrency` start calls at a time.
* **Backoff.** A round whose starts all failed (Temporal down or slow past `start_timeout`) leaves its rows queued
  and waits 0.5 s, 1 s, 2 s ... up to `backoff_max` before the next; the first success resets it.
* **Idempotent and crash-safe.** The marks are written after the starts, in the round's transaction: a crash
  in between leaves the rows queued and the next round starts them again, which Temporal rejects as duplicates
  (the round then only records the marks). A transaction-scoped advisory lock makes rounds of several
  dispatchers (and the sweeper's) take turns, so the bound holds across processes.

The dispatcher never locks an outbox row the relay holds (it marks with SKIP LOCKED and catches up next round),
and it does not depend on Kafka: the same loop runs with the embedded engines and with the stack.
See docs/architecture.md, "Launch day: admission, dispatcher, backpressure".
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from opentelemetry.trace import SpanKind
from prometheus_client import Counter, Gauge
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from smartcourse import telemetry
from smartcourse.domain import workflows as names
from smartcourse.errors import Unavailable
from smartcourse.logging import FailedRounds
from smartcourse.models import OUTBOX_DISPATCH_QUEUE, Enrollment, OutboxEvent, utcnow

log = logging.getLogger(__name__)

#: pg_advisory_xact_lock key of a dispatch round ("sc-disp" in ASCII): rounds of all dispatchers take turns.
LOCK_KEY = 0x73632D64697370


class _Metrics:
    """The dispatcher's metrics, made by the first process that dispatches (`metrics()`): a process that only
    imports this module (the API, for the backlog on /health) shows no dispatcher counters frozen at 0 on its
    /metrics (explore10 F5)."""

    def __init__(self) -> None:
        self.started = Counter(
            "smartcourse_dispatcher_started_total", "Enrollment workflows the dispatcher had started"
        )
        self.start_failures = Counter(
            "smartcourse_dispatcher_start_failures_total", "Enrollment workflow starts that failed (retried later)"
        )
        self.in_flight = Gauge(
            "smartcourse_dispatcher_in_flight",
            "Pending enrollments whose workflow is started (bounded by SMARTCOURSE_DISPATCH_MAX_IN_FLIGHT)",
            multiprocess_mode="mostrecent",
        )
        self.backoff = Gauge(
            "smartcourse_dispatcher_backoff_seconds",
            "The dispatcher's current wait after failed starts (0: not backing off)",
            multiprocess_mode="mostrecent",
        )


@functools.cache
def metrics() -> _Metrics:
    return _Metrics()


@dataclass(frozen=True)
class DispatchConfig:
    """The dispatcher's knobs (Settings: SMARTCOURSE_DISPATCH_*)."""

    max_in_flight: int = 64
    concurrency: int = 16
    batch: int = 100
    start_timeout: float = 10.0
    idle_sleep: float = 0.1
    full_sleep: float = 0.2
    backoff_min: float = 0.5
    backoff_max: float = 30.0
    lock_key: int = LOCK_KEY  # rounds with the same key take turns (tests use their own)

    @classmethod
    def of(cls, settings: Any) -> DispatchConfig:
        return cls(
            max_in_flight=settings.dispatch_max_in_flight,
            concurrency=settings.dispatch_concurrency,
            batch=settings.dispatch_batch,
            start_timeout=settings.dispatch_start_timeout_seconds,
        )


@dataclass
class Round:
    """What one dispatch round did."""

    started: int = 0  # workflows started (or found already started) and marked
    skipped: int = 0  # queued rows that needed no start (dropped meanwhile, started by the sweeper, ...)
    failed: int = 0  # starts that failed: their rows stay queued
    in_flight: int = 0  # pending enrollments with a started workflow, before the round
    room: int = 0  # how many more the bound allowed
    waiting: int = 0  # queued admissions the bound held back this round
    busy: bool = False  # another dispatcher's round held the lock

    @property
    def progressed(self) -> bool:
        return bool(self.started or self.skipped)


@dataclass(frozen=True)
class Backlog:
    """Admitted enrollments not yet active (status pending), and how many of them have a started workflow."""

    admitted_not_active: int
    in_flight: int
    oldest_admitted_at: datetime | None
    oldest_age_seconds: float

    @property
    def queued(self) -> int:
        return self.admitted_not_active - self.in_flight

    def as_dict(self) -> dict[str, Any]:
        return {
            "admitted_not_active": self.admitted_not_active,
            "oldest_age_seconds": round(self.oldest_age_seconds, 3),
            "workflow_started": self.in_flight,
            "queued": self.queued,
        }


_BACKLOG = text(
    "select count(*), count(workflow_started_at), min(admitted_at), "
    "greatest(coalesce(extract(epoch from now() - min(admitted_at)), 0), 0) from enrollments where status = 'pending'"
)


async def backlog(session: Any) -> Backlog:
    """The admitted-not-active backlog, counted on the partial index of pending enrollments."""
    total, started, oldest, age = (await session.execute(_BACKLOG)).one()
    return Backlog(int(total), int(started), oldest, float(age))


#: (value, monotonic time) the in-flight gauge was last read from the database at.
_gauge_read = [0.0, 0.0]
IN_FLIGHT_READ_SECONDS = 1.0


def _report_in_flight(value: int) -> None:
    metrics().in_flight.set(value)
    _gauge_read[:] = [float(value), time.monotonic()]


async def _settle_in_flight(session: Any) -> None:
    """An idle round: the gauge was set by the last round that started workflows, and those finish without another
    round (explore10 F4: it read 64 long after the queue had emptied). Read it again, at most once a second, while
    it is above 0."""
    value, at = _gauge_read
    if value > 0 and time.monotonic() - at >= IN_FLIGHT_READ_SECONDS:
        _report_in_flight(await _in_flight(session))


async def _in_flight(session: Any) -> int:
    return int(
        await session.scalar(
            select(func.count())
            .select_from(Enrollment)
            .where(Enrollment.status == "pending", Enrollment.workflow_started_at.is_not(None))
        )
        or 0
    )


async def _start_all(
    starter: Any,
    todo: Sequence[tuple[uuid.UUID, str]],
    cfg: DispatchConfig,
    traces: dict[uuid.UUID, Any] | None = None,
) -> tuple[list[uuid.UUID], int]:
    """Start each (enrollment, workflow id) concurrently, at most `cfg.concurrency` at once. Returns the enrollments
    whose workflow runs or ran (started now, or a duplicate of an earlier start) and how many starts failed.

    Each start continues the trace of the request that admitted the enrollment (`traces`: the trace context its
    outbox row stored), so the workflow, its activities, the e-mail task and the SMTP send join that trace."""
    gate = asyncio.Semaphore(cfg.concurrency)
    traces = traces or {}

    async def one(enrollment_id: uuid.UUID, workflow_id: str) -> bool:
        async with gate:
            with telemetry.continue_from(
                traces.get(enrollment_id),
                "dispatch enrollment workflow",
                kind=SpanKind.PRODUCER,
                attributes={"smartcourse.workflow_id": workflow_id},
            ) as span:
                try:
                    await asyncio.wait_for(
                        starter.start(names.ENROLLMENT, names.enrollment_input(enrollment_id), workflow_id=workflow_id),
                        cfg.start_timeout,
                    )
                except Exception as exc:  # the engine down, slow or refusing: retried by a later round
                    metrics().start_failures.inc()
                    telemetry.mark_error(span, exc)
                    # In the span: the line carries the request's trace (explore55 F9: written after it closed).
                    log.warning("could not start workflow %s: %s: %s", workflow_id, type(exc).__name__, exc)
                    return False
            return True

    results = await asyncio.gather(*(one(e, w) for e, w in todo))
    ok = [e for (e, _), good in zip(todo, results, strict=True) if good]
    return ok, len(todo) - len(ok)


async def _mark_started(session: Any, enrollment_ids: Sequence[uuid.UUID]) -> None:
    if enrollment_ids:
        await session.execute(
            update(Enrollment)
            .where(Enrollment.id.in_(enrollment_ids), Enrollment.workflow_started_at.is_(None))
            .values(workflow_started_at=func.now())
        )


async def dispatch_once(container: Any, cfg: DispatchConfig) -> Round:
    """One round: take up to `batch` queued admissions (within the bound), start their workflows, mark them."""
    starter = container.workflow_starter()
    async with container.sessionmaker() as session, session.begin():
        queue = (
            await session.execute(
                select(OutboxEvent.id, OutboxEvent.aggregate_id, OutboxEvent.trace_context)
                .where(text(OUTBOX_DISPATCH_QUEUE))
                .order_by(OutboxEvent.occurred_at, OutboxEvent.id)
                .limit(cfg.batch)
            )
        ).all()
        if not queue:
            await _settle_in_flight(session)
            return Round()
        if not await session.scalar(select(func.pg_try_advisory_xact_lock(cfg.lock_key))):
            return Round(busy=True)
        in_flight = await _in_flight(session)
        _report_in_flight(in_flight)
        room = max(0, cfg.max_in_flight - in_flight)
        # The aggregate of an admission event is its enrollment (services/enrollment.enrollment_event).
        by_row = [(row_id, uuid.UUID(aggregate)) for row_id, aggregate, _ in queue]
        traces = {uuid.UUID(aggregate): context for _, aggregate, context in queue if context}
        needing = dict(
            (
                await session.execute(
                    select(Enrollment.id, Enrollment.workflow_id).where(
                        Enrollment.id.in_([e for _, e in by_row]),
                        Enrollment.status == "pending",
                        Enrollment.workflow_started_at.is_(None),
                        Enrollment.workflow_id.is_not(None),
                    )
                )
            ).all()
        )
        todo: list[tuple[uuid.UUID, str]] = []
        taken: set[uuid.UUID] = set()
        done_rows: list[uuid.UUID] = []
        held = 0
        for row_id, enrollment_id in by_row:
            if enrollment_id not in needing:
                done_rows.append(row_id)  # nothing to start: dropped, already started, no longer pending
            elif enrollment_id in taken:
                continue
            elif len(todo) < room:
                todo.append((enrollment_id, needing[enrollment_id]))
                taken.add(enrollment_id)
            else:
                held += 1
        result = Round(in_flight=in_flight, room=room, waiting=held)
        started, result.failed = await _start_all(starter, todo, cfg, traces) if todo else ([], 0)
        await _mark_started(session, started)
        result.started, result.skipped = len(started), len(done_rows)
        metrics().started.inc(len(started))
        _report_in_flight(in_flight + len(started))
        started_set = set(started)
        done_rows += [row_id for row_id, e in by_row if e in started_set]
        if done_rows:
            # SKIP LOCKED: a row the relay holds right now is marked by a later round (its start is recorded).
            free = (
                select(OutboxEvent.id)
                .where(OutboxEvent.id.in_(done_rows))
                .with_for_update(skip_locked=True)
                .scalar_subquery()
            )
            await session.execute(update(OutboxEvent).where(OutboxEvent.id.in_(free)).values(dispatched_at=func.now()))
    return result


async def run_dispatcher(
    container: Any, *, stop: asyncio.Event, cfg: DispatchConfig | None = None, idle_sleep: float | None = None
) -> None:
    """Dispatch until `stop` is set: immediately again while there is work and room, a short sleep when idle or at
    the bound, an exponential backoff when every start of a round failed. Never raises (it logs and backs off)."""
    cfg = cfg or DispatchConfig.of(container.settings)
    idle = cfg.idle_sleep if idle_sleep is None else idle_sleep
    backoff = 0.0
    backed_off = 0  # rounds in a row that ended in a backoff
    # An outage's traceback once, then a line per round, then its end (explore40 F12: one at `error` every round).
    outage = FailedRounds(log, "dispatch round", "workflow dispatcher")
    metrics()  # the dispatcher's series exist (at 0) from its start
    log.info("workflow dispatcher started (at most %d in flight, batch %d)", cfg.max_in_flight, cfg.batch)
    while not stop.is_set():
        try:
            result: Round | None = await dispatch_once(container, cfg)
        except Exception as exc:
            outage.failure(exc)
            result = None
        else:
            outage.success()
        if result is None or (result.failed and not result.progressed):
            backoff = min(cfg.backoff_max, max(cfg.backoff_min, backoff * 2))
            metrics().backoff.set(backoff)
            backed_off += 1
            log.warning("dispatcher backing off %.1f s", backoff)
            wait = backoff * random.uniform(0.8, 1.2)
        else:
            if backoff:
                metrics().backoff.set(0)
                # Its end said, as the relay says its own (explore55 F9: a warning every try, then silence).
                log.warning("workflow dispatcher resumed after %d rounds backing off", backed_off)
            backoff, backed_off = 0.0, 0
            if result.progressed and not result.failed:
                await asyncio.sleep(0)  # more may be queued: go again (yielding to the rest of the process)
                continue
            wait = cfg.full_sleep if (result.waiting or result.busy or result.failed) else idle
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), wait)


async def _admission_traces(session: AsyncSession, enrollment_ids: list[uuid.UUID]) -> dict[uuid.UUID, Any]:
    """The trace context each enrollment's admission event kept (the latest, for one promoted after a wait)."""
    rows = await session.execute(
        select(OutboxEvent.aggregate_id, OutboxEvent.trace_context)
        .where(
            OutboxEvent.aggregate_id.in_([str(e) for e in enrollment_ids]),
            OutboxEvent.event_type.in_(("enrollment.created", "waitlist.promoted")),
            OutboxEvent.trace_context.is_not(None),
        )
        .order_by(OutboxEvent.occurred_at)
    )
    return {uuid.UUID(aggregate): context for aggregate, context in rows.all() if context}


async def sweep_pending(container: Any, *, older_than_s: float, cfg: DispatchConfig | None = None) -> int:
    """The sweeper's part for pending enrollments, within the dispatcher's bound (services/workflows.sweep).

    Re-starts (a no-op when running) the started ones older than the cut-off, and starts the oldest unstarted ones
    (an outbox row lost, or a crash between start and mark) while the bound has room. Returns how many are running
    after the sweep."""
    cfg = cfg or DispatchConfig.of(container.settings)
    starter = container.workflow_starter()
    cutoff = utcnow() - timedelta(seconds=older_than_s)
    async with container.sessionmaker() as session, session.begin():
        await session.execute(select(func.pg_advisory_xact_lock(cfg.lock_key)))  # take turns with the dispatcher
        started_rows = (
            await session.execute(
                select(Enrollment.id, Enrollment.workflow_id)
                .where(
                    Enrollment.status == "pending",
                    Enrollment.workflow_started_at.is_not(None),
                    Enrollment.updated_at < cutoff,
                    Enrollment.workflow_id.is_not(None),
                )
                .order_by(Enrollment.admitted_at)
                .limit(500)
            )
        ).all()
        room = max(0, cfg.max_in_flight - await _in_flight(session))
        fresh_rows = (
            (
                await session.execute(
                    select(Enrollment.id, Enrollment.workflow_id)
                    .where(
                        Enrollment.status == "pending",
                        Enrollment.workflow_started_at.is_(None),
                        Enrollment.updated_at < cutoff,
                        Enrollment.workflow_id.is_not(None),
                    )
                    .order_by(Enrollment.admitted_at)
                    .limit(min(room, 500))
                )
            ).all()
            if room
            else []
        )
        # The request's trace goes on, as from the dispatcher (explore55 F3: after a stalled worker the sweeper got
        # there first, and the request's trace stopped at the API, the workflow and its e-mail in a trace of their own);
        # for a start made again too (one whose first start was lost really starts here).
        swept = [e for e, _ in started_rows] + [e for e, _ in fresh_rows]
        traces = await _admission_traces(session, swept) if swept else {}
        running, _ = await _start_all(starter, [(e, w) for e, w in started_rows], cfg, traces)
        fresh, _ = await _start_all(starter, [(e, w) for e, w in fresh_rows], cfg, traces)
        await _mark_started(session, fresh)
        metrics().started.inc(len(fresh))
    return len(running) + len(fresh)


# --- admission backpressure ---------------------------------------------------------------------------------


@dataclass
class _Reading:
    at: float
    value: int


_admission_readings: dict[int, _Reading] = {}
_refreshing: set[int] = set()


def forget_admission_readings() -> None:
    """Drop the cached backlog readings (tests that change the ceiling)."""
    _admission_readings.clear()


# The gate's count: the pending enrollments on their partial index (one statement, built once).
_PENDING_COUNT = select(func.count()).select_from(Enrollment).where(Enrollment.status == "pending")


async def _backlog_reading(container: Any, now: float) -> _Reading:
    """This process's reading of the admitted-not-active count, re-read when older than the check interval. One
    request per process re-reads it; the others meanwhile go by the last reading (no herd of counts)."""
    key = id(container)
    reading = _admission_readings.get(key)
    if reading is not None and (
        key in _refreshing or now - reading.at <= container.settings.admission_backlog_check_seconds
    ):
        return reading
    _refreshing.add(key)
    try:
        async with container.sessionmaker() as session:
            value = await session.scalar(_PENDING_COUNT)
        reading = _admission_readings[key] = _Reading(now, int(value or 0))
        return reading
    finally:
        _refreshing.discard(key)


async def admission_gate(container: Any) -> None:
    """Refuse a new admission with 503 `overloaded` (Retry-After) while the admitted-not-active backlog is at the
    configured ceiling (SMARTCOURSE_ADMISSION_BACKLOG_LIMIT; 0 = no ceiling). The backlog is read at most once per
    SMARTCOURSE_ADMISSION_BACKLOG_CHECK_SECONDS per process, not on every request."""
    settings = container.settings
    limit = settings.admission_backlog_limit
    if limit <= 0:
        return
    now = time.monotonic()
    reading = await _backlog_reading(container, now)
    if reading.value >= limit:
        retry = max(1, settings.admission_retry_after_seconds)
        raise Unavailable(
            "too many enrollments are waiting to be set up; retry shortly",
            code="overloaded",
            details={"backlog": reading.value, "limit": limit, "retry_after_seconds": retry},
            headers={"Retry-After": str(retry)},
        )
