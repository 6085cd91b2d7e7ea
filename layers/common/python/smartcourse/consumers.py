"""Every event consumer of the platform (`registry()`), and the embedded bus that hands them the relay's events.

A consumer (`event_consumer.Consumer`) applies its effect and records the event id in one transaction.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from opentelemetry.trace import SpanKind, Status, StatusCode

from smartcourse import telemetry
from smartcourse.db import is_transient
from smartcourse.errors import Invalid
from smartcourse.event_consumer import (
    CONSUMER_TIMEOUT_SECONDS,
    BatchFailed,
    Consumer,
    ConsumerTimeout,
    bounded,
    dead_letter,
    is_sample,
)
from smartcourse.event_contracts import validate_event
from smartcourse.services.analytics import CONSUMER as analytics
from smartcourse.services.outbox import Outgoing
from smartcourse.services.recommendations import CONSUMER as recommendations

log = logging.getLogger(__name__)


def registry() -> list[Consumer]:
    """Every consumer of the platform."""
    return [analytics, recommendations]


def _consume_attributes(envelope: dict[str, Any]) -> dict[str, str]:
    return {
        "messaging.system": "in-process",
        "messaging.message.id": str(envelope.get("event_id")),
        "smartcourse.event_type": str(envelope.get("event_type")),
    }


def _meets_contract(envelope: dict[str, Any]) -> bool:
    try:
        validate_event(str(envelope["event_type"]), int(envelope["schema_version"]), envelope)
    except (Invalid, KeyError, TypeError, ValueError):
        return False
    return True


class InProcessPublisher:
    """The embedded event bus: the relay hands each event straight to the consumers, in this process. It bounds each
    consumer's work itself (`event_consumer.CONSUMER_TIMEOUT_SECONDS`; `bounds_itself`: the relay does not cut its
    rounds, whose own bound, `outbox.PUBLISH_TIMEOUT_SECONDS`, is for a broker that does not answer)."""

    bounds_itself = True

    def __init__(
        self, sessionmaker: Any, consumers: list[Consumer], *, consumer_timeout: float = CONSUMER_TIMEOUT_SECONDS
    ) -> None:
        self._sessionmaker = sessionmaker
        self._consumers = consumers
        self._timeout = consumer_timeout

    async def _bounded(self, work: Any) -> Any:
        return await bounded(work, self._timeout)

    async def publish(self, topic: str, key: str, envelope: dict[str, Any]) -> None:
        valid: bool | None = None  # checked against its contract once, for every consumer (not once each)
        for consumer in self._consumers:
            if envelope.get("event_type") not in consumer.effects:
                continue  # nothing to apply (handle would return False): no span, no round trip
            if valid is None:
                valid = _meets_contract(envelope)
            # Inside the relay's publish span: the consumer's effects join the emitting request's trace.
            await self._one(consumer, topic, envelope, valid=valid, parent=None)

    async def publish_batch(self, batch: Sequence[Outgoing]) -> None:
        """A relay round's events, in order: each consumer applies its share in ONE transaction (one claim
        statement, then each effect), as the Kafka runner applies a fetch. If that transaction fails, the consumer
        goes event by event (the way of `publish`), so one poison event is dead-lettered and the others applied.

        Each event's consume span is a child of its own publish span (`Outgoing.parent`), as over Kafka."""
        valid = [False] * len(batch)
        checked = [False] * len(batch)
        for consumer in self._consumers:
            ready: list[Outgoing] = []
            for index, item in enumerate(batch):
                if item.envelope.get("event_type") not in consumer.effects:
                    continue
                if not checked[index]:
                    valid[index], checked[index] = _meets_contract(item.envelope), True
                if valid[index] and not is_sample(item.envelope):
                    ready.append(item)
                else:  # dead-lettered (contract) or skipped (sample) by `handle`, whatever its place
                    await self._one(consumer, item.topic, item.envelope, valid=valid[index], parent=item.parent)
            if len(ready) == 1 or (ready and not await self._together(consumer, ready)):
                for item in ready:
                    await self._one(consumer, item.topic, item.envelope, valid=True, parent=item.parent)

    async def _together(self, consumer: Consumer, ready: list[Outgoing]) -> bool:
        """`ready`'s effects in one transaction; False (nothing kept) if any of it failed."""
        try:
            await self._bounded(
                consumer.apply_batch(
                    self._sessionmaker,
                    [item.envelope for item in ready],
                    span=lambda index: _consume_span(consumer, ready[index].envelope, ready[index].parent),
                )
            )
        except (BatchFailed, ConsumerTimeout) as failed:
            cause = failed.__cause__ or failed
            log.warning(
                "applying %d events together failed (%s: %s); going on event by event",
                len(ready),
                type(cause).__name__,
                cause,
                extra={"consumer": consumer.name},
            )
            return False
        return True

    async def _one(
        self,
        consumer: Consumer,
        topic: str,
        envelope: dict[str, Any],
        *,
        valid: bool,
        parent: dict[str, str] | None,
    ) -> None:
        # The dead letter is written inside the consumer's span, so it keeps the event's trace id: written after the
        # span, it took whatever span was current, none for an event retried alone after its batch failed.
        with _consume_span(consumer, envelope, parent) as span:
            try:
                # An envelope that breaks its contract is checked again by each consumer, which dead-letters it.
                await self._bounded(consumer.handle(self._sessionmaker, envelope, validated=valid))
            except Exception as exc:
                if is_transient(exc):
                    # The database is away (restarting, a connection cut): not the event's fault. Raised to the relay,
                    # which records the failure on the row and sends it again next round; it is not dead-lettered.
                    log.warning(
                        "consumer could not apply the event now; the relay retries it",
                        extra={"consumer": consumer.name, "event_id": envelope.get("event_id")},
                        exc_info=True,
                    )
                    raise
                log.exception(
                    "consumer failed", extra={"consumer": consumer.name, "event_id": envelope.get("event_id")}
                )
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"[:500]))
                await dead_letter(self._sessionmaker, consumer.name, topic, envelope, f"{type(exc).__name__}: {exc}")


def _consume_span(
    consumer: Consumer, envelope: dict[str, Any], parent: dict[str, str] | None
) -> contextlib.AbstractContextManager[Any]:
    """The consumer's span: a child of the current span (`parent` None), else of the span `parent` carries."""
    name, attributes = f"{consumer.name} consume", _consume_attributes(envelope)
    if parent is None:
        return telemetry.tracer().start_as_current_span(name, kind=SpanKind.CONSUMER, attributes=attributes)
    return telemetry.continue_from(parent, name, kind=SpanKind.CONSUMER, attributes=attributes)
