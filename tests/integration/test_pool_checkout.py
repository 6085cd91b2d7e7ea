"""The pool hands out live connections without a round trip per checkout (db.check_on_checkout, issue #7).

SQLAlchemy's pre-ping cost the asyncpg dialect three round trips per checkout; instead a connection whose socket
the server closed is replaced for free, and only a connection idle past the window is pinged.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from smartcourse.db import check_on_checkout, make_engine


@pytest.fixture
async def one_connection(settings: Any) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(settings.database_url, pool_size=1, max_overflow=0, application_name="pool-checkout-test")
    try:
        yield engine
    finally:
        await engine.dispose()


async def _backend(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(text("SELECT pg_backend_pid()")))


async def test_a_connection_the_server_ended_is_replaced_before_use(
    one_connection: AsyncEngine, container: Any
) -> None:
    first = await _backend(one_connection)
    assert await _backend(one_connection) == first  # pooled: the same session again
    async with container.engine.connect() as admin:
        assert await admin.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
    await asyncio.sleep(0.5)  # the pooled connection's loop reads the server's EOF
    # No error: the closed connection is dropped at checkout and a new one opened.
    second = await _backend(one_connection)
    assert second != first
    assert await _backend(one_connection) == second


class Pings(list[int]):
    """One entry per ping of a connection of the engines `watch`ed: the suite's own engine (its relay and dispatcher
    run in this process) pings too, once `new_invocation` has moved on, and was counted (a flaky [1, 1])."""

    def __init__(self) -> None:
        super().__init__()
        self.watched: set[int] = set()

    def watch(self, engine: AsyncEngine) -> AsyncEngine:
        event.listen(engine.sync_engine, "connect", lambda dbapi, _record: self.watched.add(id(dbapi)))
        return engine


@pytest.fixture
def pings(monkeypatch: pytest.MonkeyPatch) -> Pings:
    counted = Pings()
    real_ping = AsyncAdapt_asyncpg_connection.ping

    def counting_ping(self: AsyncAdapt_asyncpg_connection) -> None:
        if id(self) in counted.watched:
            counted.append(1)
        real_ping(self)

    monkeypatch.setattr(AsyncAdapt_asyncpg_connection, "ping", counting_ping)
    return counted


async def test_only_a_connection_idle_past_the_window_is_pinged(settings: Any, pings: Pings) -> None:
    engine = pings.watch(create_async_engine(settings.database_url, pool_size=1, max_overflow=0))
    check_on_checkout(engine, ping_after_idle=0.3)
    try:
        for _ in range(5):
            await _backend(engine)  # used moments ago each time: no ping
        assert pings == []
        await asyncio.sleep(0.5)
        await _backend(engine)  # idle past the window: pinged once
        assert pings == [1]
    finally:
        await engine.dispose()


async def test_a_connections_first_checkout_in_a_lambda_invocation_is_pinged(
    settings: Any, pings: Pings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """explore33 F3: between two invocations a Lambda container is frozen and its loop never reads the EOF of a
    connection the server closed; one used moments before failed the next invocation's first statement."""
    from smartcourse import db

    monkeypatch.setattr(db, "_invocation", 0)
    engine = pings.watch(create_async_engine(settings.database_url, pool_size=1, max_overflow=0))
    check_on_checkout(engine, ping_after_idle=60)
    try:
        await _backend(engine)
        db.new_invocation()
        for _ in range(3):
            await _backend(engine)  # the first checkout of the invocation only
        assert pings == [1]
        db.new_invocation()
        await _backend(engine)
        assert pings == [1, 1]
    finally:
        await engine.dispose()
