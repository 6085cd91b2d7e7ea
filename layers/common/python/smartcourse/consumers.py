"""Every event consumer of the platform (`registry()`), and the embedded bus that hands them the relay's events.

A consumer (`event_consumer.Consumer`) applies its effect and records the event id in one transaction.
"""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry.trace import SpanKind

from smartcourse import telemetry
from smartcourse.event_consumer import Consumer, dead_letter
from smartcourse.services.analytics import CONSUMER as analytics
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


class InProcessPublisher:
    """The embedded event bus: the relay hands each event straight to the consumers, in this process."""

    def __init__(self, sessionmaker: Any, consumers: list[Consumer]) -> None:
        self._sessionmaker = sessionmaker
        self._consumers = consumers

    async def publish(self, topic: str, key: str, envelope: dict[str, Any]) -> None:
        for consumer in self._consumers:
            if envelope.get("event_type") not in consumer.effects:
                continue  # nothing to apply (handle would return False): no span, no round trip
            try:
                # Inside the relay's publish span: the consumer's effects join the emitting request's trace.
                with telemetry.tracer().start_as_current_span(
                    f"{consumer.name} consume", kind=SpanKind.CONSUMER, attributes=_consume_attributes(envelope)
                ):
                    await consumer.handle(self._sessionmaker, envelope)
            except Exception as exc:
                log.exception(
                    "consumer failed", extra={"consumer": consumer.name, "event_id": envelope.get("event_id")}
                )
                await dead_letter(self._sessionmaker, consumer.name, topic, envelope, f"{type(exc).__name__}: {exc}")
