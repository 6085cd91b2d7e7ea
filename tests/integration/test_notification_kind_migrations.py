"""Migrations that add notification kinds: before them the CHECK refuses the kind, after them it is taken, and their
downgrade deletes the notifications of those kinds (the old CHECK refuses them). 0022: `publish_canceled`; 0024:
`waitlist.joined`, `waitlist.passed_over`; 0028: `publish_completed`."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from smartcourse.migrations import alembic_config
from tests.conftest import scratch_database


async def _notify(engine: AsyncEngine, user: uuid.UUID, kind: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "insert into notifications (id, user_id, kind, title, body, data, dedupe_key, email_status) "
                "values (:id, :user, :kind, 't', 'b', '{}', :key, 'none')"
            ),
            {"id": uuid.uuid4(), "user": user, "kind": kind, "key": f"k-{uuid.uuid4()}"},
        )


@pytest.mark.parametrize(
    ("before", "revision", "kinds"),
    [
        ("0021", "0022", ("publish_canceled",)),
        ("0023", "0024", ("waitlist.joined", "waitlist.passed_over")),
        ("0027", "0028", ("publish_completed",)),
    ],
)
async def test_the_kinds_come_with_the_migration_and_go_with_its_downgrade(
    settings: Any, before: str, revision: str, kinds: tuple[str, ...]
) -> None:
    async with scratch_database(settings, f"kinds_{revision}", revision=before) as (url, engine):
        user = uuid.uuid4()
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "insert into users (id, email, password_hash, full_name, role) "
                    "values (:id, 'k@example.com', 'x', 'K', 'instructor')"
                ),
                {"id": user},
            )
        for kind in kinds:
            with pytest.raises(IntegrityError):  # the revision before refuses the new kind
                await _notify(engine, user, kind)
        await asyncio.to_thread(command.upgrade, alembic_config(url), revision)
        for kind in (*kinds, "publish_failed"):
            await _notify(engine, user, kind)
        await asyncio.to_thread(command.downgrade, alembic_config(url), before)
        async with engine.connect() as conn:
            left = (await conn.execute(text("select kind from notifications order by kind"))).scalars().all()
        assert left == ["publish_failed"]
        await asyncio.to_thread(command.upgrade, alembic_config(url), "head")


async def test_an_upgrade_says_which_migrations_it_applied(settings: Any) -> None:
    """explore58 F10: `smartcourse migrate` said "database is at the latest migration" after applying one, the same
    as when there was nothing to do, and `run` migrated without a word."""
    from smartcourse.migrations import upgrade_head

    async with scratch_database(settings, "applied_0025", revision="0025") as (url, _engine):
        applied = await asyncio.to_thread(upgrade_head, url)
        assert [a.split(" ")[0] for a in applied][:3] == ["0026", "0027", "0028"], applied
        assert applied[0] == "0026 (E-mails waiting to go out, counted cheaply (explore55 F13).)", applied
        assert await asyncio.to_thread(upgrade_head, url) == []
