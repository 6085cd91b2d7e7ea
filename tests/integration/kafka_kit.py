"""Helpers for the Kafka event tests: a private database per test, bounded waits, reading topics and offsets."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from smartcourse.db import UnitOfWork
from smartcourse.domain.events import DomainEvent
from smartcourse.models import Base, DeadLetter, OutboxEvent, ProcessedEvent, User


@dataclass
class EventsDb:
    """A database holding only the event tables: no other relay (e.g. the suite's worker) can touch its outbox."""

    url: str
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.engine.connect() as conn:
            return await conn.scalar(text(sql), params)

    async def effects(self) -> dict[str, int]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(text("SELECT event_id, applied FROM test_effects"))
            return {str(event_id): applied for event_id, applied in rows}

    async def emit(self, *events: DomainEvent) -> list[str]:
        """Through the real unit of work: the outbox rows are written and checked exactly as services do."""
        async with UnitOfWork(self.sessionmaker) as uow:
            for event in events:
                uow.emit(event)
            await uow.commit()
        return [str(e.id) for e in events]


async def create_events_db(base_url: str) -> EventsDb:
    name = f"events_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(base_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    url = make_url(base_url).set(database=name).render_as_string(hide_password=False)
    engine = create_async_engine(url, pool_size=5)
    async with engine.begin() as conn:
        # users: a dead letter names the admin who discarded it (a foreign key).
        tables = [User.__table__, OutboxEvent.__table__, ProcessedEvent.__table__, DeadLetter.__table__]
        await conn.run_sync(lambda sync: Base.metadata.create_all(sync, tables=tables))
        await conn.execute(
            text(
                "CREATE TABLE IF NOT EXISTS test_effects ("
                "event_id uuid PRIMARY KEY, event_type text NOT NULL, applied int NOT NULL)"
            )
        )
    return EventsDb(url=url, engine=engine, sessionmaker=async_sessionmaker(engine, expire_on_commit=False))


async def drop_events_db(base_url: str, db: EventsDb) -> None:
    await db.engine.dispose()
    admin = create_async_engine(base_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(db.url).database}" WITH (FORCE)'))
    await admin.dispose()


async def count_effect(session: AsyncSession, envelope: dict[str, Any]) -> None:
    """The test consumers' effect: count applications per event id (exactly once means every count is 1)."""
    await session.execute(
        text(
            "INSERT INTO test_effects (event_id, event_type, applied) VALUES (:e, :t, 1) "
            "ON CONFLICT (event_id) DO UPDATE SET applied = test_effects.applied + 1"
        ),
        {"e": envelope["event_id"], "t": envelope["event_type"]},
    )


async def wait_until(check: Callable[[], Awaitable[Any]], *, timeout: float = 15.0, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


async def _assigned(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """A group-less consumer subscribed to `topic` gets all its partitions once it has the metadata."""
    return await wait_until(lambda: _now(list(consumer.assignment())), timeout=10, what=f"partitions of {topic}")


async def _now(value: Any) -> Any:
    return value


async def topic_size(bootstrap: str, topic: str) -> int:
    """How many records a topic holds (sum of its partitions' end offsets)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(await _assigned(consumer, topic))
        return sum(ends.values())
    finally:
        await consumer.stop()


async def read_topic(
    bootstrap: str, topic: str, *, count: int, timeout: float = 15.0
) -> list[ConsumerRecord[Any, Any]]:
    """The first `count` records of a topic (all partitions, no consumer group), in partition/offset order."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    records: list[ConsumerRecord[Any, Any]] = []
    try:
        deadline = time.monotonic() + timeout
        while len(records) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{topic}: only {len(records)} of {count} records after {timeout}s")
            batch = await consumer.getmany(timeout_ms=200)
            for part in batch.values():
                records.extend(part)
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        await consumer.stop()


async def committed_offsets(bootstrap: str, group: str) -> dict[tuple[str, int], int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
        return {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
    finally:
        await admin.close()
