"""The embedded event bus (consumers.InProcessPublisher): an event is checked against its contract once for all its
consumers, each applies it once; one that breaks its contract is dead-lettered by each consumer (PostgreSQL)."""

from __future__ import annotations

import dataclasses
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


async def test_a_relay_round_is_applied_in_one_transaction_per_consumer_and_a_poison_event_alone(
    container: Any,
) -> None:
    """`publish_batch`: each consumer applies the round's events in one transaction, in order; when one effect
    fails, the consumer goes event by event, so only that event is dead-lettered; a redelivered round applies
    nothing twice."""
    from sqlalchemy import text

    from smartcourse.services.outbox import Outgoing

    applied: dict[str, list[tuple[str, int]]] = {}
    poison: set[str] = set()

    def consumer(name: str) -> Consumer:
        async def effect(session: Any, envelope: dict[str, Any]) -> None:
            if envelope["event_id"] in poison:
                raise RuntimeError("cannot apply this one")
            txid = int(await session.scalar(text("select txid_current()")))
            applied.setdefault(name, []).append((envelope["event_id"], txid))

        return Consumer(name, {"user.registered": effect})

    names = [f"bus-batch-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    publisher = InProcessPublisher(container.sessionmaker, [consumer(n) for n in names])

    def events(count: int) -> list[Outgoing]:
        out = []
        for _ in range(count):
            user_id = str(uuid.uuid4())
            envelope = DomainEvent("user.registered", user_id, {"user_id": user_id, "role": "student"}).envelope()
            out.append(Outgoing("smartcourse.users", user_id, envelope, None))
        return out

    first = events(5)
    await publisher.publish_batch(first)
    for name in names:
        assert [e for e, _ in applied[name]] == [o.envelope["event_id"] for o in first]  # all, in order
        assert len({tx for _, tx in applied[name]}) == 1  # one transaction for the round
    assert applied[names[0]][0][1] != applied[names[1]][0][1]  # one per consumer

    await publisher.publish_batch(first)  # redelivered (a crash before the relay marked them sent)
    assert all(len(applied[name]) == 5 for name in names)

    second = events(4)
    poison.add(second[2].envelope["event_id"])
    # The poison event carries the trace of the request that emitted it: its dead letters keep it (they were written
    # after the consumer's span, with no span current: no trace id).
    trace_id = uuid.uuid4().hex
    second[2] = dataclasses.replace(second[2], parent={"traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"})
    await publisher.publish_batch(second)
    expected = [o.envelope["event_id"] for i, o in enumerate(second) if i != 2]
    async with container.sessionmaker() as session:  # the failed try's effects were rolled back: not counted

        async def committed(tx: int) -> bool:
            return await session.scalar(text("select txid_status(:tx)"), {"tx": tx}) == "committed"

        for name in names:
            applied[name] = [(e, tx) for e, tx in applied[name] if await committed(tx)]
    for name in names:
        got = applied[name][5:]
        assert [e for e, _ in got] == expected  # the others applied once, in order
        assert len({tx for _, tx in got}) == 3  # after the failed try, one transaction each
    async with container.sessionmaker() as session:
        letters = list(
            await session.scalars(
                select(DeadLetter).where(DeadLetter.event_id == uuid.UUID(second[2].envelope["event_id"]))
            )
        )
        for letter in letters:
            await session.delete(letter)
        await session.commit()
    assert sorted(d.consumer for d in letters) == sorted(names)
    assert all("cannot apply this one" in d.error for d in letters)
    assert [d.trace_id for d in letters] == [trace_id] * len(names)


async def test_after_a_round_that_was_not_full_the_relay_lingers_so_the_next_events_go_together(settings: Any) -> None:
    """`run_relay(linger=...)`: events committed one by one while the relay pauses go out in one round (one
    transaction per consumer), instead of a round each as they land."""
    import asyncio

    from smartcourse.services.outbox import Outgoing, run_relay
    from tests.integration.kafka_kit import create_events_db, drop_events_db, wait_until

    rounds: list[int] = []

    class Recording:
        async def publish(self, topic: str, key: str, envelope: dict[str, Any]) -> None:
            rounds.append(1)

        async def publish_batch(self, batch: Any) -> None:
            assert all(isinstance(item, Outgoing) for item in batch)
            rounds.append(len(batch))

    def user() -> DomainEvent:
        user_id = str(uuid.uuid4())
        return DomainEvent("user.registered", user_id, {"user_id": user_id, "role": "student"})

    db = await create_events_db(settings.database_url)
    stop = asyncio.Event()
    relay = asyncio.create_task(run_relay(db.sessionmaker, Recording(), idle_sleep=0.05, linger=1.0, stop=stop))
    try:
        await db.emit(user())
        await wait_until(lambda: _async(rounds == [1]), what="the first round")
        for _ in range(5):  # five commits, 20 ms apart, while the relay lingers after its one-row round
            await db.emit(user())
            await asyncio.sleep(0.02)
        await wait_until(lambda: _async(sum(rounds) == 6), what="the five events")
        assert rounds == [1, 5]
    finally:
        stop.set()
        await asyncio.wait_for(relay, 10)
        await drop_events_db(settings.database_url, db)


async def _async(value: bool) -> bool:
    return value


async def test_a_consumer_whose_database_connection_is_cut_is_retried_by_the_relay_not_dead_lettered(
    settings: Any,
) -> None:
    """PostgreSQL restarting under the embedded bus (the chaos run's case): the consumer's connection is cut in the
    middle of its transaction. That is not the event's fault: the relay records the failure on the row and sends it
    again next round, where it is applied once; no dead letter. An effect that fails by itself is still
    dead-lettered."""
    from sqlalchemy import text

    from smartcourse.services.outbox import relay_once
    from tests.integration.kafka_kit import create_events_db, drop_events_db

    cut: list[str] = []
    applied: list[str] = []

    async def effect(session: Any, envelope: dict[str, Any]) -> None:
        if len(cut) < 3:  # the server ends this backend, as a restart in immediate mode does (SQLSTATE 57P01):
            # for the round's three tries (together, then event by event, then the relay's row by row)
            cut.append(envelope["event_id"])
            await session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        if envelope["data"].get("full_name") == "poison":
            raise RuntimeError("cannot apply this one")
        applied.append(envelope["event_id"])

    def user(full_name: str = "Ada") -> DomainEvent:
        user_id = str(uuid.uuid4())
        return DomainEvent("user.registered", user_id, {"user_id": user_id, "role": "student", "full_name": full_name})

    db = await create_events_db(settings.database_url)
    try:
        publisher = InProcessPublisher(
            db.sessionmaker, [Consumer(f"bus-cut-{uuid.uuid4().hex[:8]}", {"user.registered": effect})]
        )
        first, second = await db.emit(user(), user())
        assert await relay_once(db.sessionmaker, publisher) == 0  # the round stops at the cut event
        assert cut == [first] * 3 and applied == []
        assert await db.scalar("SELECT count(*) FROM dead_letters") == 0
        assert await db.scalar("SELECT attempts FROM outbox WHERE id = :id", id=uuid.UUID(first)) == 1
        assert await db.scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 2

        assert await relay_once(db.sessionmaker, publisher) == 2  # next round: both, once, in order
        assert applied == [first, second]
        assert await db.scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0

        (poison,) = await db.emit(user("poison"))
        assert await relay_once(db.sessionmaker, publisher) == 1
        assert await db.scalar("SELECT count(*) FROM dead_letters WHERE event_id = :id", id=uuid.UUID(poison)) == 1
    finally:
        await drop_events_db(settings.database_url, db)


async def test_a_consumer_slower_than_its_bound_is_cut_off_and_dead_lettered_and_the_bus_goes_on(
    container: Any,
) -> None:
    """explore57 F2: one consumer's 74 s query held every event of the embedded bus for 6 minutes (the relay cut each
    round at 10 s, "the broker did not acknowledge", and sent it again; nothing was dead-lettered). Each consumer is
    bounded by the bus itself: the slow one's events are dead-lettered for it, the others' applied."""
    import asyncio

    from smartcourse.services.outbox import Outgoing

    applied: list[str] = []

    async def quick(session: Any, envelope: dict[str, Any]) -> None:
        applied.append(envelope["event_id"])

    async def slow(session: Any, envelope: dict[str, Any]) -> None:
        await asyncio.sleep(5)

    names = [f"bus-slow-{uuid.uuid4().hex[:8]}", f"bus-quick-{uuid.uuid4().hex[:8]}"]
    publisher = InProcessPublisher(
        container.sessionmaker,
        [Consumer(names[0], {"user.registered": slow}), Consumer(names[1], {"user.registered": quick})],
        consumer_timeout=0.3,
    )
    assert publisher.bounds_itself  # the relay leaves its rounds uncut
    batch = []
    for _ in range(2):
        user_id = str(uuid.uuid4())
        envelope = DomainEvent("user.registered", user_id, {"user_id": user_id, "role": "student"}).envelope()
        batch.append(Outgoing("smartcourse.users", user_id, envelope, None))
    await asyncio.wait_for(publisher.publish_batch(batch), 10)
    ids = [o.envelope["event_id"] for o in batch]
    assert applied == ids
    async with container.sessionmaker() as session:
        letters = list(await session.scalars(select(DeadLetter).where(DeadLetter.consumer == names[0])))
        for letter in letters:  # leave no pending dead letter behind for the tests that count them
            await session.delete(letter)
        await session.commit()
    assert sorted(str(d.event_id) for d in letters) == sorted(ids)
    assert all("took over 0.3 s and was cut off" in d.error for d in letters), [d.error for d in letters]
