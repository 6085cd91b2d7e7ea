"""Read-through cache of catalogue pages and published course views: in process, then Redis, then the database.

Keys follow the design's caching table (`courses:category:{cat}:page:{p}`), extended with every filter and a
catalogue *generation*: invalidation (after a publish, an update or an archive) bumps the generation, so every
cached page and course view of the old one is unreachable at once (and expires by TTL) without scanning keys.

Each read asks Redis for the generation (one GET), then looks the key up in a small in-process TTL cache of the
answer's serialised JSON and its ETag, then in Redis, and only then computes it. A change made by any process is
therefore visible to every process on its next read; the in-process layer only saves the Redis round trip of the
body, its parsing and its re-serialisation. A value is computed after the generation was read, so a value stored
under a generation is never older than the generation's start. A Redis outage makes the cache a pass-through.

In front of all that, `api.edge_cache.EdgeCache` keeps the public answers of anonymous reads as they went on the
wire, tagged with their generation, and checks the generation through `edge_clock`: re-read at most every
`SMARTCOURSE_EDGE_CACHE_SECONDS` per process, at once after this process invalidated.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from cachetools import TTLCache
from pydantic import BaseModel

log = logging.getLogger(__name__)

TTL_SECONDS = 300
GENERATION_KEY = "courses:generation"
#: The in-process layer: bounded by the bytes of the bodies it holds; an entry lives as long as in Redis at most.
LOCAL_MAX_BYTES = 64 * 1024 * 1024
LOCAL_MAX_ITEM_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class CachedJson:
    """An answer as it goes on the wire: its JSON body and a strong ETag; `public` when anyone gets the same."""

    body: bytes
    etag: str
    public: bool = True
    #: The catalogue generation it belongs to (None: read while the cache was unavailable).
    generation: int | None = None

    @classmethod
    def of_body(cls, body: bytes, *, public: bool = True, generation: int | None = None) -> CachedJson:
        etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
        return cls(body=body, etag=etag, public=public, generation=generation)

    @classmethod
    def of(
        cls, model: BaseModel, *, exclude_none: bool = False, public: bool = True, generation: int | None = None
    ) -> CachedJson:
        body = model.model_dump_json(exclude_none=exclude_none).encode()
        return cls.of_body(body, public=public, generation=generation)

    def matches(self, if_none_match: str | None) -> bool:
        """True when an `If-None-Match` header names this version (the client's copy is current: 304)."""
        if not if_none_match:
            return False
        tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
        return "*" in tags or self.etag in tags


def _size(entry: CachedJson) -> int:
    return len(entry.body)


_local: TTLCache[str, CachedJson] = TTLCache(maxsize=LOCAL_MAX_BYTES, ttl=TTL_SECONDS, getsizeof=_size)


def clear_local() -> None:
    """Forget the in-process layer (tests; a process that wants a cold start)."""
    _local.clear()


#: The shape of a cached page: bumped when what a page holds changes (v2: search highlights quote public fields only),
#: so that pages cached by the previous release are never served by this one, even within their TTL.
PAGE_FORMAT = 2


def page_key(generation: int, *, kind: str, params: dict[str, Any]) -> str:
    cat = params.get("category") or "all"
    page = params.get("page", 1)
    rest = {k: v for k, v in sorted(params.items()) if k not in ("category", "page")}
    digest = hashlib.sha256(json.dumps(rest, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return f"courses:g{generation}:f{PAGE_FORMAT}:{kind}:category:{cat}:page:{page}:{digest}"


def course_key(generation: int, course_id: uuid.UUID, view: str) -> str:
    return f"course:g{generation}:{course_id}:{view}"


async def generation(container: Any) -> int:
    """The catalogue's current generation (raises when Redis cannot be reached)."""
    return int(await container.redis().get(GENERATION_KEY) or 0)


#: Set in a request's context once a Redis call of the catalogue's caches failed (unreachable, or no answer within
#: REDIS_TIMEOUT_SECONDS): its other catalogue cache calls go straight to the database. With Redis hung, an
#: anonymous `GET /courses` waited for the edge cache's generation, then for the page cache's: twice the bound a
#: call costs (explore32 F5). A login does the same with its rate limits.
_redis_failed: ContextVar[bool] = ContextVar("smartcourse_catalogue_redis_failed", default=False)


class GenerationClock:
    """This process's last reading of the catalogue generation, for the edge cache: re-read when older than
    `max_age` seconds, by one caller at a time (the others go by the last reading). `forget` (after this process
    invalidated) makes the next caller read it again; a reading begun before a `forget` is not kept."""

    def __init__(self) -> None:
        self.value: int | None = None
        self.read_at = float("-inf")
        self.reading = False
        self.epoch = 0

    def forget(self) -> None:
        self.value, self.read_at, self.epoch = None, float("-inf"), self.epoch + 1

    async def current(self, container: Any, max_age: float) -> int | None:
        """The generation, or None when unknown (Redis unreachable, or being read after a `forget`)."""
        if self.reading or time.monotonic() - self.read_at < max_age:
            return self.value
        self.reading, epoch = True, self.epoch
        try:
            value: int | None = await generation(container)
        except Exception:
            log.warning("catalogue generation unavailable; the edge cache passes reads through", exc_info=True)
            _redis_failed.set(True)
            value = None
        finally:
            self.reading = False
        if epoch == self.epoch:
            self.value, self.read_at = value, time.monotonic()
        return value if epoch == self.epoch else None


#: The edge cache's reading of the generation, one per process (`api.edge_cache`).
edge_clock = GenerationClock()


async def _read_through(
    container: Any,
    key_of: Callable[[int], str],
    compute: Callable[[], Awaitable[BaseModel]],
    *,
    exclude_none: bool,
    public: bool,
    what: str,
) -> CachedJson:
    if _redis_failed.get():  # this request already waited for Redis in vain: once is enough (explore32 F5)
        return CachedJson.of(await compute(), exclude_none=exclude_none, public=public)
    try:
        redis = container.redis()
        gen = await generation(container)
        key = key_of(gen)
    except Exception:
        log.warning("%s cache unavailable; reading the database", what, exc_info=True)
        _redis_failed.set(True)
        return CachedJson.of(await compute(), exclude_none=exclude_none, public=public)
    entry = _local.get(key)
    if entry is not None:  # a key names one audience, so `public` is the same as when it was stored
        return entry
    try:
        raw = await redis.get(key)
    except Exception:
        log.warning("%s cache unavailable; reading the database", what, exc_info=True)
        _redis_failed.set(True)
        raw = None
    if raw is not None:
        entry = CachedJson.of_body(raw.encode() if isinstance(raw, str) else bytes(raw), public=public, generation=gen)
    else:
        entry = CachedJson.of(await compute(), exclude_none=exclude_none, public=public, generation=gen)
        if not _redis_failed.get():
            try:
                await redis.set(key, entry.body, ex=TTL_SECONDS)
            except Exception:
                log.warning("could not store a %s in the cache", what, exc_info=True)
    if len(entry.body) <= LOCAL_MAX_ITEM_BYTES:
        _local[key] = entry
    return entry


async def cached_page(
    container: Any, *, kind: str, params: dict[str, Any], compute: Callable[[], Awaitable[BaseModel]]
) -> CachedJson:
    """A catalogue page (the same for everyone who gets the public catalogue), cached for TTL_SECONDS."""
    return await _read_through(
        container,
        lambda g: page_key(g, kind=kind, params=params),
        compute,
        exclude_none=False,
        public=True,
        what="catalogue page",
    )


async def cached_course(
    container: Any,
    *,
    course_id: uuid.UUID,
    view: str,
    compute: Callable[[], Awaitable[BaseModel]],
    public: bool,
) -> CachedJson:
    """One course's published view (`view` names the audience); the fields it may not show are left out by the model
    (`schemas.omitted_when_none`), every other null is kept."""
    return await _read_through(
        container,
        lambda g: course_key(g, course_id, view),
        compute,
        exclude_none=False,
        public=public,
        what="course view",
    )


async def invalidate(container: Any, course_id: uuid.UUID | None = None) -> None:
    """After a publish, an update or an archive: a new catalogue generation (pages and course views alike)."""
    _local.clear()  # this process at once; the others on their next read of the generation
    edge_clock.forget()
    try:
        await container.redis().incr(GENERATION_KEY)
    except Exception:  # a stale entry lives at most TTL_SECONDS
        log.warning("could not invalidate the course cache (course %s)", course_id, exc_info=True)
    edge_clock.forget()  # a reading taken between the first forget and the increment is not kept either
