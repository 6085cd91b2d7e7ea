"""Outbox → relay → Kafka → consumers on the real broker and schema registry: crashes, redelivery, poison, DLQ."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import struct
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from sqlalchemy import select, text

from smartcourse.adapters.event_codec import EventCodec, encode_wire
from smartcourse.adapters.schema_registry import SchemaRegistry
from smartcourse.domain.events import DomainEvent
from smartcourse.entrypoints.kafka import KafkaConsumerRunner, KafkaPublisher, dlq_topic
from smartcourse.errors import Invalid
from smartcourse.event_consumer import Consumer
from smartcourse.models import DeadLetter, OutboxEvent
from smartcourse.services.outbox import relay_once, run_relay
from tests.conftest import REPO
from tests.engines import require_engine
from tests.integration.kafka_kit import (
    EventsDb,
    committed_offsets,
    count_effect,
    create_events_db,
    drop_events_db,
    read_topic,
    topic_size,
    wait_until,
)

pytestmark = [pytest.mark.engines, pytest.mark.timeout(60)]

USERS, COURSES = "smartcourse.users", "smartcourse.courses"


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def kafka() -> str:
    return require_engine("kafka")


@pytest.fixture
def registry_url() -> str:
    require_engine("schema_registry")
    # The stack's URL includes Apicurio's ccompat path; a bare server URL is resolved by the client too.
    return os.environ.get("SCHEMA_REGISTRY_URL") or require_engine("schema_registry")


@pytest.fixture
def ns() -> str:
    """This test's namespace: its own topics, consumer groups and registry subjects."""
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture
async def db(settings: Any) -> AsyncIterator[EventsDb]:
    events_db = await create_events_db(settings.database_url)
    yield events_db
    await drop_events_db(settings.database_url, events_db)


@pytest.fixture
async def codec(registry_url: str, ns: str) -> AsyncIterator[EventCodec]:
    registry = SchemaRegistry(registry_url, subject_prefix=ns)
    await registry.register_all()
    yield EventCodec(registry)
    await registry.aclose()


def _consumer(*event_types: str, effect: Any = count_effect) -> Consumer:
    return Consumer(f"test-consumer-{uuid.uuid4().hex[:8]}", dict.fromkeys(event_types, effect))


def _user(user_id: str | None = None, **extra: Any) -> DomainEvent:
    user_id = user_id or str(uuid.uuid4())
    return DomainEvent("user.registered", user_id, {"user_id": user_id, "role": "student", **extra})


def _archived() -> DomainEvent:
    course_id = str(uuid.uuid4())
    return DomainEvent("course.archived", course_id, {"course_id": course_id, "was_live": True})


class Background:
    """Tasks started by a test, stopped (and awaited, bounded) when it ends."""

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.tasks: list[asyncio.Task[Any]] = []

    def start(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self.tasks.append(task)
        return task

    async def close(self) -> None:
        self.stop.set()
        done, pending = await asyncio.wait(self.tasks, timeout=10) if self.tasks else (set(), set())
        for task in pending:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]


@pytest.fixture
async def background() -> AsyncIterator[Background]:
    bg = Background()
    yield bg
    await bg.close()


def _exploding(attempts: list[str]) -> Any:
    """The test effect, failing (and noting the attempt) for users named "explode"."""

    async def effect(session: Any, envelope: dict[str, Any]) -> None:
        if envelope["data"].get("full_name") == "explode":
            attempts.append(envelope["event_id"])
            raise RuntimeError("the search index is down")
        await count_effect(session, envelope)

    return effect


def _runner(consumer: Consumer, db: EventsDb, kafka: str, codec: EventCodec, ns: str, **kw: Any) -> KafkaConsumerRunner:
    return KafkaConsumerRunner(
        consumer, sessionmaker=db.sessionmaker, bootstrap_servers=kafka, codec=codec, namespace=ns, backoff=0.05, **kw
    )


async def _publisher(kafka: str, codec: EventCodec, ns: str) -> KafkaPublisher:
    publisher = KafkaPublisher(bootstrap_servers=kafka, codec=codec, namespace=ns)
    await publisher.start()
    return publisher


