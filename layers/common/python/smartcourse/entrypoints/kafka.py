"""Kafka: the outbox relay's publisher, topic creation, and a consumer runner with retries and a DLQ."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from tenacity import AsyncRetrying, retry_if_not_exception_type, stop_after_attempt, wait_exponential

from smartcourse import telemetry
from smartcourse.adapters.event_codec import Decoded, EventCodec, PoisonMessage, dead_letter_envelope, decode
from smartcourse.db import is_transient
from smartcourse.domain.events import TOPICS
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
from smartcourse.metrics import CONSUMER_LAG
from smartcourse.metrics import EVENTS_CONSUMED as CONSUMED
from smartcourse.services.outbox import Outgoing

log = logging.getLogger(__name__)

TOPIC_ALREADY_EXISTS = 36


def connection_options(settings: Any = None) -> dict[str, Any]:
    """How to reach the brokers (`KAFKA_SECURITY_PROTOCOL`, `KAFKA_SASL_*`): aiokafka's keyword arguments, the same
    for the admin client, the producers and the consumers. PLAINTEXT (the stack's broker) adds nothing."""
    from smartcourse.config import get_settings

    s = settings or get_settings()
    protocol = s.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return {}
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol.endswith("SSL"):
        from aiokafka.helpers import create_ssl_context

        options["ssl_context"] = create_ssl_context()  # the system's CAs (MSK's certificates are public ones)
    if protocol.startswith("SASL"):
        if not (s.kafka_sasl_username and s.kafka_sasl_password):
            raise ValueError(f"KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD")
        options.update(
            sasl_mechanism=s.kafka_sasl_mechanism,
            sasl_plain_username=s.kafka_sasl_username,
            sasl_plain_password=s.kafka_sasl_password,
        )
    return options


def dlq_topic(topic: str) -> str:
    return f"{topic}.dlq"


def consumer_topics(consumer: Consumer) -> list[str]:
    """The (logical) topics carrying the event types a consumer has effects for."""
    return sorted({TOPICS[event_type.split(".", 1)[0]] for event_type in consumer.effects})


async def ensure_topics(
    bootstrap_servers: str, topics: Iterable[str], *, partitions: int = 3, replication_factor: int = 1
) -> None:
    """Create the missing topics (the broker may not auto-create, and never with our partition count)."""
    wanted = sorted(set(topics))
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=15000, **connection_options())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        if not missing:
            return
        response = await admin.create_topics(
            [NewTopic(t, num_partitions=partitions, replication_factor=replication_factor) for t in missing]
        )
        for error in response.topic_errors:
            topic, code = error[0], error[1]
            if code not in (0, TOPIC_ALREADY_EXISTS):  # another process may have created it meanwhile
                raise RuntimeError(f"creating topic {topic} failed with Kafka error {code}: {error[2:]}")
        log.info("created topics %s", ", ".join(missing))
    finally:
        await admin.close()


def _producer(bootstrap_servers: str, client_id: str) -> AIOKafkaProducer:
    # Idempotence + acks=all: a retried send is never duplicated or reordered within a partition.
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        **connection_options(),
    )


class KafkaPublisher:
    """The relay's `Publisher`: one record per outbox event, keyed by aggregate id (per-aggregate order)."""

    def __init__(
        self, *, bootstrap_servers: str, codec: EventCodec, namespace: str = "", client_id: str = "smartcourse-relay"
    ) -> None:
        self._bootstrap = bootstrap_servers
        self._codec = codec
        self._namespace = namespace
        self._producer = _producer(bootstrap_servers, client_id)

    def topic(self, logical: str) -> str:
        return f"{self._namespace}{logical}"

    async def start(self) -> None:
        await ensure_topics(self._bootstrap, (self.topic(t) for t in set(TOPICS.values())))
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def publish(self, topic: str, key: str, envelope: dict[str, Any]) -> None:
        value = await self._codec.encode(envelope)  # raises on a contract violation: nothing invalid is sent
        headers = [
            ("event_type", str(envelope["event_type"]).encode()),
            ("event_id", str(envelope["event_id"]).encode()),
        ]
        telemetry.inject_headers(headers)  # `traceparent`: the consumer continues the relay's span
        await self._producer.send_and_wait(self.topic(topic), value=value, key=key.encode(), headers=headers)

    async def publish_batch(self, batch: Sequence[Outgoing]) -> None:
        """A relay round: every record handed to the producer first, then every ack awaited, so the round costs
        one produce request per partition instead of a round trip per event. The idempotent producer keeps each
        partition's order. Raises if any send failed (the relay then marks none sent: consumers dedupe)."""
        values = [await self._codec.encode(item.envelope) for item in batch]  # a contract violation: none sent
        acks = []
        for item, value in zip(batch, values, strict=True):
            headers = [
                ("event_type", str(item.envelope["event_type"]).encode()),
                ("event_id", str(item.envelope["event_id"]).encode()),
                *((k, v.encode()) for k, v in (item.parent or {}).items()),  # the row's publish span
            ]
            acks.append(
                await self._producer.send(self.topic(item.topic), value=value, key=item.key.encode(), headers=headers)
            )
        await asyncio.gather(*acks)


