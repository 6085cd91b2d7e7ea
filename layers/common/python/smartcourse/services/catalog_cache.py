"""Read-through cache of catalogue pages and public course views in Redis, invalidated on publish/update/archive.

Keys follow the design's caching table (`courses:category:{cat}:page:{p}`), extended with every filter and a
catalogue *generation*: invalidation bumps the generation, so every cached page of the old one is unreachable
at once (and expires by TTL) without scanning keys. A Redis outage makes the cache a pass-through.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel

log = logging.getLogger(__name__)

TTL_SECONDS = 300
GENERATION_KEY = "courses:generation"
M = TypeVar("M", bound=BaseModel)


def page_key(generation: int, *, kind: str, params: dict[str, Any]) -> str:
    cat = params.get("category") or "all"
    page = params.get("page", 1)
    rest = {k: v for k, v in sorted(params.items()) if k not in ("category", "page")}
    digest = hashlib.sha256(json.dumps(rest, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return f"courses:g{generation}:{kind}:category:{cat}:page:{page}:{digest}"


def course_key(course_id: uuid.UUID, view: str) -> str:
    return f"course:{course_id}:{view}"


async def _generation(redis: Any) -> int:
    value = await redis.get(GENERATION_KEY)
    return int(value or 0)


async def cached_page(
    container: Any, *, kind: str, params: dict[str, Any], model: type[M], compute: Callable[[], Awaitable[M]]
) -> M:
    """A catalogue page from the cache, or computed and stored for TTL_SECONDS."""
    try:
        redis = container.redis()
        key = page_key(await _generation(redis), kind=kind, params=params)
        hit = await redis.get(key)
        if hit is not None:
            return model.model_validate_json(hit)
    except Exception:
        log.warning("catalogue cache unavailable; reading the database", exc_info=True)
        return await compute()
    value = await compute()
    try:
        await redis.set(key, value.model_dump_json(), ex=TTL_SECONDS)
    except Exception:
        log.warning("could not store a catalogue page in the cache", exc_info=True)
    return value


async def cached_course(
    container: Any, *, course_id: uuid.UUID, view: str, model: type[M], compute: Callable[[], Awaitable[M]]
) -> M:
    """One course's public view (`view` names the audience) from the cache, or computed and stored."""
    key = course_key(course_id, view)
    try:
        redis = container.redis()
        hit = await redis.get(key)
        if hit is not None:
            return model.model_validate_json(hit)
    except Exception:
        log.warning("course cache unavailable; reading the database", exc_info=True)
        return await compute()
    value = await compute()
    try:
        await redis.set(key, value.model_dump_json(), ex=TTL_SECONDS)
    except Exception:
        log.warning("could not store a course view in the cache", exc_info=True)
    return value


async def invalidate(container: Any, course_id: uuid.UUID | None = None) -> None:
    """After a publish, an update or an archive: new catalogue generation, and this course's views dropped."""
    try:
        redis = container.redis()
        await redis.incr(GENERATION_KEY)
        if course_id is not None:
            await redis.delete(*(course_key(course_id, view) for view in ("outline", "student")))
    except Exception:  # a stale entry lives at most TTL_SECONDS
        log.warning("could not invalidate the course cache", exc_info=True)
