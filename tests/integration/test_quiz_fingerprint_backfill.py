"""Migration 0020: attempts from before 0019 take the fingerprint of the quiz they answered (explore22 F2: a null
fingerprint counted against every later version, so a student out of attempts stayed out after a rewrite)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from smartcourse.domain.courses import quiz_fingerprint
from smartcourse.migrations import alembic_config
from tests.conftest import scratch_database
from tests.integration import migration_rows


@pytest.fixture
async def scratch(settings: Any) -> AsyncIterator[tuple[str, AsyncEngine]]:
    """A database of its own, migrated to 0019 (the revision before)."""
    async with scratch_database(settings, "fp_backfill", revision="0019") as found:
        yield found


async def test_old_attempts_take_the_fingerprint_of_the_live_quiz(scratch: tuple[str, AsyncEngine]) -> None:
    url, engine = scratch
    teacher, student = uuid.uuid4(), uuid.uuid4()
    course, enrollment, quiz, gone = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    live_quiz = {
        "id": str(quiz),
        "type": "quiz",
        "title": "Check",
        "questions": [{"prompt": "Été ?", "options": ["a", "b"], "answer": 1}],
        "pass_score": 60,
    }
    old_quiz = {**live_quiz, "questions": [{"prompt": "Older", "options": ["a", "b"], "answer": 0}]}
    snapshots = {1: old_quiz, 2: live_quiz}
    async with engine.begin() as conn:
        await migration_rows.users(conn, {teacher: "instructor", student: "student"})
        await migration_rows.published_course(conn, course, teacher, content_version=2)
        await conn.execute(
            text(
                "insert into enrollments (id, student_id, course_id, status, attempt) "
                "values (:id, :student, :course, 'active', 1)"
            ),
            {"id": enrollment, "student": student, "course": course},
        )
        for version, lesson in snapshots.items():
            body = {"modules": [{"id": str(uuid.uuid4()), "title": "M", "lessons": [lesson]}], "materials": []}
            await conn.execute(
                text(
                    "insert into documents (collection, id, body) values ('course_versions', :id, cast(:body as jsonb))"
                ),
                {"id": f"{course}:v{version}", "body": json.dumps(body)},
            )
        for n, (lesson_id, fingerprint) in enumerate(((quiz, None), (quiz, None), (quiz, "kept"), (gone, None)), 1):
            await conn.execute(
                text(
                    "insert into quiz_attempts (id, enrollment_id, student_id, lesson_id, attempt, answers, score, "
                    "passed, quiz_fingerprint) values (:id, :eid, :student, :lesson, :n, '[0]', 0, false, :fp)"
                ),
                {
                    "id": uuid.uuid4(),
                    "eid": enrollment,
                    "student": student,
                    "lesson": lesson_id,
                    "n": n,
                    "fp": fingerprint,
                },
            )

    await asyncio.to_thread(command.upgrade, alembic_config(url), "0020")
    async with engine.connect() as conn:
        rows = [tuple(r) for r in await conn.execute(text("select attempt, quiz_fingerprint from quiz_attempts"))]
    assert sorted(rows) == [(1, quiz_fingerprint(live_quiz)), (2, quiz_fingerprint(live_quiz)), (3, "kept"), (4, None)]
    assert quiz_fingerprint(live_quiz) != quiz_fingerprint(old_quiz)
