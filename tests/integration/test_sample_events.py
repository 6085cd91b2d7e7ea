"""Every sample event under events/samples/ through its handler, exactly as Lambda calls it (Powertools' load_event).

HTTP samples must get a well-formed API Gateway v2 answer that is not a 5xx (a 4xx is fine: most samples carry a
placeholder token or example ids). Kafka samples must be taken by every consumer function without a retry or a
dead letter. Runs on the suite's embedded engines.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert

from smartcourse.adapters.event_codec import EventCodec, encode_wire
from smartcourse.consumers import registry
from smartcourse.db import UnitOfWork
from smartcourse.domain.events import DomainEvent
from smartcourse.models import AnalyticsCounter, DeadLetter, OutboxEvent, ProcessedEvent, User
from tests.conftest import REPO


@pytest.fixture(autouse=True)
def _suite_container_back() -> Iterator[None]:
    """A handler runs in its own event loop, where `get_container()` builds a container of its own and installs
    it process-wide: put the suite's back after each test, or later tests talk to a stranger."""
    from smartcourse import bootstrap

    before = bootstrap._container
    yield
    bootstrap.set_container(before)


SAMPLES = sorted((REPO / "events" / "samples").glob("*.json"))
FUNCTIONS = sorted(p.parent.name for p in (REPO / "functions").glob("*/app.py"))


