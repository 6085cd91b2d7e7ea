"""Rate limits and login back-off over Redis: moving windows (the `limits` library) and growing lockouts.

Usage from a handler or service::

    limiter = rate_limiter(container)
    decision = await limiter.hit(("login", "ip", client_ip), "20/minute")
    enforce(decision)              # raises RateLimited (429, Retry-After) when not allowed

or as a FastAPI dependency: ``@router.post(..., dependencies=[limit("ai", "30/minute")])``.
"""

from __future__ import annotations

import asyncio
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

from smartcourse.config import REDIS_TIMEOUT_SECONDS, redis_retry
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
                retry=redis_retry(),
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

    async def quota_headers(self, key_parts: Sequence[str], limit: str | Sequence[RateLimitItem]) -> dict[str, str]:
        """What is left of `limit` for `key_parts`, as the response headers of draft-ietf-httpapi-ratelimit-headers:
        `RateLimit-Policy` (every window: "10;w=60, 200;w=86400"), and `RateLimit-Limit`, `RateLimit-Remaining`,
        `RateLimit-Reset` (seconds) of the window with the least left. Empty when the store cannot be asked (the
        request was let through: nothing is known)."""
        try:
            items = parse_many(limit) if isinstance(limit, str) else list(limit)
            parts = [str(p) for p in key_parts]
            found = await asyncio.gather(*(self._strategy.get_window_stats(item, *parts) for item in items))
            windows = list(zip(items, found, strict=True))
        except Exception:
            log.warning("rate limit store unavailable; no quota headers", exc_info=True)
            return {}
        if not windows:
            return {}
        item, stats = min(windows, key=lambda w: w[1].remaining)
        return {
            "RateLimit-Policy": ", ".join(f"{i.amount};w={i.get_expiry()}" for i, _ in windows),
            "RateLimit-Limit": str(item.amount),
            "RateLimit-Remaining": str(max(0, stats.remaining)),
            "RateLimit-Reset": str(max(0, math.ceil(stats.reset_time - time.time()))),
        }

    async def clear(self, key_parts: Sequence[str], limit: str) -> None:
        for item in parse_many(limit):
            await self._strategy.clear(item, *[str(p) for p in key_parts])


#: Reserve one login attempt (KEYS: failures, lock, attempts in flight; ARGV: free failures, attempt id, how long
#: a reservation may live in ms). Refused while locked ({0, lock ms}), or while the attempts in flight could, all
#: failing, take the count past the first lock ({0, 0}): `free` + 1 - failures of them, always at least one.
_RESERVE = """
local lock_ms = redis.call('PTTL', KEYS[2])
if lock_ms > 0 then return {0, lock_ms} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local failures = tonumber(redis.call('GET', KEYS[1]) or '0')
local room = math.max(tonumber(ARGV[1]) + 1 - failures, 1)
if redis.call('ZCARD', KEYS[3]) >= room then return {0, 0} end
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[3]), ARGV[2])
redis.call('PEXPIRE', KEYS[3], ARGV[3])
return {1, 0}
"""

#: Settle a failed attempt (KEYS as above; ARGV: attempt id, free, base s, max s, memory s): count it and, past the
#: free ones, lock for base·2^(n-free-1) s, at most max. Returns the lock's seconds (0: none).
_FAILURE = """
redis.call('ZREM', KEYS[3], ARGV[1])
local count = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[5])
local over = count - tonumber(ARGV[2])
if over <= 0 then return 0 end
local seconds = math.floor(math.min(tonumber(ARGV[4]), tonumber(ARGV[3]) * 2 ^ math.min(over - 1, 30)))
if seconds < 1 then seconds = 1 end
redis.call('SET', KEYS[2], '1', 'EX', seconds)
return seconds
"""


