"""The embedded event bus (consumers.InProcessPublisher): an event is checked against its contract once for all its
consumers, each applies it once; one that breaks its contract is dead-lettered by each consumer (PostgreSQL)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

import smartcourse.consumers as bus
from smartcourse.consumers import InProcessPublisher
from smartcourse.domain.events import DomainEvent
from smartcourse.event_consumer import Consumer
from smartcourse.models import DeadLetter

pytestmark = [pytest.mark.timeout(60)]


async def test_one_contract_check_for_every_consumer_and_a_violation_dead_lettered_by_each(
    container: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    applied: list[tuple[str, str]] = []

    def consumer(name: str) -> Consumer:
        async def effect(session: Any, envelope: dict[str, Any]) -> None:
            applied.append((name, envelope["event_id"]))

        return Consumer(name, {"user.registered": effect})

    names = [f"bus-test-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    publisher = InProcessPublisher(container.sessionmaker, [consumer(n) for n in names])
    checks: list[str] = []
    real = bus.validate_event

    def counted(event_type: str, version: int, envelope: dict[str, Any]) -> None:
        checks.append(str(envelope.get("event_id")))  # the suite's own relay may publish meanwhile: count ours
        real(event_type, version, envelope)

    monkeypatch.setattr(bus, "validate_event", counted)
    user_id = str(uuid.uuid4())
    good = DomainEvent("user.registered", user_id, {"user_id": user_id, "role": "student"}).envelope()
    await publisher.publish("smartcourse.users", user_id, good)
    assert sorted(applied) == sorted((n, good["event_id"]) for n in names)
    assert checks.count(good["event_id"]) == 1  # once, not once per consumer

    bad = DomainEvent("user.registered", user_id, {"user_id": user_id, "role": "student"}).envelope()
    bad["data"] = {"user_id": 42}  # breaks the contract
    await publisher.publish("smartcourse.users", user_id, bad)
    assert len(applied) == 3  # nothing applied
    async with container.sessionmaker() as session:
        letters = list(
            await session.scalars(select(DeadLetter).where(DeadLetter.event_id == uuid.UUID(bad["event_id"])))
        )
        for letter in letters:  # leave no pending dead letter behind for the tests that count them
            await session.delete(letter)
        await session.commit()
    assert sorted(d.consumer for d in letters) == sorted(names)
    assert all("contract" in d.error for d in letters), [d.error for d in letters]