def load_event(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def is_kafka(event: dict[str, Any]) -> bool:
    return event.get("eventSource") in {"aws:kafka", "SelfManagedKafka"}


def consumer_functions() -> list[str]:
    """The functions triggered by a Kafka topic (the template gives them an MSK event source from `CONSUMES`)."""
    from smartcourse.functions_registry import load_function

    return [name for name in FUNCTIONS if hasattr(load_function(name).module, "CONSUMES")]


def handlers_for(sample: Path) -> list[str]:
    """The function a sample belongs to: its namesake, or every consumer function for a Kafka event."""
    if sample.stem in FUNCTIONS:
        return [sample.stem]
    if is_kafka(load_event(sample)):
        return consumer_functions()
    raise AssertionError(f"{sample.name}: no function of that name, and not a Kafka event")


def invoke(name: str, event: dict[str, Any]) -> dict[str, Any]:
    """As Lambda does: `handler(event, context)` in a thread with its own event loop (run it via to_thread)."""
    from smartcourse.cli import LambdaContext
    from smartcourse.functions_registry import load_function

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return dict(load_function(name).module.handler(copy.deepcopy(event), LambdaContext(name)))
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def envelopes(event: dict[str, Any]) -> list[dict[str, Any]]:
    return [json.loads(base64.b64decode(r["value"])) for records in event["records"].values() for r in records]


async def counters(container: Any) -> dict[tuple[str, str], float]:
    async with container.sessionmaker() as session:
        rows = await session.execute(select(AnalyticsCounter.metric, AnalyticsCounter.bucket, AnalyticsCounter.value))
        return {(metric, bucket): value for metric, bucket, value in rows}


async def dead_letters(container: Any, event_ids: list[uuid.UUID]) -> list[str]:
    async with container.sessionmaker() as session:
        rows = await session.scalars(select(DeadLetter.error).where(DeadLetter.event_id.in_(event_ids)))
        return list(rows)


def test_every_sample_has_a_handler() -> None:
    assert SAMPLES, "no sample events"
    for sample in SAMPLES:
        assert handlers_for(sample), f"{sample.name}: no function takes it"


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
async def test_sample_event_through_its_handler(sample: Path, container: Any) -> None:
    event = load_event(sample)
    if not is_kafka(event):
        (name,) = handlers_for(sample)
        response = await asyncio.to_thread(invoke, name, event)
        assert isinstance(response.get("statusCode"), int), response
        assert isinstance(response.get("headers"), dict) and isinstance(response.get("body"), str), response
        assert isinstance(response.get("isBase64Encoded"), bool), response
        assert 200 <= response["statusCode"] < 500, f"{name}: {response['statusCode']} {response['body'][:500]}"
        return

    # The sample's events describe a course this database does not have: applying them would skew the live
    # counters (the reconcile check would find a course that was never published). So they are recorded as
    # already applied: the handler still decodes, checks each against its contract and dedupes; the effect of a
    # real event is checked in test_consumer_handler_applies_a_real_event_once below.
    ids = [uuid.UUID(e["event_id"]) for e in envelopes(event)]
    async with container.sessionmaker() as session, session.begin():
        for consumer in registry():
            await session.execute(
                insert(ProcessedEvent)
                .values([{"consumer": consumer.name, "event_id": i} for i in ids])
                .on_conflict_do_nothing()
            )
    before = await counters(container)
    for name in handlers_for(sample):
        assert await asyncio.to_thread(invoke, name, event) == {"batchItemFailures": []}, name
    assert await dead_letters(container, ids) == []
    assert await counters(container) == before


class RelayedToKafka(UnitOfWork):
    """A unit of work whose events leave through Kafka, i.e. through this test: on commit their outbox rows are
    marked published (as the Kafka relay marks what it sent), so the in-process relay never applies them."""

    async def commit(self) -> None:
        await self.session.flush()
        await self.session.execute(
            update(OutboxEvent).where(OutboxEvent.id.in_([e.id for e in self.emitted])).values(published_at=func.now())
        )
        await super().commit()


async def _outbox_settled(container: Any, timeout: float = 10) -> None:
    """Wait until no `user.registered` event is still on its way to the counters (when a relay is running)."""
    deadline = asyncio.get_running_loop().time() + timeout
    last = -1
    while asyncio.get_running_loop().time() < deadline:
        async with container.sessionmaker() as session:
            pending = await session.scalar(
                select(func.count())
                .select_from(OutboxEvent)
                .where(OutboxEvent.published_at.is_(None), OutboxEvent.event_type == "user.registered")
            )
        if not pending or pending == last:  # drained, or nothing relays them in this session
            return
        last = int(pending)
        await asyncio.sleep(0.5)


def _msk_event(values: list[bytes]) -> dict[str, Any]:
    """The sample MSK event with its records replaced by `values` (topic, partition and offsets as Lambda sends)."""
    event = load_event(REPO / "events" / "samples" / "on_analytics_event.json")
    (template,) = event["records"]["smartcourse.courses-0"]
    records = []
    for offset, value in enumerate(values, start=100):
        record = copy.deepcopy(template)
        record.update(topic="smartcourse.users", offset=offset, value=base64.b64encode(value).decode(), headers=[])
        records.append(record)
    event["records"] = {"smartcourse.users-0": records}
    return event


async def test_consumer_handler_applies_a_real_event_once(container: Any) -> None:
    users = [
        User(
            id=uuid.uuid4(),
            email=f"msk-{role}-{uuid.uuid4().hex[:10]}@example.com",
            password_hash="unused",
            full_name=f"MSK {role}",
            role=role,
        )
        for role in ("student", "instructor")
    ]
    await _outbox_settled(container)
    before = await counters(container)
    async with RelayedToKafka(container.sessionmaker) as uow:
        uow.session.add_all(users)
        events = [DomainEvent("user.registered", str(u.id), {"user_id": str(u.id), "role": u.role}) for u in users]
        for e in events:
            uow.emit(e)
        await uow.commit()

    # As the relay encodes them: plain JSON (no schema registry) and the Confluent wire format.
    codec = EventCodec()
    student_event, instructor_event = (e.envelope() for e in events)
    values = [await codec.encode(student_event), encode_wire(1, instructor_event)]
    event = _msk_event(values)

    assert await asyncio.to_thread(invoke, "on_analytics_event", event) == {"batchItemFailures": []}
    after = await counters(container)
    assert after.get(("students", ""), 0) - before.get(("students", ""), 0) == 1
    assert after.get(("instructors", ""), 0) - before.get(("instructors", ""), 0) == 1
    async with container.sessionmaker() as session:
        processed = set(
            await session.scalars(
                select(ProcessedEvent.event_id).where(
                    ProcessedEvent.consumer == "analytics", ProcessedEvent.event_id.in_([e.id for e in events])
                )
            )
        )
    assert processed == {e.id for e in events}

    # Lambda redelivers the batch (at least once): nothing is counted twice.
    assert await asyncio.to_thread(invoke, "on_analytics_event", event) == {"batchItemFailures": []}
    assert await counters(container) == after
    assert await dead_letters(container, [e.id for e in events]) == []