async def _unpublished(db: EventsDb) -> int:
    return int(await db.scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL"))


# --- end to end -------------------------------------------------------------------------------


async def test_outbox_to_kafka_to_consumer_applies_each_effect_once(
    db: EventsDb, kafka: str, codec: EventCodec, ns: str, background: Background
) -> None:
    user_id = str(uuid.uuid4())
    ids = await db.emit(_user(user_id), _archived(), _archived())
    ids += await db.emit(_user(), _user(user_id, full_name="Ada"))  # two events of one aggregate: ordered
    publisher = await _publisher(kafka, codec, ns)
    runner = _runner(_consumer("user.registered", "course.archived"), db, kafka, codec, ns)
    background.start(run_relay(db.sessionmaker, publisher, stop=background.stop, idle_sleep=0.1))
    background.start(runner.run(background.stop))

    effects = await wait_until(lambda: _all_applied(db, ids), what="every effect")
    assert effects == dict.fromkeys(ids, 1)
    assert await _unpublished(db) == 0
    assert (runner.stats.applied, runner.stats.duplicates, runner.stats.dead_lettered) == (5, 0, 0)
    await wait_until(lambda: _committed_total(kafka, runner.group_id, 5), what="offsets committed")

    # On the wire: Confluent framing with the registered schema id, keyed by aggregate id.
    assert codec.registry is not None
    schema_id = await codec.registry.schema_id("user.registered", 1)
    records = await read_topic(kafka, ns + USERS, count=3)
    for record in records:
        assert record.value[0] == 0
        assert struct.unpack(">I", record.value[1:5]) == (schema_id,)
        envelope = json.loads(record.value[5:])
        assert record.key == envelope["aggregate_id"].encode()
    same_aggregate = [r for r in records if r.key == user_id.encode()]
    assert len({r.partition for r in same_aggregate}) == 1
    assert [json.loads(r.value[5:])["event_id"] for r in same_aggregate] == [ids[0], ids[4]]
    await publisher.stop()


async def _all_applied(db: EventsDb, ids: list[str]) -> dict[str, int] | None:
    effects = await db.effects()
    return effects if set(effects) >= set(ids) else None


async def _committed_total(kafka: str, group: str, expected: int) -> bool:
    return sum((await committed_offsets(kafka, group)).values()) == expected


# --- the relay killed between producing and committing ----------------------------------------

HOLD_LOCK = 7_351_643


async def test_relay_killed_mid_batch_republishes_and_effects_stay_exactly_once(
    db: EventsDb, kafka: str, registry_url: str, codec: EventCodec, ns: str, background: Background
) -> None:
    # Hold the relay's commit: marking a row sent waits on an advisory lock this test owns, so the relay
    # process is frozen after Kafka acknowledged the whole batch and before the outbox commit.
    async with db.engine.begin() as conn:
        await conn.execute(
            text(
                "CREATE FUNCTION hold_outbox() RETURNS trigger AS $$ BEGIN "
                f"PERFORM pg_advisory_xact_lock({HOLD_LOCK}); RETURN NEW; END $$ LANGUAGE plpgsql"
            )
        )
        await conn.execute(
            text("CREATE TRIGGER hold BEFORE UPDATE ON outbox FOR EACH ROW EXECUTE FUNCTION hold_outbox()")
        )
    lock = await db.engine.connect()
    await lock.execute(text(f"SELECT pg_advisory_lock({HOLD_LOCK})"))

    n = 12
    ids = await db.emit(*(_user() for _ in range(n)))
    runner = _runner(_consumer("user.registered"), db, kafka, codec, ns)
    background.start(runner.run(background.stop))
    env = {
        **os.environ,
        "DATABASE_URL": db.url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka,
        "SCHEMA_REGISTRY_URL": registry_url,
        "EVENTS_NAMESPACE": ns,
    }
    relay = _spawn_relay(env)
    try:
        await wait_until(lambda: _has(topic_size(kafka, ns + USERS), n), timeout=30, what="the batch in Kafka")
        await wait_until(lambda: _blocked_backends(db), what="the relay stuck in its commit")
        relay.send_signal(signal.SIGKILL)
        assert relay.wait(timeout=10) == -signal.SIGKILL
    finally:
        if relay.poll() is None:
            relay.kill()
    assert await _unpublished(db) == n  # every event is in Kafka, none is marked sent

    # The dead relay's transaction dies with its connection; the lock holder steps aside.
    await db.scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event = 'advisory'"
    )
    await wait_until(lambda: _not(_blocked_backends(db)), what="the orphaned transaction to end")
    await lock.execute(text(f"SELECT pg_advisory_unlock({HOLD_LOCK})"))
    await lock.close()
    async with db.engine.begin() as conn:
        await conn.execute(text("DROP TRIGGER hold ON outbox"))

    relay = _spawn_relay(env)
    try:
        await wait_until(lambda: _is(_unpublished(db), 0), timeout=30, what="the restarted relay to catch up")
        relay.send_signal(signal.SIGTERM)
        relay.wait(timeout=15)
    finally:
        if relay.poll() is None:
            relay.kill()

    assert await topic_size(kafka, ns + USERS) == 2 * n  # the whole batch went out twice
    await wait_until(lambda: _is(_delivered(runner), 2 * n), what="the consumer to see every copy")
    assert await db.effects() == dict.fromkeys(ids, 1)
    assert (runner.stats.applied, runner.stats.duplicates) == (n, n)


