"""Migration 0022: notifications may be `publish_canceled`; its downgrade deletes them (the old CHECK refuses them)."""

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
    """A database of its own, migrated to 0021 (the revision before)."""
    async with scratch_database(settings, "canceled_kind", revision="0021") as found:
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


async def test_the_kind_comes_with_0022_and_goes_with_its_downgrade(scratch: tuple[str, AsyncEngine]) -> None:
    url, engine = scratch
    user = uuid.uuid4()
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "insert into users (id, email, password_hash, full_name, role) "
                "values (:id, 'i@example.com', 'x', 'I', 'instructor')"
            ),
            {"id": user},
        )
    with pytest.raises(IntegrityError):  # 0021's CHECK refuses the new kind
        await _notify(engine, user, "publish_canceled")
    await asyncio.to_thread(command.upgrade, alembic_config(url), "0022")
    await _notify(engine, user, "publish_canceled")
    await _notify(engine, user, "publish_failed")
    await asyncio.to_thread(command.downgrade, alembic_config(url), "0021")
    async with engine.connect() as conn:
        kinds = (await conn.execute(text("select kind from notifications order by kind"))).scalars().all()
    assert kinds == ["publish_failed"]
    await asyncio.to_thread(command.upgrade, alembic_config(url), "head")
