"""A Redis client of the API (the container's, the rate limiter's) survives a connection the server closed while
the process was idle: the command goes again on a new connection (config.redis_retry; explore33 F3: a warm Lambda
container let a login through without its rate limit after a Redis failover)."""

from __future__ import annotations

import uuid
from typing import Any

from smartcourse.ratelimit import RateLimiter


def _kill_clients(container: Any) -> None:
    """What a Redis restart or failover does to the pooled connections: the server closes them. From a blocking
    client, so this loop does not run meanwhile and its transports have not read the EOF when the next command is
    sent: as in a Lambda container frozen between two invocations."""
    import redis

    killer = redis.Redis.from_url(container.settings.redis_url)
    try:
        assert int(killer.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")) >= 1
    finally:
        killer.close()


async def test_the_containers_client_goes_on_after_its_connection_was_closed(container: Any) -> None:
    key = f"reconnect-{uuid.uuid4().hex}"
    client = container.redis()
    assert await client.set(key, "1")
    _kill_clients(container)
    assert await client.get(key) == "1"
    await client.delete(key)


async def test_the_rate_limiter_still_counts_after_its_connection_was_closed(container: Any) -> None:
    limiter = RateLimiter.from_redis_url(container.settings.redis_url)
    key = ["reconnect", uuid.uuid4().hex]
    assert (await limiter.hit(key, "2/minute")).allowed
    _kill_clients(container)
    assert (await limiter.hit(key, "2/minute")).allowed  # counted, not let through on a storage error
    assert not (await limiter.hit(key, "2/minute")).allowed
