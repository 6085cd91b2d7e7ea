"""`Consumer.together`: the events of one transaction (a relay round, a Kafka fetch, a Lambda batch) move the analytics
counters, the course popularity and the co-enrollment pairs once, in one statement per table, by the sum of their
effects (PostgreSQL). Each test works inside one transaction that it rolls back: the counters it moves belong to no
real enrollment, and the suite's analytics reconcile (tests/e2e/test_enrollment.py) must not see them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession

from smartcourse.event_consumer import Consumer
from smartcourse.models import AnalyticsCounter, CoursePair, CoursePopularity, Enrollment
from smartcourse.services.analytics import CONSUMER as analytics
from smartcourse.services.recommendations import CONSUMER as recommendations
from tests.conftest import Api


@pytest.fixture
async def session(container: Any) -> AsyncIterator[AsyncSession]:
    """One transaction, rolled back at the end."""
    async with container.sessionmaker() as s:
        tx = await s.begin()
        try:
            yield s
        finally:
            await tx.rollback()


def _admission(course_id: str, *, student_id: str | None = None, at: datetime | None = None) -> dict[str, Any]:
    data = {
        "enrollment_id": str(uuid.uuid4()),
        "student_id": student_id or str(uuid.uuid4()),
        "course_id": course_id,
        "admitted_at": (at or datetime.now(UTC)).isoformat(),
    }
    return {"event_id": str(uuid.uuid4()), "event_type": "enrollment.created", "data": data}


async def _apply(session: AsyncSession, consumer: Consumer, envelopes: list[dict[str, Any]], *, together: bool) -> None:
    if together:
        async with consumer.together(session):
            for envelope in envelopes:
                await consumer.apply(session, envelope)
    else:
        for envelope in envelopes:
            await consumer.apply(session, envelope)


async def _statements(
    session: AsyncSession, consumer: Consumer, envelopes: list[dict[str, Any]], together: bool
) -> list[str]:
    """The statements `_apply` sent on this session's connection."""
    seen: list[str] = []
    mine = (await session.connection()).sync_connection
    engine = mine.engine

    def record(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if conn is mine:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        await _apply(session, consumer, envelopes, together=together)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return seen


async def _counts(session: AsyncSession, course_id: str) -> tuple[float | None, int | None]:
    enrolled = await session.scalar(
        select(AnalyticsCounter.value).where(
            AnalyticsCounter.metric == "course_enrollments", AnalyticsCounter.bucket == course_id
        )
    )
    admissions = await session.scalar(
        select(CoursePopularity.admissions).where(CoursePopularity.course_id == uuid.UUID(course_id))
    )
    return enrolled, admissions


async def test_a_batch_of_admissions_moves_each_counter_once_by_their_sum(session: AsyncSession, api: Api) -> None:
    course_id = (await api.course(await api.user("instructor")))["id"]  # popularity rows need a real course
    batch = [_admission(course_id) for _ in range(5)]
    counters = await _statements(session, analytics, batch, together=True)
    popularity = await _statements(session, recommendations, batch, together=True)
    assert await _counts(session, course_id) == (5, 5)
    assert len([s for s in counters if "analytics_counters" in s]) == 1, counters  # one for the five events
    assert len([s for s in popularity if "INSERT INTO course_popularity" in s]) == 1, popularity

    # One by one (a single event's transaction, as `Consumer.handle` runs it): the same sums, a statement each.
    singles = [_admission(course_id) for _ in range(3)]
    counters = await _statements(session, analytics, singles, together=False)
    await _apply(session, recommendations, singles, together=False)
    assert await _counts(session, course_id) == (8, 8)
    assert len([s for s in counters if "analytics_counters" in s]) == 3


async def test_nothing_deferred_is_written_when_the_block_fails(session: AsyncSession) -> None:
    course_id = str(uuid.uuid4())
    with pytest.raises(RuntimeError):
        async with analytics.together(session):
            await analytics.apply(session, _admission(course_id))
            raise RuntimeError("the next effect failed")
    assert await _counts(session, course_id) == (None, None)


async def test_co_enrollment_pairs_are_the_same_together_as_one_by_one(session: AsyncSession, api: Api) -> None:
    """A student admitted to three courses in turn: each pair of courses counted once, both ways, whether the three
    admissions are applied in one block (one query for the block's students) or one at a time."""
    owner = await api.user("instructor")
    t0 = datetime.now(UTC) - timedelta(hours=1)
    pairs: dict[bool, dict[tuple[int, int], int]] = {}
    for together in (True, False):
        student = await api.user()
        courses = [(await api.course(owner, title=f"Pair {i}"))["id"] for i in range(3)]
        events = []
        for i, course_id in enumerate(courses):
            at = t0 + timedelta(minutes=i)
            envelope = _admission(course_id, student_id=student["id"], at=at)
            session.add(
                Enrollment(
                    id=uuid.UUID(envelope["data"]["enrollment_id"]),
                    student_id=uuid.UUID(student["id"]),
                    course_id=uuid.UUID(course_id),
                    status="active",
                    admitted_at=at,
                )
            )
            events.append(envelope)
        await session.flush()
        sent = await _statements(session, recommendations, list(reversed(events)), together)  # any arrival order
        reads = [s for s in sent if "FROM enrollments" in s]
        assert len(reads) == (1 if together else 3), sent  # together: one query for the block's students
        index = {uuid.UUID(c): i for i, c in enumerate(courses)}
        rows = await session.execute(select(CoursePair).where(CoursePair.course_id.in_(index)))
        pairs[together] = {(index[p.course_id], index[p.other_id]): p.co_admitted for (p,) in rows}
    expected = {(a, b): 1 for a in range(3) for b in range(3) if a != b}
    assert pairs[True] == expected
    assert pairs[False] == expected