class Backoff:
    """Exponential lockout after consecutive failures (login): `free` failures, then base·2^(n-free) s, capped.

    A login `reserve`s its attempt before any password work, then settles it: `success` clears the count, `failure`
    counts it (and locks past the free ones), `release` (an error in between) just returns the reservation. A
    locked account answers 429 even to the right password until the lock expires; so do attempts beyond those
    that could still fail without reaching the lock while others are in flight, so concurrent guesses get no more
    password checks than sequential ones (`free` + 1 before the first lock, then one per lock).

    Fails open like `RateLimiter.hit`: with Redis unreachable (or not answering within the client's socket
    timeout) `check`, `reserve` and `failure` allow the attempt (`checked=False`), `success` and `release` do
    nothing, and a warning is logged; the back-off is lost for the outage, the login is not.
    """

    #: How long a reservation counts when its login never settles it (a process killed during the password check).
    attempt_ms = 60_000

    def __init__(
        self,
        redis: Any,
        *,
        free: int = 5,
        base_seconds: int = 2,
        max_seconds: int = 900,
        memory_seconds: int = 86400,
        device_seconds: int = 180 * 86400,
    ) -> None:
        self.redis = redis
        self.device_seconds = device_seconds  # a device token's life: how long a reset's mark must last
        self.free, self.base, self.max, self.memory = free, base_seconds, max_seconds, memory_seconds
        self._reserve = redis.register_script(_RESERVE)
        self._failure = redis.register_script(_FAILURE)

    def _keys(self, key_parts: Sequence[str]) -> tuple[str, str]:
        # The account in a hash tag ({...}): a script's keys must share a slot on a Redis Cluster (ElastiCache in
        # cluster mode refuses the script with CROSSSLOT otherwise).
        k = "{" + ":".join(str(p) for p in key_parts) + "}"
        return f"{KEY_PREFIX}:fail:{k}", f"{KEY_PREFIX}:lock:{k}"

    def _all_keys(self, key_parts: Sequence[str]) -> list[str]:
        """Failures, lock and the attempts in flight (one hash slot)."""
        fails, lock = self._keys(key_parts)
        return [fails, lock, fails.replace(":fail:", ":inflight:", 1)]

    async def check(self, key_parts: Sequence[str]) -> Decision:
        """Whether the key is locked now (a look only: a login uses `reserve`)."""
        _, lock = self._keys(key_parts)
        try:
            ttl = int(await self.redis.pttl(lock))
        except (RedisError, OSError):
            return _store_unavailable("check")
        if ttl > 0:
            return Decision(allowed=False, retry_after_seconds=max(1, math.ceil(ttl / 1000)), limit="backoff")
        return ALLOWED

    async def reserve(self, key_parts: Sequence[str], attempt: str) -> Decision:
        """Reserve attempt `attempt` (an id unique to it) before checking the password, atomically with the check
        of the lock; settle it after with `success`, `failure` or `release`. Refused (429) while locked, or while
        too many attempts are in flight (Retry-After 1 s: they settle within a password check)."""
        try:
            allowed, lock_ms = await self._reserve(
                keys=self._all_keys(key_parts), args=[self.free, attempt, self.attempt_ms]
            )
        except (RedisError, OSError):
            return _store_unavailable("reserve")
        if int(allowed):
            return ALLOWED
        return Decision(allowed=False, retry_after_seconds=max(1, math.ceil(int(lock_ms) / 1000)), limit="backoff")

    async def failure(self, key_parts: Sequence[str], attempt: str = "") -> Decision:
        """Record a failure (settling `attempt`); returns the lockout it starts (allowed=True while still within
        the free tries)."""
        try:
            seconds = int(
                await self._failure(
                    keys=self._all_keys(key_parts), args=[attempt, self.free, self.base, self.max, self.memory]
                )
            )
        except (RedisError, OSError):
            return _store_unavailable("failure")
        if seconds <= 0:
            return ALLOWED
        return Decision(allowed=False, retry_after_seconds=seconds, limit="backoff")

    async def success(self, key_parts: Sequence[str], attempt: str = "") -> None:
        """Clear the failures and the lock (settling `attempt`; other attempts in flight stay reserved)."""
        fails, lock, inflight = self._all_keys(key_parts)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.zrem(inflight, attempt or "-")
                pipe.delete(fails, lock)
                await pipe.execute()
        except (RedisError, OSError):
            _store_unavailable("success")

    def _devices_key(self, account: str) -> str:
        return f"{KEY_PREFIX}:devices-reset:{{login:{account}}}"

    async def forget_devices(self, account: str) -> None:
        """The account's password was reset: its device tokens issued before now count as unknown devices (their
        back-offs, which the owner's own wrong guesses may have started, are left behind). Kept as long as a device
        token lives."""
        try:
            await self.redis.set(self._devices_key(account), str(time.time()), ex=max(1, self.device_seconds))
        except (RedisError, OSError):
            _store_unavailable("forget_devices")

    async def device_forgotten(self, account: str, issued_at: float) -> bool:
        """Whether a device token of the account issued at `issued_at` predates its last password reset."""
        try:
            reset_at = await self.redis.get(self._devices_key(account))
        except (RedisError, OSError):
            _store_unavailable("device_forgotten")
            return False
        return reset_at is not None and issued_at < float(reset_at)

    async def release(self, key_parts: Sequence[str], attempt: str) -> None:
        """Give back a reservation that was neither a success nor a failure (the login failed otherwise)."""
        try:
            await self.redis.zrem(self._all_keys(key_parts)[2], attempt)
        except (RedisError, OSError):
            _store_unavailable("release")


