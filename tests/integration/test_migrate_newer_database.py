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
        # The way out it names is one command (explore58 F11: `alembic stamp head` needed the server by hand).
        assert "`smartcourse migrate --stamp-head`" in message
        done = await migrate_cli(url, "--stamp-head")
        assert done.returncode == 0 and done.stdout.startswith("recorded "), done
        done = await migrate_cli(url)
        assert done.returncode == 0 and "database is at the latest migration" in done.stdout, done


async def test_create_admin_on_a_database_that_does_not_exist_says_it_could_not_connect(settings: Any) -> None:
    """explore52 N4: a DATABASE_URL naming no database (or no role) was "the database refused the account"."""
    import os
    import subprocess
    import sys

    from sqlalchemy import make_url

    from tests.conftest import REPO

    url = make_url(settings.database_url).set(database="no_such_database_x52").render_as_string(hide_password=False)
    done = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "smartcourse.cli",
            "create-admin",
            "--email",
            "a@example.com",
            "--password",
            "xylophone-zebra-12",
        ],
        env={**os.environ, "DATABASE_URL": url},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith("error: could not connect to the database "), done.stderr
    assert "no_such_database_x52" in done.stderr