@dataclass
class RunnerStats:
    """What a runner did with the records it was given (tests and logs read it)."""

    delivered: int = 0
    applied: int = 0
    duplicates: int = 0
    skipped: int = 0
    dead_lettered: int = 0
    together: int = 0  # records applied in a transaction shared with others of their fetch


#: `_applicable`'s answer for a record of an event type the consumer has no effect for.
_SKIP: dict[str, Any] = {}


class _Unhandled(Exception):
    """A record neither applied nor dead-lettered (database or broker down): re-read it, and what follows, later."""

    def __init__(self, record: ConsumerRecord[Any, Any], done: ConsumerRecord[Any, Any] | None) -> None:
        super().__init__(f"offset {record.offset}")
        self.record, self.done = record, done


class KafkaConsumerRunner:
    """Runs one `Consumer` as its own consumer group; an offset is committed only once its effect is stored (once per
    partition and fetch, after its last record).

    Per record: decode and validate (a violation is poison), `consumer.handle` with retries and backoff, and
    on poison or exhausted retries: the DLQ topic `<topic>.dlq` plus the `dead_letters` table, then commit so
    the partition keeps flowing. A crash anywhere before the commit redelivers the record; `handle` dedupes.

    Consecutive valid records of one partition and fetch are applied together, in order, in ONE transaction (one
    claim statement, then each effect, one commit) instead of a transaction each. If that transaction fails, the
    records before the failing one are applied together again, the failing one goes the one-record way (that try
    counted as its first attempt), and the rest continue together; a failure outside any effect (the claim, the
    commit) sends the whole run of records the one-record way.

    Each apply is bounded (`consumer_timeout`, `event_consumer.CONSUMER_TIMEOUT_SECONDS`): a run that takes longer goes
    the one-record way, and a record that does is dead-lettered at once (a retry would take as long), so one slow
    effect does not hold its partition.
    """

    def __init__(
        self,
        consumer: Consumer,
        *,
        sessionmaker: Any,
        bootstrap_servers: str,
        codec: EventCodec,
        namespace: str = "",
        attempts: int = 4,
        backoff: float = 0.2,
        poll_ms: int = 500,
        consumer_timeout: float = CONSUMER_TIMEOUT_SECONDS,
    ) -> None:
        self.consumer = consumer
        self._timeout = consumer_timeout
        self.stats = RunnerStats()
        self._sessionmaker = sessionmaker
        self._bootstrap = bootstrap_servers
        self._codec = codec
        self._namespace = namespace
        self._attempts = attempts
        self._backoff = backoff
        self._poll_ms = poll_ms

    @property
    def group_id(self) -> str:
        return f"{self._namespace}{self.consumer.name}"

    @property
    def topics(self) -> list[str]:
        return [f"{self._namespace}{t}" for t in consumer_topics(self.consumer)]

    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        await ensure_topics(self._bootstrap, [*self.topics, *(dlq_topic(t) for t in self.topics)])
        kafka = AIOKafkaConsumer(
            *self.topics,
            bootstrap_servers=self._bootstrap,
            group_id=self.group_id,
            client_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            **connection_options(),
        )
        dlq = _producer(self._bootstrap, f"{self.group_id}-dlq")
        await dlq.start()
        await kafka.start()
        log.info("consumer started on %s", ", ".join(self.topics), extra={"consumer": self.consumer.name})
        try:
            while not stop.is_set():
                batch = await kafka.getmany(timeout_ms=self._poll_ms, max_records=200)
                for tp, records in batch.items():
                    try:
                        done = await self._process_fetch(records, dlq)
                    except _Unhandled as unhandled:
                        # Not even the DLQ path worked (database or broker down): re-read from there later.
                        log.exception("record not handled; will retry", extra={"consumer": self.consumer.name})
                        await self._commit(kafka, unhandled.done)
                        kafka.seek(tp, unhandled.record.offset)
                        await asyncio.sleep(self._backoff * 5)
                        continue
                    # One commit per partition and fetch, after every effect of it is stored (it was one broker round
                    # trip per record): a crash before it redelivers those records, which `handle` dedupes.
                    await self._commit(kafka, done)
                await self._record_lag(kafka)
        finally:
            # No commit here: whatever was not committed is redelivered to the group.
            with contextlib.suppress(Exception):
                await kafka.stop()
            with contextlib.suppress(Exception):
                await dlq.stop()

    async def _record_lag(self, kafka: AIOKafkaConsumer) -> None:
        """smartcourse_kafka_consumer_lag per assigned partition: the high watermark of the last fetch - position."""
        for tp in kafka.assignment():
            highwater = kafka.highwater(tp)
            if highwater is None:  # nothing fetched from it yet
                continue
            with contextlib.suppress(KafkaError, AssertionError):  # a partition revoked meanwhile
                lag = max(0, highwater - await kafka.position(tp))
                CONSUMER_LAG.labels(self.consumer.name, tp.topic, str(tp.partition)).set(lag)

    async def _commit(self, kafka: AIOKafkaConsumer, record: ConsumerRecord[Any, Any] | None) -> None:
        """Commit the offset after `record` (nothing when None)."""
        if record is None:
            return
        try:
            await kafka.commit({TopicPartition(record.topic, record.partition): record.offset + 1})
        except KafkaError:
            # A rebalance moved the partition: its new owner gets the records again and dedupes.
            log.warning("offset commit failed", exc_info=True, extra={"consumer": self.consumer.name})

    async def _process_fetch(
        self, records: list[ConsumerRecord[Any, Any]], dlq: AIOKafkaProducer
    ) -> ConsumerRecord[Any, Any] | None:
        """Every record of one partition's fetch, in order; returns the last (all handled). Raises `_Unhandled`."""
        done: ConsumerRecord[Any, Any] | None = None
        run: list[tuple[ConsumerRecord[Any, Any], dict[str, Any]]] = []  # consecutive records to apply together
        for record in records:
            envelope = await self._applicable(record)
            if envelope is _SKIP:  # an event type this consumer has no effect for: nothing to apply, the run goes on
                self.stats.delivered += 1
                self.stats.skipped += 1
                CONSUMED.labels(self.consumer.name, "skipped").inc()
                continue
            if envelope is not None:
                run.append((record, envelope))
                continue
            done = await self._apply_run(run, dlq, done)
            run = []
            done = await self._one(record, dlq, done)  # poison, a sample, or the registry unreachable
        await self._apply_run(run, dlq, done)
        # Every record is stored, dead-lettered or skipped: the fetch's last one, even a skipped one (a partition of
        # types this consumer skips must still see its offset committed).
        return records[-1] if records else None

    async def _applicable(self, record: ConsumerRecord[Any, Any]) -> dict[str, Any] | None:
        """The record's envelope if it is valid and this consumer applies it; `_SKIP` if the consumer has no effect
        for its type; None for the one-record way (which decides again and counts, dead-letters or raises as it
        always did)."""
        try:
            decoded = decode(record.value)
            if decoded.event_type not in self.consumer.effects:
                return _SKIP
            if is_sample(decoded.envelope):
                return None
            await self._codec.validate(decoded)
        except Exception:
            return None
        return decoded.envelope

    async def _one(
        self,
        record: ConsumerRecord[Any, Any],
        dlq: AIOKafkaProducer,
        done: ConsumerRecord[Any, Any] | None,
        *,
        attempts: int | None = None,
    ) -> ConsumerRecord[Any, Any]:
        try:
            await self._process(record, dlq, attempts=attempts)
        except Exception as exc:
            raise _Unhandled(record, done) from exc
        return record

    async def _apply_run(
        self,
        run: list[tuple[ConsumerRecord[Any, Any], dict[str, Any]]],
        dlq: AIOKafkaProducer,
        done: ConsumerRecord[Any, Any] | None,
    ) -> ConsumerRecord[Any, Any] | None:
        """Apply `run` together (see the class); returns the last record stored."""
        while run:
            if len(run) == 1:
                return await self._one(run[0][0], dlq, done)
            failed_at = await self._apply_together(run)
            if failed_at is None:
                return run[-1][0]
            if failed_at < 0:  # not an effect's failure: every record the one-record way
                for record, _ in run:
                    done = await self._one(record, dlq, done)
                return done
            done = await self._apply_run(run[:failed_at], dlq, done)
            await asyncio.sleep(self._backoff)  # as between two attempts of the one-record way
            # That transaction was its first attempt (at least one more, alone, to tell its own failure).
            done = await self._one(run[failed_at][0], dlq, done, attempts=max(1, self._attempts - 1))
            run = run[failed_at + 1 :]
        return done

    async def _apply_together(self, run: list[tuple[ConsumerRecord[Any, Any], dict[str, Any]]]) -> int | None:
        """One transaction for the run; None when it committed, else the index of the record whose effect failed
        (-1: the failure was not an effect's)."""
        try:
            applied = await bounded(
                self.consumer.apply_batch(
                    self._sessionmaker, [envelope for _, envelope in run], span=lambda index: self._span(run[index][0])
                ),
                self._timeout,
            )
        except ConsumerTimeout as slow:
            # Which record was slow is not known: each goes the one-record way, with a bound of its own.
            log.warning(
                "applying %d records together %s; going on record by record",
                len(run),
                slow,
                extra={"consumer": self.consumer.name},
            )
            return -1
        except BatchFailed as failed:
            cause = failed.__cause__
            log.warning(
                "applying %d records together failed (%s: %s); going on record by record",
                len(run),
                type(cause).__name__,
                cause,
                extra={"consumer": self.consumer.name},
            )
            return failed.index
        for was_applied in applied:
            self.stats.delivered += 1
            self.stats.together += 1
            if was_applied:
                self.stats.applied += 1
                CONSUMED.labels(self.consumer.name, "applied").inc()
            else:
                self.stats.duplicates += 1
                CONSUMED.labels(self.consumer.name, "duplicate").inc()
        return None

    def _span(self, record: ConsumerRecord[Any, Any]) -> contextlib.AbstractContextManager[trace.Span]:
        """The record's span, continuing the trace its `traceparent` header carries."""
        return telemetry.continue_from(
            record.headers,
            f"{self.consumer.name} consume",
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.consumer.group.name": self.group_id,
                "messaging.destination.name": record.topic,
                "messaging.destination.partition.id": str(record.partition),
                "messaging.kafka.offset": record.offset,
            },
        )

    async def _process(
        self, record: ConsumerRecord[Any, Any], dlq: AIOKafkaProducer, *, attempts: int | None = None
    ) -> None:
        """Handle one record inside its span."""
        with self._span(record):
            await self._process_record(record, dlq, attempts=self._attempts if attempts is None else attempts)

    async def _process_record(self, record: ConsumerRecord[Any, Any], dlq: AIOKafkaProducer, *, attempts: int) -> None:
        self.stats.delivered += 1
        decoded: Decoded | None = None
        try:
            decoded = decode(record.value)
            if decoded.event_type not in self.consumer.effects:
                self.stats.skipped += 1
                CONSUMED.labels(self.consumer.name, "skipped").inc()
                return
            await self._codec.validate(decoded)  # a registry outage raises through: redelivered, not poison
        except PoisonMessage as exc:
            await self._dead_letter(record, dlq, decoded, f"poison: {exc}")
            return
        try:
            applied = await self._handle(decoded.envelope, attempts)
        except Invalid as exc:
            await self._dead_letter(record, dlq, decoded, f"poison: {exc}")
            return
        except ConsumerTimeout as exc:
            await self._dead_letter(record, dlq, decoded, f"ConsumerTimeout: {exc}")
            return
        except Exception as exc:
            if is_transient(exc):  # the database is away, not the record's fault: redelivered later, not poison
                raise
            await self._dead_letter(record, dlq, decoded, f"failed {self._attempts} times: {type(exc).__name__}: {exc}")
            return
        if applied:
            self.stats.applied += 1
            CONSUMED.labels(self.consumer.name, "applied").inc()
        else:
            self.stats.duplicates += 1
            CONSUMED.labels(self.consumer.name, "duplicate").inc()

    async def _handle(self, envelope: dict[str, Any], attempts: int) -> bool:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(attempts),
            wait=wait_exponential(multiplier=self._backoff, max=5),
            # A contract violation will not get better; an effect cut off after its bound would take as long again
            # (four tries held the partition four times as long).
            retry=retry_if_not_exception_type((Invalid, ConsumerTimeout)),
            reraise=True,
        )
        applied = False
        async for attempt in retrying:
            with attempt:
                # Checked against its contract in `_process_record` (EventCodec.validate): not again per attempt.
                applied = await bounded(
                    self.consumer.handle(self._sessionmaker, envelope, validated=True), self._timeout
                )
        return applied

    async def _dead_letter(
        self, record: ConsumerRecord[Any, Any], dlq: AIOKafkaProducer, decoded: Decoded | None, error: str
    ) -> None:
        log.warning("dead-lettering record: %s", error, extra={"consumer": self.consumer.name})
        trace.get_current_span().set_status(trace.Status(trace.StatusCode.ERROR, error[:500]))
        headers = [
            ("error", error[:1000].encode()),
            ("consumer", self.consumer.name.encode()),
            ("original_topic", record.topic.encode()),
            ("original_partition", str(record.partition).encode()),
            ("original_offset", str(record.offset).encode()),
        ]
        await dlq.send_and_wait(dlq_topic(record.topic), value=record.value, key=record.key, headers=headers)
        envelope = dead_letter_envelope(
            record.value, topic=record.topic, partition=record.partition, offset=record.offset, decoded=decoded
        )
        await dead_letter(self._sessionmaker, self.consumer.name, record.topic, envelope, error)
        self.stats.dead_lettered += 1
        CONSUMED.labels(self.consumer.name, "dead_lettered").inc()
