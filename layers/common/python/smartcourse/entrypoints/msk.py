"""A `Consumer` as a Lambda behind an MSK (or self-managed Kafka) event source mapping, with partial batch failures."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import Callable
from typing import Any

from opentelemetry.trace import SpanKind
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from smartcourse import telemetry
from smartcourse.adapters.event_codec import Decoded, EventCodec, PoisonMessage, dead_letter_envelope, decode
from smartcourse.adapters.schema_registry import SchemaRegistry
from smartcourse.bootstrap import build_container
from smartcourse.config import get_settings
from smartcourse.db import is_transient
from smartcourse.errors import Invalid
from smartcourse.event_consumer import BatchFailed, Consumer, dead_letter, is_sample

log = logging.getLogger(__name__)

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def _failure(record: dict[str, Any]) -> dict[str, Any]:
    # The identifier Lambda expects for Kafka: "<topic>-<partition>" plus the offset.
    return {"itemIdentifier": {"partition": f"{record['topic']}-{record['partition']}", "offset": record["offset"]}}


async def process_msk_event(
    consumer: Consumer, event: dict[str, Any], *, sessionmaker: Any, codec: EventCodec | None = None
) -> dict[str, Any]:
    """Apply every record of an MSK event; returns the records Lambda must retry (`batchItemFailures`).

    Poison records (not an envelope, or breaking their contract) go to `dead_letters` and count as handled:
    retrying them would block their partition forever. A record that fails otherwise is reported, and so is
    everything after it in its partition, so per-aggregate order survives the retry (effects dedupe).

    A partition's valid records are applied in ONE transaction (one claim statement, each effect, one commit), as
    the Kafka runner applies a fetch; if that transaction fails, they are applied one transaction each, so the
    records before the failing one are kept and it and the rest are reported."""
    codec = codec or EventCodec()
    failures: list[dict[str, Any]] = []
    for records in (event.get("records") or {}).values():
        ordered = sorted(records, key=lambda r: int(r["offset"]))
        ready: list[tuple[dict[str, Any], Decoded]] = []
        failed_at: int | None = None
        for i, record in enumerate(ordered):
            try:
                decoded = await _checked(consumer, record, sessionmaker=sessionmaker, codec=codec)
            except Exception:
                log.exception("record failed; Lambda will retry it", extra={"consumer": consumer.name})
                failed_at = i
                break
            if decoded is not None:
                ready.append((record, decoded))
        failed = await _apply_all(consumer, ready, sessionmaker=sessionmaker)
        if failed is not None:  # that record and everything after it in the partition are retried
            failed_at = next(i for i, record in enumerate(ordered) if record is failed)
        if failed_at is not None:
            failures.extend(_failure(record) for record in ordered[failed_at:])
    return {"batchItemFailures": failures}


def msk_headers(record: dict[str, Any]) -> dict[str, str]:
    """An MSK record's headers (`[{"key": [byte, ...]}, ...]`) as text: where its `traceparent` is."""
    out: dict[str, str] = {}
    for header in record.get("headers") or []:
        if isinstance(header, dict):
            for key, value in header.items():
                try:
                    out[str(key).lower()] = bytes(value).decode("utf-8", "replace")
                except (TypeError, ValueError):
                    continue
    return out


def _span(consumer: Consumer, record: dict[str, Any]) -> Any:
    """The record's span, continuing the trace its `traceparent` header carries (the relay's publish)."""
    return telemetry.continue_from(
        msk_headers(record),
        f"{consumer.name} consume",
        kind=SpanKind.CONSUMER,
        attributes={"messaging.system": "kafka", "messaging.destination.name": str(record.get("topic"))},
    )


async def _checked(
    consumer: Consumer, record: dict[str, Any], *, sessionmaker: Any, codec: EventCodec
) -> Decoded | None:
    """The record decoded and checked against its contract, or None when there is nothing to apply: a type the
    consumer has no effect for, a sample, or poison (then dead-lettered here). Raises what is not the record's
    fault (a registry outage): the record is retried."""
    decoded: Decoded | None = None
    try:
        value = _value(record)
        if value is None:
            raise PoisonMessage("value is not base64")
        decoded = decode(value)
        if decoded.event_type not in consumer.effects:
            return None
        await codec.validate(decoded)
        return None if is_sample(decoded.envelope) else decoded
    except (PoisonMessage, Invalid) as exc:
        with _span(consumer, record):
            await _dead_letter(consumer, record, decoded, f"poison: {exc}", sessionmaker=sessionmaker)
        return None


