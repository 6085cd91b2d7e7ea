"""Migration 0025: a completion whose certificate was revoked is marked on its enrollment and no longer holds the
student's place (explore36 F3); the downgrade refuses while a retake stands beside it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
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
    async with scratch_database(settings, "revoked_completion", revision="0024") as found:
        yield found


async def _enroll(conn: Any, eid: uuid.UUID, student: uuid.UUID, course: uuid.UUID, status: str, attempt: int) -> None:
    await conn.execute(
        text(
            "insert into enrollments (id, student_id, course_id, status, attempt) "
            "values (:id, :student, :course, :status, :attempt)"
        ),
        {"id": eid, "student": student, "course": course, "status": status, "attempt": attempt},
    )


async def test_revoked_completions_are_marked_and_free_the_place(scratch: tuple[str, AsyncEngine]) -> None:
    url, engine = scratch
    teacher, student, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    course = uuid.uuid4()
    revoked, valid = uuid.uuid4(), uuid.uuid4()
    at = datetime(2026, 1, 2, tzinfo=UTC)
    async with engine.begin() as conn:
        await migration_rows.users(conn, {teacher: "instructor", student: "student", other: "student"})
        await migration_rows.published_course(conn, course, teacher)
        await _enroll(conn, revoked, student, course, "completed", 1)
        await _enroll(conn, valid, other, course, "completed", 1)
        for cid, eid, who, when, reason in (
            (1, revoked, student, at, "issued in error"),
            (2, valid, other, None, None),
        ):
            await conn.execute(
                text(
                    "insert into certificates (id, enrollment_id, student_id, course_id, code, student_name, "
                    "course_title, revoked_at, revoked_reason) values (:id, :eid, :who, :course, :code, 'A user', "
                    "'C', :when, :reason)"
                ),
                {
                    "id": uuid.uuid4(),
                    "eid": eid,
                    "who": who,
                    "course": course,
                    "code": f"SC-AAAA-AAAA-AAAA-AAA{'AB'[cid - 1]}",
                    "when": when,
                    "reason": reason,
                },
            )
        with pytest.raises(IntegrityError):  # before: the revoked completion holds the place
            async with conn.begin_nested():
                await _enroll(conn, uuid.uuid4(), student, course, "pending", 2)

    await asyncio.to_thread(command.upgrade, alembic_config(url), "0025")
    async with engine.begin() as conn:
        marked = dict((await conn.execute(text("select id, completion_revoked_at from enrollments"))).tuples().all())
        assert marked == {revoked: at, valid: None}
        await _enroll(conn, uuid.uuid4(), student, course, "pending", 2)  # the retake
        with pytest.raises(IntegrityError):  # the valid completion still holds its place
            async with conn.begin_nested():
                await _enroll(conn, uuid.uuid4(), other, course, "pending", 2)
        with pytest.raises(IntegrityError):  # only a completion is revoked
            async with conn.begin_nested():
                await conn.execute(
                    text("update enrollments set status = 'active', completion_revoked_at = now() where id = :id"),
                    {"id": valid},
                )

    with pytest.raises(Exception, match="uq_enrollments_one_live"):  # the old index cannot hold both attempts
        await asyncio.to_thread(command.downgrade, alembic_config(url), "0024")
    async with engine.begin() as conn:
        await conn.execute(text("delete from enrollments where attempt = 2"))
    await asyncio.to_thread(command.downgrade, alembic_config(url), "0024")
    await asyncio.to_thread(command.upgrade, alembic_config(url), "head")
