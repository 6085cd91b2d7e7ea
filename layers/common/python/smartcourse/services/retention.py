"""Retention of the rows that only pile up: run by the worker's sweeper (every hour), in bounded batches.

- `outbox`: an event the relay published (and the dispatcher handled, if an admission) more than
  `OUTBOX_RETENTION_DAYS` ago; Kafka keeps its copy for the topic's own retention, the relay never reads it again.
- `processed_events`: a consumer's dedupe record older than `PROCESSED_EVENTS_RETENTION_DAYS`: longer than any
  redelivery can come (the relay sends an event until it is published, Kafka redelivers within its retention, a
  dead letter keeps its own record of a replay).
- `analytics_counters` of `student_active_days` older than the active-students window (nothing reads them).
- `idempotent_requests`: a creating request's `Idempotency-Key` older than `IDEMPOTENCY_KEY_HOURS` (api/idempotency.py:
  the key may then name a new request).

What stays, being history a person reads: enrollments and their history, notifications, certificates, workflow runs
and dead letters (docs/operations.md "Retention")."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, text, tuple_

from smartcourse.models import (
    OUTBOX_DISPATCH_QUEUE,
    AnalyticsCounter,
    IdempotentRequest,
    OutboxEvent,
    ProcessedEvent,
)

log = logging.getLogger(__name__)

#: Rows one statement deletes; a table keeps being trimmed until a batch comes back short (or `MAX_BATCHES`).
BATCH = 5_000
MAX_BATCHES = 20
#: The days of `student_active_days` the active-students metric reads (services/analytics.ACTIVE_DAYS), plus one for
#: a clock on either side of midnight.
ACTIVE_DAYS_KEPT = 31


@dataclass
class Purged:
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.rows.values())


async def purge(container: Any, *, now: datetime | None = None) -> Purged:
    """One pass over every table with a retention; what it deleted per table."""
    now = now or datetime.now(UTC)
    settings = container.settings
    outbox_cutoff = now - timedelta(days=settings.outbox_retention_days)
    processed_cutoff = now - timedelta(days=settings.processed_events_retention_days)
    first_day_kept = (now - timedelta(days=ACTIVE_DAYS_KEPT)).date().isoformat()
    keys_cutoff = now - timedelta(hours=settings.idempotency_key_hours)
    statements = {
        "outbox": delete(OutboxEvent).where(
            OutboxEvent.id.in_(
                select(OutboxEvent.id)
                .where(
                    OutboxEvent.published_at.is_not(None),
                    OutboxEvent.occurred_at < outbox_cutoff,
                    text(f"not coalesce({OUTBOX_DISPATCH_QUEUE}, false)"),
                )
                .limit(BATCH)
            )
        ),
        "processed_events": delete(ProcessedEvent).where(
            tuple_(ProcessedEvent.consumer, ProcessedEvent.event_id).in_(
                select(ProcessedEvent.consumer, ProcessedEvent.event_id)
                .where(ProcessedEvent.processed_at < processed_cutoff)
                .limit(BATCH)
            )
        ),
        "analytics_counters": delete(AnalyticsCounter).where(
            tuple_(AnalyticsCounter.metric, AnalyticsCounter.bucket).in_(
                select(AnalyticsCounter.metric, AnalyticsCounter.bucket)
                .where(AnalyticsCounter.metric == "student_active_days", AnalyticsCounter.bucket < first_day_kept)
                .limit(BATCH)
            )
        ),
        "idempotent_requests": delete(IdempotentRequest).where(
            tuple_(IdempotentRequest.principal_id, IdempotentRequest.key).in_(
                select(IdempotentRequest.principal_id, IdempotentRequest.key)
                .where(IdempotentRequest.created_at < keys_cutoff)
                .limit(BATCH)
            )
        ),
    }
    purged = Purged()
    for table, statement in statements.items():
        purged.rows[table] = 0
        for _ in range(MAX_BATCHES):
            async with container.uow() as uow:
                result = await uow.session.execute(statement)
                await uow.commit()
            deleted = int(getattr(result, "rowcount", 0) or 0)
            purged.rows[table] += deleted
            if deleted < BATCH:
                break
    if purged.total:
        log.info("retention: deleted %s", ", ".join(f"{n} {t}" for t, n in purged.rows.items() if n))
    return purged