#: Take one of `limit` holds of a key (KEYS: the holds in flight; ARGV: limit, hold id, how long a hold may live in
#: ms): 1 if taken, 0 if `limit` are held. A hold not released (its process killed) lapses after its time.
_HOLD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""


#: Keep a hold alive (KEYS: the holds; ARGV: hold id, how long from now in ms): 1 if it was still held.
_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""


class InFlight:
    """At most N of something in flight per key, across processes (the assistant's generations per user: one caller
    held every slot of every process within their quota, explore53 F1). Fails open like `RateLimiter.hit`: with
    Redis unreachable the hold is granted (`checked=False`) and a warning is logged."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self._hold = redis.register_script(_HOLD)
        self._renew = redis.register_script(_RENEW)

    @staticmethod
    def _key(key_parts: Sequence[str]) -> str:
        return f"{KEY_PREFIX}:inflight:{':'.join(str(p) for p in key_parts)}"

    async def hold(self, key_parts: Sequence[str], hold_id: str, *, limit: int, hold_ms: int) -> Decision:
        try:
            taken = await self._hold(keys=[self._key(key_parts)], args=[limit, hold_id, hold_ms])
        except (RedisError, OSError):
            log.warning("in-flight store unavailable; allowing the call", exc_info=True)
            return UNCHECKED
        return ALLOWED if int(taken) else Decision(allowed=False, retry_after_seconds=5, limit=f"{limit} at a time")

    async def renew(self, key_parts: Sequence[str], hold_id: str, *, hold_ms: int) -> None:
        """The hold lives `hold_ms` from now (its holder renews it while it runs, so a killed holder's lapses soon)."""
        try:
            await self._renew(keys=[self._key(key_parts)], args=[hold_id, hold_ms])
        except (RedisError, OSError):
            log.warning("in-flight store unavailable; the hold was not renewed", exc_info=True)

    async def release(self, key_parts: Sequence[str], hold_id: str) -> None:
        try:
            await self.redis.zrem(self._key(key_parts), hold_id)
        except (RedisError, OSError):
            log.warning("in-flight store unavailable; the hold lapses by itself", exc_info=True)


def _store_unavailable(step: str) -> Decision:
    log.warning("login back-off store unavailable; allowing the login (%s)", step, exc_info=True)
    return UNCHECKED


def rate_limited_error(
    decision: Decision, message: str = "too many requests; retry later", code: str = "rate_limited"
) -> RateLimited:
    """The 429 for a refused decision, carrying its Retry-After header."""
    return RateLimited(
        message,
        code=code,
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
        device_seconds=s.login_device_token_days * 86400,
    )


def client_ip(request: Any) -> str:
    """The peer address (forwarded headers are not trusted: a proxy deployment sets the ASGI client itself)."""
    client = getattr(request, "client", None)
    return str(client.host) if client and client.host else "unknown"
