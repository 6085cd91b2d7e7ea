"""The Kafka path's dead letters through the operations service: listed with cause and trace id field, a raw poison
record refused for replay, a failing one replayed after its cause is fixed, applied once (stack: Kafka + registry)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from smartcourse.adapters.event_codec import EventCodec
from smartcourse.adapters.schema_registry import SchemaRegistry
from smartcourse.db import UnitOfWork
from smartcourse.domain.events import DomainEvent
from smartcourse.entrypoints.kafka import KafkaConsumerRunner, KafkaPublisher
from smartcourse.errors import Conflict
from smartcourse.event_consumer import Consumer
from smartcourse.security import Principal
from smartcourse.services import operations
from tests.engines import require_engine
from tests.integration.kafka_kit import EventsDb, count_effect, create_events_db, drop_events_db, wait_until

pytestmark = [pytest.mark.engines, pytest.mark.timeout(90)]

ADMIN = Principal(user_id=uuid.uuid4(), role="admin")
USERS = "smartcourse.users"


@pytest.fixture
async def db(settings: Any) -> AsyncIterator[EventsDb]:
    events_db = await create_events_db(settings.database_url)
    yield events_db
    await drop_events_db(settings.database_url, events_db)


@pytest.fixture
async def codec(ns: str) -> AsyncIterator[EventCodec]:
    require_engine("schema_registry")
    registry = SchemaRegistry(
        os.environ.get("SCHEMA_REGISTRY_URL") or require_engine("schema_registry"), subject_prefix=ns
    )
    await registry.register_all()
    yield EventCodec(registry)
    await registry.aclose()


@pytest.fixture
def ns() -> str:
    return f"t{uuid.uuid4().hex[:10]}."


async def test_kafka_dead_letters_are_listed_and_replayed_once(db: EventsDb, codec: EventCodec, ns: str) -> None:
    kafka = require_engine("kafka")
    broken = {"on": True}

    async def effect(session: Any, envelope: dict[str, Any]) -> None:
        if broken["on"]:
            raise RuntimeError("the search index is down")
        await count_effect(session, envelope)

    consumer = Consumer(f"ops-consumer-{uuid.uuid4().hex[:8]}", {"user.registered": effect})
    user_id = str(uuid.uuid4())
    event = DomainEvent("user.registered", user_id, {"user_id": user_id, "role": "student"}).envelope()
    producer = AIOKafkaProducer(bootstrap_servers=kafka)
    publisher = KafkaPublisher(bootstrap_servers=kafka, codec=codec, namespace=ns)
    await publisher.start()
    await producer.start()
    try:
        await producer.send_and_wait(ns + USERS, b"not an event at all", key=user_id.encode())
        await publisher.publish(USERS, user_id, event)
    finally:
        await producer.stop()
        await publisher.stop()
    runner = KafkaConsumerRunner(
        consumer,
        sessionmaker=db.sessionmaker,
        bootstrap_servers=kafka,
        codec=codec,
        namespace=ns,
        attempts=2,
        backoff=0.05,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        await wait_until(lambda: _dead_lettered(runner, 2), timeout=30, what="two dead letters")
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 15)

    uow = UnitOfWork(db.sessionmaker)
    async with uow:
        items = (await operations.list_dead_letters(uow=uow, principal=ADMIN, consumer=consumer.name))["items"]
    by_type = {i["event_type"]: i for i in items}
    assert set(by_type) == {None, "user.registered"}, items
    raw, failing = by_type[None], by_type["user.registered"]
    assert raw["error"].startswith("poison: value is not JSON") and not raw["replayable"]
    assert failing["error"] == "failed 2 times: RuntimeError: the search index is down" and failing["replayable"]
    assert all(isinstance(i["trace_id"], str) for i in items) and failing["topic"] == ns + USERS

    async def replay(dead_letter_id: str) -> dict[str, Any]:
        return await operations.replay_dead_letter(
            sessionmaker=db.sessionmaker,
            principal=ADMIN,
            dead_letter_id=uuid.UUID(dead_letter_id),
            consumers=[consumer],
        )

    with pytest.raises(Conflict) as refused:
        await replay(raw["id"])
    assert refused.value.code == "not_replayable"
    with pytest.raises(Conflict) as still:  # the cause is not fixed yet: nothing applied, the letter stays
        await replay(failing["id"])
    assert still.value.code == "replay_failed" and "search index is down" in still.value.message
    assert await db.effects() == {}

    broken["on"] = False
    first = await replay(failing["id"])
    again = await replay(failing["id"])
    assert (first["outcome"], first["replayed_now"], again["replayed_now"]) == ("applied", True, False)
    assert again["replayed_at"] == first["replayed_at"] and again["outcome"] == "applied"
    assert await db.effects() == {event["event_id"]: 1}


async def _dead_lettered(runner: KafkaConsumerRunner, n: int) -> bool:
    return runner.stats.dead_lettered >= n