def _spawn_relay(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "smartcourse.cli", "relay"], env=env, cwd=REPO)


async def _blocked_backends(db: EventsDb) -> int:
    return int(
        await db.scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'advisory'"
        )
    )


async def _has(size: Awaitable[int], n: int) -> bool:
    return await size >= n


async def _is(value: Awaitable[Any], expected: Any) -> bool:
    return await value == expected


async def _not(value: Awaitable[Any]) -> bool:
    return not await value


async def _delivered(runner: KafkaConsumerRunner) -> int:
    return runner.stats.delivered


# --- a consumer crashing after its effect, before its commit ----------------------------------


class CrashBeforeCommit(KafkaConsumerRunner):
    """Dies (hangs until cancelled, never committing) right after the first effect was stored."""

    crashed: asyncio.Event

    async def _commit(self, kafka: AIOKafkaConsumer, record: ConsumerRecord[Any, Any]) -> None:
        self.crashed.set()
        await asyncio.Event().wait()


async def test_consumer_crash_before_commit_redelivers_and_the_effect_stays_once(
    db: EventsDb, kafka: str, codec: EventCodec, ns: str, background: Background
) -> None:
    (event_id,) = await db.emit(_archived())
    publisher = await _publisher(kafka, codec, ns)
    assert await relay_once(db.sessionmaker, publisher) == 1
    await publisher.stop()

    consumer = _consumer("course.archived")
    crashing = CrashBeforeCommit(
        consumer, sessionmaker=db.sessionmaker, bootstrap_servers=kafka, codec=codec, namespace=ns
    )
    crashing.crashed = asyncio.Event()
    task = asyncio.create_task(crashing.run())
    await asyncio.wait_for(crashing.crashed.wait(), 20)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, 10)
    assert await db.effects() == {event_id: 1}
    assert await committed_offsets(kafka, crashing.group_id) == {}

    # The same group again: Kafka redelivers the uncommitted record; processed_events absorbs it.
    runner = _runner(consumer, db, kafka, codec, ns)
    background.start(runner.run(background.stop))
    await wait_until(lambda: _is(_duplicates(runner), 1), timeout=20, what="the redelivery")
    assert runner.stats.applied == 0
    assert await db.effects() == {event_id: 1}
    await wait_until(lambda: _committed_total(kafka, runner.group_id, 1), what="the offset committed")


async def _duplicates(runner: KafkaConsumerRunner) -> int:
    return runner.stats.duplicates


# --- poison and failing records ---------------------------------------------------------------


