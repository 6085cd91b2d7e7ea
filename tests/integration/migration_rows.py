"""Rows the migration tests write by hand in a scratch database at an older revision (no ORM: its models are the
newest schema's)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text


async def users(conn: Any, roles: dict[uuid.UUID, str]) -> None:
    """One account per id, with its role."""
    for uid, role in roles.items():
        await conn.execute(
            text(
                "insert into users (id, email, password_hash, full_name, role) "
                "values (:id, :email, 'x', 'A user', :role)"
            ),
            {"id": uid, "email": f"{uid}@example.com", "role": role},
        )


async def published_course(conn: Any, course: uuid.UUID, teacher: uuid.UUID, *, content_version: int = 0) -> None:
    """A published course of `teacher` (live versions: `content_version`)."""
    await conn.execute(
        text(
            "insert into courses (id, instructor_id, title, description, category, tags, waitlist_enabled, status, "
            "content_version) values (:id, :teacher, 'C', '', 'c', '{}', false, 'published', :version)"
        ),
        {"id": course, "teacher": teacher, "version": content_version},
    )
