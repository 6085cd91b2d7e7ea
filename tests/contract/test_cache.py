"""Cache contract (redis-py): the embedded redis-server and the stack's Redis answer the same."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.engines import require_engine


@pytest.fixture(params=["embedded", "stack"])
async def redis(request: pytest.FixtureRequest, settings: Any) -> AsyncIterator[Any]:
    import redis.asyncio as aioredis

    if request.param == "embedded":
        from smartcourse.bootstrap import resolve_settings

        url = resolve_settings(settings, need=("redis",)).redis_url or ""
        assert url.startswith("unix://")
    else:
        url = require_engine("redis")
    client = aioredis.from_url(url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def key() -> str:
    return f"contract:{uuid.uuid4().hex}"


async def test_set_get_delete(redis: Any, key: str) -> None:
    assert await redis.get(key) is None
    assert await redis.set(key, "välue ✓") is True
    assert await redis.get(key) == "välue ✓"
    assert await redis.delete(key) == 1
    assert await redis.get(key) is None


async def test_expiry(redis: Any, key: str) -> None:
    await redis.set(key, "v", px=300)
    assert 0 < await redis.pttl(key) <= 300
    await redis.set(key + ":long", "v", ex=60)
    assert 55 <= await redis.ttl(key + ":long") <= 60
    assert await redis.ttl(key + ":missing") == -2
    await asyncio.sleep(0.5)
    assert await redis.get(key) is None
    assert await redis.expire(key + ":long", 1) is True
    await asyncio.sleep(1.2)
    assert await redis.exists(key + ":long") == 0


async def test_set_nx_claims_an_idempotency_key_once(redis: Any, key: str) -> None:
    """The idempotency-key pattern: the first request claims the key, replays see it taken."""
    first = await redis.set(key, "request-1", nx=True, ex=30)
    second = await redis.set(key, "request-2", nx=True, ex=30)
    assert first is True and second is None
    assert await redis.get(key) == "request-1"
    results = await asyncio.gather(*(redis.set(key + ":race", f"r{i}", nx=True, ex=30) for i in range(20)))
    assert results.count(True) == 1 and results.count(None) == 19


async def test_set_nx_is_free_again_after_expiry(redis: Any, key: str) -> None:
    assert await redis.set(key, "a", nx=True, px=200) is True
    await asyncio.sleep(0.4)
    assert await redis.set(key, "b", nx=True, px=200) is True
    assert await redis.get(key) == "b"


async def test_counters_are_atomic(redis: Any, key: str) -> None:
    await asyncio.gather(*(redis.incr(key) for _ in range(50)))
    assert await redis.get(key) == "50"
    await redis.delete(key)
