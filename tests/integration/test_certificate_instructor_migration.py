"""Migration 0029: a certificate keeps its course's instructor's name as it was at issue (explore62 F8); those issued
before are given the name as it is at the upgrade."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from smartcourse.migrations import alembic_config
from tests.conftest import scratch_database
from tests.integration import migration_rows


@pytest.fixture
async def scratch(settings: Any) -> AsyncIterator[tuple[str, AsyncEngine]]:
    async with scratch_database(settings, "certificate_instructor", revision="0028") as found:
        yield found


async def test_issued_certificates_are_given_their_instructors_name(scratch: tuple[str, AsyncEngine]) -> None:
    url, engine = scratch
    teacher, student, course, enrollment = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    async with engine.begin() as conn:
        await migration_rows.users(conn, {teacher: "instructor", student: "student"})
        await conn.execute(text("update users set full_name = 'Grace Hopper' where id = :id"), {"id": teacher})
        await migration_rows.published_course(conn, course, teacher)
        await conn.execute(
            text(
                "insert into enrollments (id, student_id, course_id, status, attempt) "
                "values (:id, :student, :course, 'completed', 1)"
            ),
            {"id": enrollment, "student": student, "course": course},
        )
        await conn.execute(
            text(
                "insert into certificates (id, enrollment_id, student_id, course_id, code, student_name, course_title) "
                "values (:id, :eid, :who, :course, 'SC-AAAA-AAAA-AAAA-AAAA', 'A user', 'C')"
            ),
            {"id": uuid.uuid4(), "eid": enrollment, "who": student, "course": course},
        )
    await asyncio.to_thread(command.upgrade, alembic_config(url), "0029")
    async with engine.begin() as conn:
        assert await conn.scalar(text("select instructor_name from certificates")) == "Grace Hopper"
    await asyncio.to_thread(command.downgrade, alembic_config(url), "0028")
    async with engine.begin() as conn:
        columns = await conn.scalar(
            text(
                "select count(*) from information_schema.columns where table_name = 'certificates' "
                "and column_name = 'instructor_name'"
            )
        )
        assert columns == 0
