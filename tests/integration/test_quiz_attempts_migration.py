"""Migration 0010: quiz attempts renumbered per student and quiz across enrollments, and back on downgrade."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from smartcourse.migrations import alembic_config
from tests.conftest import scratch_database
from tests.integration import migration_rows


@pytest.fixture
async def scratch(settings: Any) -> AsyncIterator[tuple[str, AsyncEngine]]:
    """A database of its own, migrated to 0009 (the revision before)."""
    async with scratch_database(settings, "quiz_migration", revision="0009") as found:
        yield found


async def test_attempts_are_renumbered_per_student_and_back(scratch: tuple[str, AsyncEngine]) -> None:
    url, engine = scratch
    teacher, student, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    course, quiz = uuid.uuid4(), uuid.uuid4()
    dropped, live, others = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    # The student's 2 attempts in a dropped enrollment, then 2 in the re-enrollment (numbered 1, 2 again before
    # 0010); another student's single attempt.
    attempts = [
        (uuid.uuid4(), dropped, 1, t0),
        (uuid.uuid4(), dropped, 2, t0 + timedelta(minutes=1)),
        (uuid.uuid4(), live, 1, t0 + timedelta(minutes=2)),
        (uuid.uuid4(), live, 2, t0 + timedelta(minutes=3)),
        (uuid.uuid4(), others, 1, t0 + timedelta(minutes=4)),
    ]
    async with engine.begin() as conn:
        await migration_rows.users(conn, {teacher: "instructor", student: "student", other: "student"})
        await migration_rows.published_course(conn, course, teacher)
        for eid, who, status, attempt in (
            (dropped, student, "dropped", 1),
            (live, student, "active", 2),
            (others, other, "active", 1),
        ):
            await conn.execute(
                text(
                    "insert into enrollments (id, student_id, course_id, status, attempt) "
                    "values (:id, :student, :course, :status, :attempt)"
                ),
                {"id": eid, "student": who, "course": course, "status": status, "attempt": attempt},
            )
        for aid, eid, n, at in attempts:
            await conn.execute(
                text(
                    "insert into quiz_attempts (id, enrollment_id, lesson_id, attempt, answers, score, passed, "
                    "submitted_at) values (:id, :eid, :quiz, :n, '[0]', 0, false, :at)"
                ),
                {"id": aid, "eid": eid, "quiz": quiz, "n": n, "at": at},
            )

    async def numbering(with_student: bool) -> list[tuple[Any, ...]]:
        cols = "id, student_id, attempt" if with_student else "id, attempt"
        async with engine.connect() as conn:
            return [
                tuple(r) for r in await conn.execute(text(f"select {cols} from quiz_attempts order by submitted_at"))
            ]

    await asyncio.to_thread(command.upgrade, alembic_config(url), "0010")
    assert await numbering(True) == [
        (attempts[0][0], student, 1),
        (attempts[1][0], student, 2),
        (attempts[2][0], student, 3),
        (attempts[3][0], student, 4),
        (attempts[4][0], other, 1),
    ]
    with pytest.raises(IntegrityError, match="uq_quiz_attempts_student_attempt"):
        async with engine.begin() as conn:  # attempt 1 again, in the other enrollment of the same student
            await conn.execute(
                text(
                    "insert into quiz_attempts (id, enrollment_id, student_id, lesson_id, attempt, answers, score, "
                    "passed) values (:id, :eid, :student, :quiz, 1, '[0]', 0, false)"
                ),
                {"id": uuid.uuid4(), "eid": live, "student": student, "quiz": quiz},
            )

    await asyncio.to_thread(command.downgrade, alembic_config(url), "0009")
    assert await numbering(False) == [(aid, n) for aid, _eid, n, _at in attempts]