async def test_poison_and_failing_records_go_to_the_dlq_and_the_stream_keeps_flowing(
    db: EventsDb, kafka: str, codec: EventCodec, ns: str, background: Background
) -> None:
    attempts: list[str] = []

    effect = _exploding(attempts)

    user_id = str(uuid.uuid4())  # one key: one partition, so the good event is behind the bad ones
    assert codec.registry is not None
    schema_id = await codec.registry.schema_id("user.registered", 1)
    breaker = _user(user_id, role="wizard").envelope()
    exploding = _user(user_id, full_name="explode").envelope()
    good = _user(user_id).envelope()
    producer = AIOKafkaProducer(bootstrap_servers=kafka)
    publisher = await _publisher(kafka, codec, ns)
    await producer.start()
    try:
        topic, key = ns + USERS, user_id.encode()
        await producer.send_and_wait(topic, b"this is not an event envelope", key=key)
        await producer.send_and_wait(topic, encode_wire(schema_id, breaker), key=key)  # bypasses our producer
        await publisher.publish(USERS, user_id, exploding)
        await publisher.publish(USERS, user_id, good)
    finally:
        await producer.stop()
        await publisher.stop()

    runner = _runner(_consumer("user.registered", effect=effect), db, kafka, codec, ns, attempts=3)
    background.start(runner.run(background.stop))
    await wait_until(lambda: _all_applied(db, [good["event_id"]]), timeout=20, what="the good event")
    assert await db.effects() == {good["event_id"]: 1}
    assert attempts == [exploding["event_id"]] * 3  # retried with backoff, then given up
    assert (runner.stats.dead_lettered, runner.stats.applied) == (3, 1)

    dead = await read_topic(kafka, dlq_topic(ns + USERS), count=3)
    headers = [{k: v.decode() for k, v in r.headers} for r in dead]
    source_partition = int(headers[0]["original_partition"])
    assert all(h["consumer"] == runner.consumer.name for h in headers)
    assert all(h["original_topic"] == ns + USERS for h in headers)
    assert {int(h["original_partition"]) for h in headers} == {source_partition}
    assert [h["original_offset"] for h in headers] == ["0", "1", "2"]
    assert headers[0]["error"].startswith("poison: value is not JSON")
    # Written with our own contract's schema id: checked once, against the local contract (EventCodec.validate).
    assert headers[1]["error"].startswith("poison: user.registered v1 breaks its contract")
    assert "role" in headers[1]["error"]
    assert headers[2]["error"] == "failed 3 times: RuntimeError: the search index is down"
    assert dead[0].value == b"this is not an event envelope"  # the original bytes, for replay

    async with db.sessionmaker() as session:
        letters = (await session.scalars(select(DeadLetter).order_by(DeadLetter.created_at))).all()
    assert [letter.consumer for letter in letters] == [runner.consumer.name] * 3
    assert letters[0].payload["raw_base64"] and letters[0].payload["source"]["offset"] == 0
    assert letters[1].payload == breaker and letters[2].payload == exploding
    expected = {(ns + USERS, source_partition): 4}
    await wait_until(lambda: _is(committed_offsets(kafka, runner.group_id), expected), what="all four committed")


async def test_a_record_whose_database_connection_keeps_being_cut_is_redelivered_not_dead_lettered(
    db: EventsDb, kafka: str, codec: EventCodec, ns: str, background: Background
) -> None:
    """PostgreSQL away for longer than a record's attempts (its connection cut each time): not the record's fault.
    The runner does not dead-letter it; it seeks back and the record is applied once when the database answers."""
    cuts: list[str] = []

    async def effect(session: Any, envelope: dict[str, Any]) -> None:
        if len(cuts) < 4:  # more than the runner's 3 attempts; the server ends the backend (SQLSTATE 57P01)
            cuts.append(envelope["event_id"])
            await session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        await count_effect(session, envelope)

    user_id = str(uuid.uuid4())
    envelope = _user(user_id).envelope()
    publisher = await _publisher(kafka, codec, ns)
    try:
        await publisher.publish(USERS, user_id, envelope)
    finally:
        await publisher.stop()

    runner = _runner(_consumer("user.registered", effect=effect), db, kafka, codec, ns, attempts=3)
    background.start(runner.run(background.stop))
    await wait_until(lambda: _all_applied(db, [envelope["event_id"]]), timeout=30, what="the event, once")
    assert await db.effects() == {envelope["event_id"]: 1}
    assert cuts == [envelope["event_id"]] * 4
    assert runner.stats.dead_lettered == 0
    assert await db.scalar("SELECT count(*) FROM dead_letters") == 0


