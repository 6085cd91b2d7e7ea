"""Alembic environment: runs migrations on the async engine."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Collection, Mapping
from typing import Any

from alembic import context
from alembic.migration import MigrationContext, MigrationInfo
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from smartcourse.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    """The URL `upgrade_head(url)` was given; DATABASE_URL only for the plain `alembic` CLI."""
    return config.get_main_option("sqlalchemy.url") or os.environ.get("DATABASE_URL") or ""


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def _applied(ctx: MigrationContext, step: MigrationInfo, heads: Collection[Any], run_args: Mapping[str, Any]) -> None:
    """Each migration applied, in `config.attributes["applied"]` (`upgrade_head` says which: explore58 F10)."""
    revision = step.up_revision
    if step.is_upgrade and revision is not None:
        doc = (getattr(revision, "doc", "") or "").strip().splitlines()  # a Script (it has one), typed as Revision
        config.attributes.setdefault("applied", []).append(f"{revision.revision} ({doc[0] if doc else ''})")


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection, target_metadata=target_metadata, compare_type=True, on_version_apply=_applied
    )
    with context.begin_transaction():
        # One migrator at a time, even when several processes start together.
        context.execute("select pg_advisory_xact_lock(7351642)")
        context.run_migrations()


async def run_migrations_online() -> None:
    engine = create_async_engine(_url(), poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
