"""A release started on a database a newer release upgraded says what to do (explore22 F1: Alembic's traceback,
"Can't locate revision identified by '0019'", was all an operator rolling back got)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text

from smartcourse.migrations import DatabaseNewerThanCode, DatabaseNotRecorded, alembic_config, upgrade_head
from tests.conftest import migrate_cli, scratch_database


@pytest.fixture
async def newer(settings: Any) -> AsyncIterator[str]:
    """A database stamped with a migration this release does not have."""
    async with scratch_database(settings, "newer") as (url, engine):
        async with engine.begin() as conn:
            await conn.execute(text("create table alembic_version (version_num varchar(32) primary key)"))
            await conn.execute(text("insert into alembic_version values ('0999')"))
        yield url


async def test_upgrading_a_database_a_newer_release_migrated_is_refused_with_what_to_do(newer: str) -> None:
    head = ScriptDirectory.from_config(alembic_config(newer)).get_current_head()
    with pytest.raises(DatabaseNewerThanCode) as raised:
        await asyncio.to_thread(upgrade_head, newer)
    message = str(raised.value)
    assert "migration 0999" in message and f"its latest is {head}" in message
    assert "restore the backup" in message and "Upgrades and rollbacks" in message
    done = await migrate_cli(newer)
    assert done.returncode == 1, done
    assert done.stderr.strip().splitlines() == [f"error: {message}"], done.stderr


async def test_a_database_whose_migration_record_was_emptied_is_refused_with_what_to_do(settings: Any) -> None:
    """explore25 F5: every table there and `alembic_version` empty gave Alembic's DuplicateTableError traceback."""
    async with scratch_database(settings, "unrecorded") as (url, engine):
        await asyncio.to_thread(upgrade_head, url)
        async with engine.begin() as conn:
            await conn.execute(text("delete from alembic_version"))
        with pytest.raises(DatabaseNotRecorded) as raised:
            await asyncio.to_thread(upgrade_head, url)
        message = str(raised.value)
        assert "already exists" in message and "alembic_version" in message and "Restore the whole backup" in message
        done = await migrate_cli(url)
        assert done.returncode == 1, done
        assert done.stderr.strip().splitlines() == [f"error: {message}"], done.stderr