async def test_a_fetch_is_applied_in_one_transaction_and_a_failing_record_alone(
    db: EventsDb, kafka: str, codec: EventCodec, ns: str, background: Background
) -> None:
    """Ten records of one partition arrive in one fetch: the nine good ones are applied together (one transaction for
    the run before the failing record, one for the run after it), the failing one gets its attempts (the shared
    transaction counted as the first) and is dead-lettered, and every good effect is applied once."""
    attempts: list[str] = []

    effect = _exploding(attempts)

    user_id = str(uuid.uuid4())  # one key: one partition, in this order
    envelopes = [_user(user_id, full_name="explode" if i == 4 else f"student {i}").envelope() for i in range(10)]
    publisher = await _publisher(kafka, codec, ns)
    try:
        for envelope in envelopes:
            await publisher.publish(USERS, user_id, envelope)
    finally:
        await publisher.stop()

    runner = _runner(_consumer("user.registered", effect=effect), db, kafka, codec, ns, attempts=3)
    background.start(runner.run(background.stop))
    good = [e["event_id"] for i, e in enumerate(envelopes) if i != 4]
    await wait_until(lambda: _all_applied(db, good), timeout=20, what="the nine good events")
    await wait_until(lambda: _is(_dead_lettered(runner), 1), timeout=20, what="the failing event's dead letter")
    assert await db.effects() == dict.fromkeys(good, 1)
    assert attempts == [envelopes[4]["event_id"]] * 3  # together once, then alone twice
    assert (runner.stats.applied, runner.stats.duplicates) == (9, 0)
    assert runner.stats.together == 9  # offsets 0-3 together, 4 alone, 5-9 together
    [letter] = await read_topic(kafka, dlq_topic(ns + USERS), count=1)
    assert dict(letter.headers)["error"] == b"failed 3 times: RuntimeError: the search index is down"
    expected = {(ns + USERS, letter_partition(letter)): 10}
    await wait_until(lambda: _is(committed_offsets(kafka, runner.group_id), expected), what="all ten committed")


async def test_a_record_slower_than_its_bound_is_cut_off_dead_lettered_once_and_the_partition_goes_on(
    db: EventsDb, kafka: str, codec: EventCodec, ns: str, background: Background
) -> None:
    """Session 35's note: only the embedded bus bounded each consumer (explore57 F2); over Kafka a slow effect held
    its partition, and was retried four times. It is cut off after the bound: the fetch goes on record by record, the
    slow record is dead-lettered at its first cut-off (no retry: it would take as long), the others are applied."""
    tries: list[str] = []

    async def effect(session: Any, envelope: dict[str, Any]) -> None:
        if envelope["data"].get("full_name") == "slow":
            tries.append(envelope["event_id"])
            await asyncio.sleep(30)
        await count_effect(session, envelope)

    user_id = str(uuid.uuid4())  # one key: one partition, in this order
    envelopes = [_user(user_id, full_name="slow" if i == 2 else f"student {i}").envelope() for i in range(5)]
    publisher = await _publisher(kafka, codec, ns)
    try:
        for envelope in envelopes:
            await publisher.publish(USERS, user_id, envelope)
    finally:
        await publisher.stop()

    runner = _runner(_consumer("user.registered", effect=effect), db, kafka, codec, ns, consumer_timeout=0.5)
    background.start(runner.run(background.stop))
    good = [e["event_id"] for i, e in enumerate(envelopes) if i != 2]
    await wait_until(lambda: _all_applied(db, good), timeout=20, what="the four quick events")
    await wait_until(lambda: _is(_dead_lettered(runner), 1), timeout=20, what="the slow event's dead letter")
    assert await db.effects() == dict.fromkeys(good, 1)
    assert tries == [envelopes[2]["event_id"]] * 2  # together once, then alone once
    [letter] = await read_topic(kafka, dlq_topic(ns + USERS), count=1)
    assert dict(letter.headers)["error"].startswith(b"ConsumerTimeout: took over 0.5 s and was cut off"), letter
    expected = {(ns + USERS, letter_partition(letter)): 5}
    await wait_until(lambda: _is(committed_offsets(kafka, runner.group_id), expected), what="all five committed")


async def test_records_the_consumer_skips_do_not_split_the_shared_transaction(
    db: EventsDb, kafka: str, codec: EventCodec, ns: str, background: Background
) -> None:
    key = str(uuid.uuid4())  # one key: one partition, in this order
    published = DomainEvent(
        "course.published", key, {"course_id": key, "instructor_id": str(uuid.uuid4()), "version": 1}
    ).envelope()
    archived = [_archived().envelope() for _ in range(4)]
    publisher = await _publisher(kafka, codec, ns)
    try:
        for envelope in [archived[0], archived[1], published, archived[2], archived[3]]:
            await publisher.publish(COURSES, key, envelope)
    finally:
        await publisher.stop()

    runner = _runner(_consumer("course.archived"), db, kafka, codec, ns)
    background.start(runner.run(background.stop))
    ids = [e["event_id"] for e in archived]
    await wait_until(lambda: _all_applied(db, ids), timeout=20, what="the four archived events")
    assert await db.effects() == dict.fromkeys(ids, 1)
    assert (runner.stats.applied, runner.stats.skipped, runner.stats.together) == (4, 1, 4)
    await wait_until(lambda: _committed_total(kafka, runner.group_id, 5), what="all five committed")