async def _apply_all(
    consumer: Consumer, ready: list[tuple[dict[str, Any], Decoded]], *, sessionmaker: Any
) -> dict[str, Any] | None:
    """Apply a partition's checked records in order; returns the record that failed (None: all applied)."""
    if not ready:
        return None
    try:
        await consumer.apply_batch(
            sessionmaker,
            [decoded.envelope for _, decoded in ready],
            span=lambda index: _span(consumer, ready[index][0]),
        )
        return None
    except BatchFailed:
        log.warning("a batch of %d records failed; applying them one by one", len(ready), exc_info=True)
    for record, decoded in ready:  # one transaction each: the records before the failing one are kept
        with _span(consumer, record):
            try:
                await _handle(consumer, decoded, sessionmaker=sessionmaker)
            except Exception as exc:
                if is_transient(exc):  # the database away: not the record's fault, Lambda redelivers it
                    log.exception("record failed; Lambda will retry it", extra={"consumer": consumer.name})
                    return record
                # A record whose effect fails for good (a schema-valid "yesterday" for a date-time): as the Kafka
                # runner does, kept in dead_letters and the partition goes on. Reported instead, it was retried by
                # the event source for ever (its default), holding back every record behind it (explore33 F1).
                error = f"poison: {exc}" if isinstance(exc, Invalid) else f"failed {ATTEMPTS} times: {_named(exc)}"
                await _dead_letter(consumer, record, decoded, error, sessionmaker=sessionmaker)
    return None


#: How many times a record's effect is tried in one invocation before it is dead-lettered (the Kafka runner's 4).
ATTEMPTS = 4


def _named(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


async def _handle(consumer: Consumer, decoded: Decoded, *, sessionmaker: Any) -> None:
    """The record's effect, tried ATTEMPTS times (not for a contract violation, nor the database away: those are
    decided at once)."""
    retrying = AsyncRetrying(
        stop=stop_after_attempt(ATTEMPTS),
        wait=wait_exponential(multiplier=0.05, max=1),
        retry=retry_if_exception(lambda exc: not isinstance(exc, Invalid) and not is_transient(exc)),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            await consumer.handle(sessionmaker, decoded.envelope, validated=True)  # checked by _checked


async def _dead_letter(
    consumer: Consumer, record: dict[str, Any], decoded: Decoded | None, error: str, *, sessionmaker: Any
) -> None:
    """Keep a record in dead_letters, said in the log as the Kafka runner says it (explore33 F7: the function kept
    poison records without a line)."""
    log.warning("dead-lettering record: %s", error, extra={"consumer": consumer.name})
    topic, partition, offset = str(record["topic"]), int(record["partition"]), int(record["offset"])
    value = _value(record)
    envelope = dead_letter_envelope(value, topic=topic, partition=partition, offset=offset, decoded=decoded)
    await dead_letter(sessionmaker, consumer.name, topic, envelope, error)


def _value(record: dict[str, Any]) -> bytes | None:
    try:
        return base64.b64decode(record.get("value") or "", validate=True)
    except (binascii.Error, ValueError):
        return None


def msk_handler(consumer: Consumer) -> LambdaHandler:
    """`handler(event, context)` for a function whose trigger is a Kafka topic (enable ReportBatchItemFailures)."""

    telemetry.configure_telemetry(f"lambda-{consumer.name}")  # once per cold start

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        try:
            return asyncio.run(_invoke(consumer, event))
        finally:
            # Before Lambda freezes the process (a no-op without an exporter), bounded: docs/operations.md.
            telemetry.force_flush(telemetry.LAMBDA_FLUSH_MILLIS)

    return handler


async def _invoke(consumer: Consumer, event: dict[str, Any]) -> dict[str, Any]:
    # A container per invocation, closed after it: each call runs its own event loop (as Mangum does).
    container = build_container(get_settings())
    # The same subjects as the relay writes (`<events_namespace>.<event type>`): without the prefix, a
    # namespaced deployment looked its schemas up under subjects nobody registered.
    settings = container.settings
    registry = (
        SchemaRegistry(settings.schema_registry_url, subject_prefix=settings.events_namespace)
        if settings.schema_registry_url
        else None
    )
    try:
        return await process_msk_event(consumer, event, sessionmaker=container.sessionmaker, codec=EventCodec(registry))
    finally:
        if registry is not None:
            await registry.aclose()
        await container.aclose()
