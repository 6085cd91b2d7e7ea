"""Every event consumer of the platform (`registry()`), and the embedded bus that hands them the relay's events.

A consumer (`event_consumer.Consumer`) applies its effect and records the event id in one transaction.
"""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry.trace import SpanKind

from smartcourse import telemetry
from smartcourse.errors import Invalid
from smartcourse.event_consumer import Consumer, dead_letter
from smartcourse.event_contracts import validate_event
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


def _meets_contract(envelope: dict[str, Any]) -> bool:
    try:
        validate_event(str(envelope["event_type"]), int(envelope["schema_version"]), envelope)
    except (Invalid, KeyError, TypeError, ValueError):
        return False
    return True


class InProcessPublisher:
    """The embedded event bus: the relay hands each event straight to the consumers, in this process."""

    def __init__(self, sessionmaker: Any, consumers: list[Consumer]) -> None:
        self._sessionmaker = sessionmaker
        self._consumers = consumers

    async def publish(self, topic: str, key: str, envelope: dict[str, Any]) -> None:
        valid: bool | None = None  # checked against its contract once, for every consumer (not once each)
        for consumer in self._consumers:
            if envelope.get("event_type") not in consumer.effects:
                continue  # nothing to apply (handle would return False): no span, no round trip
            if valid is None:
                valid = _meets_contract(envelope)
            try:
                # Inside the relay's publish span: the consumer's effects join the emitting request's trace.
                with telemetry.tracer().start_as_current_span(
                    f"{consumer.name} consume", kind=SpanKind.CONSUMER, attributes=_consume_attributes(envelope)
                ):
                    # An envelope that breaks its contract is checked again by each consumer, which dead-letters it.
                    await consumer.handle(self._sessionmaker, envelope, validated=valid)
            except Exception as exc:
                log.exception(
                    "consumer failed", extra={"consumer": consumer.name, "event_id": envelope.get("event_id")}
                )
                await dead_letter(self._sessionmaker, consumer.name, topic, envelope, f"{type(exc).__name__}: {exc}")