async def test_a_fetch_of_only_skipped_records_commits_its_offsets(
    db: EventsDb, kafka: str, codec: EventCodec, ns: str, background: Background
) -> None:
    key = str(uuid.uuid4())
    publisher = await _publisher(kafka, codec, ns)
    try:
        for _ in range(3):
            await publisher.publish(COURSES, key, _archived().envelope())
    finally:
        await publisher.stop()
    runner = _runner(_consumer("course.published"), db, kafka, codec, ns)  # no effect for course.archived
    background.start(runner.run(background.stop))
    await wait_until(lambda: _committed_total(kafka, runner.group_id, 3), timeout=20, what="the three committed")
    assert (runner.stats.skipped, runner.stats.applied) == (3, 0)


async def _dead_lettered(runner: KafkaConsumerRunner) -> int:
    return runner.stats.dead_lettered


def letter_partition(letter: ConsumerRecord[Any, Any]) -> int:
    return int(dict(letter.headers)["original_partition"])


# --- the producer side of the contracts -------------------------------------------------------


async def _slipped_past_emit(db: EventsDb, *envelopes: dict[str, Any]) -> None:
    """user.registered outbox rows written directly (as if past `UnitOfWork.emit`'s check), in this order."""
    async with db.sessionmaker() as session, session.begin():
        for i, envelope in enumerate(envelopes):
            session.add(
                OutboxEvent(
                    topic=USERS,
                    event_type="user.registered",
                    schema_version=1,
                    aggregate_id=envelope["aggregate_id"],
                    payload=envelope,
                    occurred_at=datetime.now(UTC) + timedelta(milliseconds=i),
                )
            )


async def test_producer_and_relay_refuse_an_envelope_that_breaks_its_contract(
    db: EventsDb, kafka: str, codec: EventCodec, ns: str
) -> None:
    publisher = await _publisher(kafka, codec, ns)
    try:
        bad = _user(role="wizard").envelope()
        with pytest.raises(Invalid, match="breaks its contract at data/role"):
            await publisher.publish(USERS, bad["aggregate_id"], bad)

        # A row that slipped past UnitOfWork.emit: the relay does not send it and records why.
        await _slipped_past_emit(db, bad)
        assert await relay_once(db.sessionmaker, publisher) == 0
    finally:
        await publisher.stop()
    async with db.sessionmaker() as session:
        outbox = (await session.scalars(select(OutboxEvent))).one()
    assert outbox.published_at is None and outbox.attempts == 1
    assert "breaks its contract" in (outbox.last_error or "")
    assert await topic_size(kafka, ns + USERS) == 0


async def test_a_round_with_a_bad_row_sends_the_rows_before_it_once_and_stops_there(
    db: EventsDb, kafka: str, codec: EventCodec, ns: str
) -> None:
    """The relay hands a round to Kafka at once (every send, then every ack); the whole round is encoded first, so
    a row that breaks its contract sends nothing twice: the round goes row by row, up to that row."""
    good_before, good_after = _user().envelope(), _user().envelope()
    bad = _user(role="wizard").envelope()
    await _slipped_past_emit(db, good_before, bad, good_after)
    publisher = await _publisher(kafka, codec, ns)
    try:
        assert await relay_once(db.sessionmaker, publisher) == 1
        assert await relay_once(db.sessionmaker, publisher) == 0  # stuck on the bad row, as before
    finally:
        await publisher.stop()
    async with db.sessionmaker() as session:
        rows = {r.payload["event_id"]: r for r in await session.scalars(select(OutboxEvent))}
    assert rows[good_before["event_id"]].published_at is not None
    assert rows[bad["event_id"]].published_at is None and rows[bad["event_id"]].attempts == 2
    assert rows[good_after["event_id"]].published_at is None
    (record,) = await read_topic(kafka, ns + USERS, count=1)
    assert json.loads(record.value[5:])["event_id"] == good_before["event_id"]
    assert await topic_size(kafka, ns + USERS) == 1  # nothing sent twice, nothing after the bad row
