"""The edge cache: anonymous reads of the public catalogue answered from this process's memory, before the stack.

A cached catalogue read still cost the API ~1.2-1.4 ms of CPU, almost all of it the framework around the answer
(the OpenTelemetry server span, FastAPI's routing and dependencies, the edge middleware, the request log), against
~0.2 ms for a bare app returning the same bytes (docs/benchmarks.md, "Catalog reads"). This outermost ASGI layer
keeps what the full stack answered to an anonymous `GET` of a public catalogue answer (`api.caching.cached_json`
marks those with their catalogue generation) and serves it again as long as the generation has not moved:

- Only requests without an `Authorization` header, only `GET`, only answers the route marked public, only 200s.
  A key is the scheme (HSTS goes out over https only), the path, the query string and the `Origin` header (CORS
  answers differ by origin); `If-None-Match`
  gets a 304 as from the route. The headers are the route's and the edge's (security headers), minus the
  storing request's trace headers.
- Fresh enough: the generation is re-read from Redis at most every `SMARTCOURSE_EDGE_CACHE_SECONDS` per process
  (`catalog_cache.edge_clock`), at once after this process invalidated; another process's publish, update or
  archive reaches this one's anonymous readers within that delay. 0 turns the layer off. Redis unreachable:
  every read goes through the stack (which then reads the database).
- Bounded: at most `MAX_BYTES` of bodies per process, least recently used first out, and the catalogue TTL.
- Observable: a hit counts in `smartcourse_http_requests_total` and the latency histogram under its route, and in
  `smartcourse_edge_cache_total{outcome}`; it starts no span and writes no request log line (as a CDN's hit
  would not), so the trace and the log line are those of the read that filled the entry.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from cachetools import TTLCache
from prometheus_client import Counter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smartcourse.api.caching import EDGE_CACHE_MARK
from smartcourse.api.edge import route_template
from smartcourse.metrics import HTTP_LATENCY, HTTP_REQUESTS
from smartcourse.services.catalog_cache import TTL_SECONDS

EDGE_CACHE = Counter(
    "smartcourse_edge_cache_total", "Anonymous catalogue reads at the edge cache: hit, miss, stored", ["outcome"]
)

#: Paths whose public answers may be kept (the routes that answer through `cached_json`).
PREFIXES = ("/courses", "/search")
MAX_BYTES = 32 * 1024 * 1024
MAX_ITEM_BYTES = 1024 * 1024
#: Headers of the storing request's own, never replayed to another reader.
_NOT_KEPT = frozenset({b"traceparent", b"tracestate", b"x-trace-id", b"set-cookie", b"date"})
_NOT_IN_304 = frozenset({b"content-length", b"content-type"})


@dataclass(frozen=True)
class Entry:
    generation: int
    route: str
    headers: list[tuple[bytes, bytes]]
    body: bytes
    etag: bytes


def _size(entry: Entry) -> int:
    return len(entry.body) + 64 * len(entry.headers)


class EdgeCache:
    """Pure ASGI layer, outermost. `generation()` answers the catalogue generation or None (unknown: pass through);
    `enabled()` is read per request (the setting may change in tests)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        generation: Callable[[], Awaitable[int | None]],
        enabled: Callable[[], bool],
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self.app = app
        self.generation = generation
        self.enabled = enabled
        self.entries: TTLCache[tuple[str, str, bytes, bytes], Entry] = TTLCache(
            maxsize=max_bytes, ttl=TTL_SECONDS, getsizeof=_size
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or not scope["path"].startswith(PREFIXES):
            await self.app(scope, receive, send)
            return
        origin = b""
        if_none_match = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                await self.app(scope, receive, send)  # a caller's own view: the full stack
                return
            if name == b"origin":
                origin = value
            elif name == b"if-none-match":
                if_none_match = value
        if not self.enabled():
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        generation = await self.generation()
        key = (scope.get("scheme", "http"), scope["path"], scope.get("query_string", b""), origin)
        entry = self.entries.get(key) if generation is not None else None
        if entry is not None and entry.generation == generation:
            await self._answer(entry, if_none_match, send)
            EDGE_CACHE.labels("hit").inc()
            elapsed = time.perf_counter() - started
            HTTP_LATENCY.labels("GET", entry.route).observe(elapsed)
            return
        EDGE_CACHE.labels("miss").inc()
        if generation is None:
            await self.app(scope, receive, send)
            return
        await self._fill(scope, receive, send, key, generation)

    @staticmethod
    async def _answer(entry: Entry, if_none_match: bytes, send: Send) -> None:
        if if_none_match and _names(if_none_match, entry.etag):
            headers = [(k, v) for k, v in entry.headers if k not in _NOT_IN_304]
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            HTTP_REQUESTS.labels("GET", entry.route, "304").inc()
            return
        await send({"type": "http.response.start", "status": 200, "headers": entry.headers})
        await send({"type": "http.response.body", "body": entry.body})
        HTTP_REQUESTS.labels("GET", entry.route, "200").inc()

    async def _fill(
        self, scope: Scope, receive: Receive, send: Send, key: tuple[str, str, bytes, bytes], generation: int
    ) -> None:
        start: Message | None = None
        parts: list[bytes] = []

        async def keep(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                parts.append(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, keep)
        marked = (scope.get("state") or {}).get(EDGE_CACHE_MARK)
        # Kept only when the route marked a public answer of this very generation (an older one would be refused
        # by the next read anyway) and the whole 200 went out.
        if start is None or start["status"] != 200 or marked != generation:
            return
        body = b"".join(parts)
        if len(body) > MAX_ITEM_BYTES:
            return
        headers = [(bytes(k).lower(), bytes(v)) for k, v in start.get("headers", [])]
        etag = next((v for k, v in headers if k == b"etag"), b"")
        if not etag:
            return
        kept = [(k, v) for k, v in headers if k not in _NOT_KEPT]
        self.entries[key] = Entry(generation, route_template(scope), kept, body, etag)
        EDGE_CACHE.labels("stored").inc()


def _names(if_none_match: bytes, etag: bytes) -> bool:
    tags = {t.strip().removeprefix(b"W/") for t in if_none_match.split(b",")}
    return b"*" in tags or etag in tags


def install_edge_cache(app: object) -> None:
    """Put the edge cache outside everything else of `app` (its middleware stack is built on the first request)."""
    from smartcourse.bootstrap import get_container
    from smartcourse.config import get_settings
    from smartcourse.services.catalog_cache import edge_clock

    async def generation() -> int | None:
        return await edge_clock.current(await get_container(), get_settings().edge_cache_seconds)

    def enabled() -> bool:
        return get_settings().edge_cache_seconds > 0

    build = app.build_middleware_stack  # type: ignore[attr-defined]

    def build_with_edge_cache() -> ASGIApp:
        return EdgeCache(build(), generation=generation, enabled=enabled)

    app.build_middleware_stack = build_with_edge_cache  # type: ignore[attr-defined]
