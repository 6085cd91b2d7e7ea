"""`Consumer.together`: the events of one transaction (a relay round, a Kafka fetch, a Lambda batch) move the analytics
counters and the course popularity once, in one statement per table, by the sum of their effects (PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, select

from smartcourse.models import AnalyticsCounter, CoursePopularity
from smartcourse.services.analytics import CONSUMER as analytics
from smartcourse.services.recommendations import CONSUMER as recommendations
from tests.conftest import Api


def _admission(course_id: str) -> dict[str, Any]:
    data = {
        "enrollment_id": str(uuid.uuid4()),
        "student_id": str(uuid.uuid4()),
        "course_id": course_id,
        "admitted_at": datetime.now(UTC).isoformat(),
    }
    return {"event_id": str(uuid.uuid4()), "event_type": "enrollment.created", "data": data}


async def _apply(container: Any, envelopes: list[dict[str, Any]], *, together: bool) -> list[str]:
    """Both consumers' effects in one transaction each; returns the statements that transaction sent."""
    statements: list[str] = []
    for consumer in (analytics, recommendations):
        async with container.sessionmaker() as session, session.begin():
            mine = (await session.connection()).sync_connection

            def seen(conn: Any, cursor: Any, statement: str, *_: Any, mine: Any = mine) -> None:
                if conn is mine:
                    statements.append(statement)

            event.listen(container.engine.sync_engine, "before_cursor_execute", seen)
            try:
                if together:
                    async with consumer.together(session):
                        for envelope in envelopes:
                            await consumer.apply(session, envelope)
                else:
                    for envelope in envelopes:
                        await consumer.apply(session, envelope)
            finally:
                event.remove(container.engine.sync_engine, "before_cursor_execute", seen)
    return statements


async def _counts(container: Any, course_id: str) -> tuple[float | None, int | None]:
    async with container.sessionmaker() as session:
        enrolled = await session.scalar(
            select(AnalyticsCounter.value).where(
                AnalyticsCounter.metric == "course_enrollments", AnalyticsCounter.bucket == course_id
            )
        )
        admissions = await session.scalar(
            select(CoursePopularity.admissions).where(CoursePopularity.course_id == uuid.UUID(course_id))
        )
    return enrolled, admissions


async def test_a_batch_of_admissions_moves_each_counter_once_by_their_sum(container: Any, api: Api) -> None:
    course_id = (await api.course(await api.user("instructor")))["id"]  # popularity rows need a real course
    statements = await _apply(container, [_admission(course_id) for _ in range(5)], together=True)
    assert await _counts(container, course_id) == (5, 5)
    counters = [s for s in statements if "analytics_counters" in s]
    popularity = [s for s in statements if s.lstrip().upper().startswith("INSERT INTO COURSE_POPULARITY")]
    assert len(counters) == 1 and len(popularity) == 1, statements  # one statement each for the five events

    # One by one (a single event's transaction, as `Consumer.handle` runs it): the same sums, a statement each.
    statements = await _apply(container, [_admission(course_id) for _ in range(3)], together=False)
    assert await _counts(container, course_id) == (8, 8)
    assert len([s for s in statements if "analytics_counters" in s]) == 3


async def test_nothing_deferred_is_written_when_the_block_fails(container: Any) -> None:
    course_id = str(uuid.uuid4())
    try:
        async with container.sessionmaker() as session, session.begin():
            async with analytics.together(session):
                await analytics.apply(session, _admission(course_id))
                raise RuntimeError("the next effect failed")
    except RuntimeError:
        pass
    assert await _counts(container, course_id) == (None, None)
