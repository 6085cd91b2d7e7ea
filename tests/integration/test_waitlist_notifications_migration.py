"""Migration 0024: notifications may be `waitlist.joined` and `waitlist.passed_over`; its downgrade deletes them (the
old CHECK refuses them)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from smartcourse.migrations import alembic_config
from tests.conftest import scratch_database


@pytest.fixture
async def scratch(settings: Any) -> AsyncIterator[tuple[str, AsyncEngine]]:
    """A database of its own, migrated to 0023 (the revision before)."""
    async with scratch_database(settings, "waitlist_kinds", revision="0023") as found:
        yield found


async def _notify(engine: AsyncEngine, user: uuid.UUID, kind: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "insert into notifications (id, user_id, kind, title, body, data, dedupe_key, email_status) "
                "values (:id, :user, :kind, 't', 'b', '{}', :key, 'none')"
            ),
            {"id": uuid.uuid4(), "user": user, "kind": kind, "key": f"k-{uuid.uuid4()}"},
        )


async def test_the_kinds_come_with_0024_and_go_with_its_downgrade(scratch: tuple[str, AsyncEngine]) -> None:
    url, engine = scratch
    user = uuid.uuid4()
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "insert into users (id, email, password_hash, full_name, role) "
                "values (:id, 'w@example.com', 'x', 'W', 'student')"
            ),
            {"id": user},
        )
    for kind in ("waitlist.joined", "waitlist.passed_over"):
        with pytest.raises(IntegrityError):  # 0023's CHECK refuses the new kinds
            await _notify(engine, user, kind)
    await asyncio.to_thread(command.upgrade, alembic_config(url), "0024")
    for kind in ("waitlist.joined", "waitlist.passed_over", "publish_failed"):
        await _notify(engine, user, kind)
    await asyncio.to_thread(command.downgrade, alembic_config(url), "0023")
    async with engine.connect() as conn:
        kinds = (await conn.execute(text("select kind from notifications order by kind"))).scalars().all()
    assert kinds == ["publish_failed"]
    await asyncio.to_thread(command.upgrade, alembic_config(url), "head")
