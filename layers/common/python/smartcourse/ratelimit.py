"""Rate limits and login back-off over Redis: moving windows (the `limits` library) and growing lockouts.

Usage from a handler or service::

    limiter = rate_limiter(container)
    decision = await limiter.hit(("login", "ip", client_ip), "20/minute")
    enforce(decision)              # raises RateLimited (429, Retry-After) when not allowed

or as a FastAPI dependency: ``@router.post(..., dependencies=[limit("ai", "30/minute")])``.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.exceptions import RedisError

from smartcourse.config import REDIS_TIMEOUT_SECONDS
from smartcourse.errors import RateLimited

# `container` below is the composition root's Container (settings + redis()); typed loosely so this module,
# which services use, does not import the bootstrap.
Container = Any

KEY_PREFIX = "smartcourse:rl"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decision:
    """The answer to one hit: allowed, else how long to wait before the next attempt can succeed.

    `checked` is False when the store could not be asked (the request is let through): a caller with more to ask
    of the store in the same request can skip it instead of waiting for the timeout again."""

    allowed: bool
    retry_after_seconds: int = 0
    limit: str = ""
    checked: bool = True


ALLOWED = Decision(allowed=True)
#: The store was unreachable (or did not answer in time): let the request through.
UNCHECKED = Decision(allowed=True, checked=False)


def limits_uri(redis_url: str) -> str:
    """Map a redis-py URL (redis://, rediss://, unix://) to the `limits` storage scheme."""
    if redis_url.startswith("unix://"):
        return "async+redis+unix://" + redis_url.removeprefix("unix://")
    if redis_url.startswith(("redis://", "rediss://")):
        return "async+" + redis_url
    raise ValueError(f"unsupported redis URL for rate limiting: {redis_url.split(':', 1)[0]}://")


def key_part(value: str) -> str:
    """A key component safe for Redis keys and free of personal data (emails, addresses are hashed)."""
    return hashlib.sha256(value.strip().lower().encode()).hexdigest()[:32]


class RateLimiter:
    """Moving-window limits (e.g. "5/minute", or "5/minute;100/hour": every window must allow the hit)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._strategy = MovingWindowRateLimiter(storage)

    @classmethod
    def from_redis_url(cls, redis_url: str) -> RateLimiter:
        return cls(
            RedisStorage(
                limits_uri(redis_url),
                implementation="redispy",
                key_prefix=KEY_PREFIX,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            )
        )

    @classmethod
    def in_memory(cls) -> RateLimiter:
        """A process-local limiter (unit tests, single-process tools)."""
        return cls(MemoryStorage())

    async def hit(self, key_parts: Sequence[str], limit: str | Sequence[RateLimitItem], *, cost: int = 1) -> Decision:
        """Count one request against every window of `limit`; refused hits are not counted.

        Fails open: with the limit store unreachable the request is allowed (and a warning logged), so a
        Redis outage degrades protection instead of taking the API down. A hung store costs at most
        REDIS_TIMEOUT_SECONDS per call (the client's connect and read timeouts).
        """
        try:
            return await self._hit(key_parts, limit, cost)
        except Exception:  # storage errors come in several types (connection, timeout, script)
            log.warning("rate limit store unavailable; allowing %s", key_parts[0] if key_parts else "?", exc_info=True)
            return UNCHECKED

    async def _hit(self, key_parts: Sequence[str], limit: str | Sequence[RateLimitItem], cost: int) -> Decision:
        items = parse_many(limit) if isinstance(limit, str) else list(limit)
        parts = [str(p) for p in key_parts]
        for item in items:
            if not await self._strategy.test(item, *parts, cost=cost):
                return await self._refusal(item, parts)
        for item in items:
            if not await self._strategy.hit(item, *parts, cost=cost):  # lost a race with another request
                return await self._refusal(item, parts)
        return ALLOWED

    async def _refusal(self, item: RateLimitItem, parts: list[str]) -> Decision:
        stats = await self._strategy.get_window_stats(item, *parts)
        wait = max(1, math.ceil(stats.reset_time - time.time()))
        return Decision(allowed=False, retry_after_seconds=wait, limit=str(item))

    async def clear(self, key_parts: Sequence[str], limit: str) -> None:
        for item in parse_many(limit):
            await self._strategy.clear(item, *[str(p) for p in key_parts])


class Backoff:
    """Exponential lockout after consecutive failures (login): `free` failures, then base·2^(n-free) s, capped.

    A success clears the count. The lock is checked before any password work, so a locked account
    answers 429 even to the right password until the lock expires.

    Fails open like `RateLimiter.hit`: with Redis unreachable (or not answering within the client's socket
    timeout) `check` and `failure` allow the attempt (`checked=False`), `success` does nothing, and a warning is
    logged; the back-off is lost for the outage, the login is not.
    """

    def __init__(
        self, redis: Any, *, free: int = 5, base_seconds: int = 2, max_seconds: int = 900, memory_seconds: int = 86400
    ) -> None:
        self.redis = redis
        self.free, self.base, self.max, self.memory = free, base_seconds, max_seconds, memory_seconds

    def _keys(self, key_parts: Sequence[str]) -> tuple[str, str]:
        k = ":".join(str(p) for p in key_parts)
        return f"{KEY_PREFIX}:fail:{k}", f"{KEY_PREFIX}:lock:{k}"

    async def check(self, key_parts: Sequence[str]) -> Decision:
        _, lock = self._keys(key_parts)
        try:
            ttl = int(await self.redis.pttl(lock))
        except (RedisError, OSError):
            return _store_unavailable("check")
        if ttl > 0:
            return Decision(allowed=False, retry_after_seconds=max(1, math.ceil(ttl / 1000)), limit="backoff")
        return ALLOWED

    async def failure(self, key_parts: Sequence[str]) -> Decision:
        """Record a failure; returns the lockout it starts (allowed=True while still within the free tries)."""
        fails, lock = self._keys(key_parts)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.incr(fails)
                pipe.expire(fails, self.memory)
                count, _ = await pipe.execute()
            over = int(count) - self.free
            if over <= 0:
                return ALLOWED
            seconds = min(self.max, self.base * 2 ** min(over - 1, 30))
            await self.redis.set(lock, "1", ex=seconds)
        except (RedisError, OSError):
            return _store_unavailable("failure")
        return Decision(allowed=False, retry_after_seconds=seconds, limit="backoff")

    async def success(self, key_parts: Sequence[str]) -> None:
        try:
            await self.redis.delete(*self._keys(key_parts))
        except (RedisError, OSError):
            _store_unavailable("success")


def _store_unavailable(step: str) -> Decision:
    log.warning("login back-off store unavailable; allowing the login (%s)", step, exc_info=True)
    return UNCHECKED


def rate_limited_error(decision: Decision, message: str = "too many requests; retry later") -> RateLimited:
    """The 429 for a refused decision, carrying its Retry-After header."""
    return RateLimited(
        message,
        code="rate_limited",
        details={"retry_after_seconds": decision.retry_after_seconds, "limit": decision.limit},
        headers={"Retry-After": str(decision.retry_after_seconds)},
    )


def enforce(decision: Decision, message: str = "too many requests; retry later") -> None:
    """Raise 429 `rate_limited` (with Retry-After) unless the decision allows the request."""
    if not decision.allowed:
        raise rate_limited_error(decision, message)


_cached: tuple[Container, RateLimiter] | None = None


def rate_limiter(container: Container) -> RateLimiter:
    """The limiter over the container's Redis (built once per container, i.e. per process and event loop)."""
    global _cached
    if _cached is None or _cached[0] is not container:
        container.redis()  # resolves settings.redis_url (starts the embedded Redis when unset)
        _cached = (container, RateLimiter.from_redis_url(container.settings.redis_url or ""))
    return _cached[1]


def backoff(container: Container) -> Backoff:
    s = container.settings
    return Backoff(
        container.redis(),
        free=s.login_free_failures,
        base_seconds=s.login_backoff_base_seconds,
        max_seconds=s.login_backoff_max_seconds,
    )


def client_ip(request: Any) -> str:
    """The peer address (forwarded headers are not trusted: a proxy deployment sets the ASGI client itself)."""
    client = getattr(request, "client", None)
    return str(client.host) if client and client.host else "unknown"
