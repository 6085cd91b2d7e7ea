"""One event consumer: its effects applied once per event id, and the dead letter of an event it cannot apply.

Imports no service, so a service can declare its consumer here and `consumers.registry()` can list them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from opentelemetry import trace
from sqlalchemy import String, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncSession

from smartcourse.event_contracts import validate_event
from smartcourse.faults import fail_point
from smartcourse.metrics import DEAD_LETTERS
from smartcourse.models import DeadLetter, ProcessedEvent

Effect = Callable[[AsyncSession, dict[str, Any]], Awaitable[None]]
T = TypeVar("T")


Flush = Callable[[AsyncSession, dict[str, Any]], Awaitable[None]]
_DEFERRED = "smartcourse.deferred_effects"
SpanOf = Callable[[int], contextlib.AbstractContextManager[Any]]


#: How long one consumer may take to apply a batch of events together, or one event alone, on the embedded bus
#: (`consumers.InProcessPublisher`) and over Kafka (`entrypoints.kafka.KafkaConsumerRunner`). One that takes longer is
#: cut off: a batch goes on event by event, an event is dead-lettered for that consumer (replayable), and the bus or
#: the partition goes on. Unbounded, one slow effect held every event behind it (explore57 F2: one consumer's 74 s
#: query stalled the embedded bus for 6 minutes; over Kafka it held its partition, retried four times).
CONSUMER_TIMEOUT_SECONDS = 30.0


class ConsumerTimeout(Exception):
    """A consumer took longer than its bound to apply an event (not transient: the same work would take as long)."""


async def bounded(work: Awaitable[T], timeout: float) -> T:
    """`work`, cut off after `timeout` seconds (`ConsumerTimeout`, not chained to the `TimeoutError`, which
    `db.is_transient` would read as the database being away)."""
    try:
        return await asyncio.wait_for(work, timeout)
    except TimeoutError:
        raise ConsumerTimeout(
            f"took over {timeout:g} s and was cut off (a slow query or a hung call: its log and trace say where); "
            "replay it once that is fixed"
        ) from None


class BatchFailed(Exception):
    """`Consumer.apply_batch` kept nothing. `index`: the event whose effect raised; -1 when what failed was not an
    effect (the claim, the flush, the commit, the connection). The original error is `__cause__`."""

    def __init__(self, index: int) -> None:
        super().__init__(f"a batch of events failed at index {index}")
        self.index = index


def deferred(session: AsyncSession) -> dict[str, Any] | None:
    """Inside `Consumer.together`, where an effect may leave an additive write (a counter's increment) to be
    written once for all the transaction's events; None when each effect must write at once."""
    found = session.info.get(_DEFERRED)
    return found if isinstance(found, dict) else None


#: `Consumer.claim`: one statement of one shape whatever the number of events (their ids as one array parameter).
#: It was a multi-row VALUES list, a new statement text for every batch size: SQLAlchemy compiled it afresh (a bound
#: parameter and a cast per row) and asyncpg prepared it again; that compiling was a quarter of the enrollment
#: worker's busy CPU in a profile of the drain (docs/benchmarks.md, "Eighth pass").
_PROCESSED = ProcessedEvent.__table__  # Core, not the ORM's bulk insert: a plain statement, compiled once
_CLAIM = (
    insert(_PROCESSED)
    .from_select(
        ["consumer", "event_id"],
        select(
            bindparam("consumer", type_=String),
            func.unnest(bindparam("event_ids", type_=ARRAY(PG_UUID(as_uuid=True)))),
        ),
    )
    .on_conflict_do_nothing()
    .returning(_PROCESSED.c.event_id)
)


@dataclass(frozen=True)
class Consumer:
    """A named group of handlers; `effects` maps event type to the function applying it; `flush` writes what the
    effects deferred (see `together`), and is needed only by a consumer whose effects defer."""

    name: str
    effects: dict[str, Effect]
    flush: Flush | None = None

    @contextlib.asynccontextmanager
    async def together(self, session: AsyncSession) -> AsyncIterator[None]:
        """Several events applied in one transaction (a relay round, a Kafka fetch, a Lambda batch): effects may
        add their counters up in `deferred(session)` instead of a statement each, written by `flush` once when the
        block ends without error (so N admissions move a counter by N in one statement, not N statements)."""
        session.info[_DEFERRED] = {}
        try:
            yield
            if self.flush is not None:
                await self.flush(session, session.info[_DEFERRED])
        finally:
            session.info.pop(_DEFERRED, None)

    async def handle(self, sessionmaker: Any, envelope: dict[str, Any], *, validated: bool = False) -> bool:
        """Apply one event once. Returns False if it was already processed (a redelivery).

        `validated`: the caller already checked the envelope against its contract (the Kafka and MSK paths do, in
        `EventCodec.validate`, with the registry's schema), so it is not checked a second time here."""
        event_type = envelope["event_type"]
        effect = self.effects.get(event_type)
        if effect is None:
            return False
        if not validated:
            validate_event(event_type, int(envelope["schema_version"]), envelope)
        if is_sample(envelope):
            # A hand-invoked sample (`smartcourse invoke ... --event events/samples/...`): decoded and checked
            # against its contract, never applied, so it cannot skew live state (docs/analytics.md).
            return False
        event_id = uuid.UUID(envelope["event_id"])
        async with sessionmaker() as session, session.begin():
            if not await self.claim(session, [event_id]):
                return False
            await self.apply(session, envelope)
        return True

    async def apply_batch(self, sessionmaker: Any, envelopes: Sequence[dict[str, Any]], *, span: SpanOf) -> list[bool]:
        """Several events in ONE transaction, in order (a relay round, a Kafka fetch, a Lambda batch): one `claim`
        statement, then the effect of each event not processed before, inside `span(index)` (the caller's consume
        span for that event), with the counters added up and written once (`together`). Each envelope already met
        its contract and is no sample. An id given twice is applied once.

        Returns, per envelope, whether it was applied (False: processed before, or earlier in the batch). Raises
        `BatchFailed` (nothing kept) if any of it failed: the caller then goes event by event, so a poison event
        is dead-lettered alone."""
        applied: list[bool] = []
        failed_at = -1
        try:
            async with sessionmaker() as session, session.begin():
                fresh = await self.claim(session, [uuid.UUID(envelope["event_id"]) for envelope in envelopes])
                async with self.together(session):
                    for index, envelope in enumerate(envelopes):
                        event_id = uuid.UUID(envelope["event_id"])
                        if event_id not in fresh:
                            applied.append(False)
                            continue
                        fresh.discard(event_id)
                        failed_at = index
                        with span(index):
                            await self.apply(session, envelope)
                        failed_at = -1
                        applied.append(True)
        except Exception as exc:
            raise BatchFailed(failed_at) from exc
        return applied

    async def claim(self, session: AsyncSession, event_ids: list[uuid.UUID]) -> set[uuid.UUID]:
        """Record the events as processed by this consumer in the caller's transaction (one statement for all);
        returns the ids that were not processed before, whose effects the caller applies in the same transaction.
        An id given twice is claimed once."""
        claimed = await session.execute(_CLAIM, {"consumer": self.name, "event_ids": event_ids})
        return {row[0] for row in claimed}

    async def apply(self, session: AsyncSession, envelope: dict[str, Any]) -> None:
        """The event's effect, in the caller's transaction (after `claim`; the envelope meets its contract)."""
        await fail_point(f"consume.{self.name}", envelope["event_type"])  # test-only fault injection (poison)
        await self.effects[envelope["event_type"]](session, envelope)


def is_sample(envelope: dict[str, Any]) -> bool:
    """Sample events (events/samples/) say so in their data: `"sample": true`."""
    data = envelope.get("data")
    return isinstance(data, dict) and data.get("sample") is True


def _trace_id() -> str:
    """The current span's trace id (032x), "" without tracing: kept with the dead letter (GET /ops/dead-letters)."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.trace_id else ""


async def dead_letter(sessionmaker: Any, consumer: str, topic: str, envelope: dict[str, Any], error: str) -> None:
    """Keep a poison event with its error; replaying it is an admin action (POST /ops/dead-letters/{id}/replay)."""
    async with sessionmaker() as session, session.begin():
        stored = await session.execute(
            insert(DeadLetter)
            .values(
                consumer=consumer,
                event_id=uuid.UUID(str(envelope.get("event_id", uuid.uuid4()))),
                topic=topic,
                payload=envelope,
                error=error[:4000].replace("\x00", "\\0"),  # text refuses NUL; an error may quote the record
                trace_id=_trace_id(),
            )
            .on_conflict_do_nothing()
        )
    if stored.rowcount:  # not again for a redelivered copy of the same event
        DEAD_LETTERS.labels(consumer).inc()
