"""The edge cache (api/edge_cache.py) around a stand-in app: what it keeps, for whom, and until when; and the
per-process reading of the catalogue generation it goes by (services/catalog_cache.py GenerationClock)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from smartcourse.api.caching import EDGE_CACHE_MARK
from smartcourse.api.edge_cache import EdgeCache
from smartcourse.services.catalog_cache import GenerationClock


class Inner:
    """A stand-in for the stack: /courses/* answers are public (marked), /courses/private is not, /courses/gone 404."""

    def __init__(self) -> None:
        self.calls = 0
        self.generation: int | None = 1

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += 1
        path = scope["path"]
        status = 404 if path == "/courses/gone" else 200
        if path != "/courses/private" and self.generation is not None:
            scope.setdefault("state", {})[EDGE_CACHE_MARK] = self.generation
        origin = dict(scope["headers"]).get(b"origin", b"")
        body = b'{"call": %d, "origin": "%s"}' % (self.calls, origin)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"etag", b'"v%d"' % self.calls),
            (b"x-content-type-options", b"nosniff"),
            (b"traceparent", b"00-%032x-%016x-01" % (self.calls, self.calls)),
            (b"x-trace-id", b"%032x" % self.calls),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class Rig:
    def __init__(self) -> None:
        self.inner = Inner()
        self.generation: int | None = 1
        self.on = True

        async def generation() -> int | None:
            return self.generation

        self.app = EdgeCache(self.inner, generation=generation, enabled=lambda: self.on)
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://edge")

    async def get(self, path: str, **headers: str) -> httpx.Response:
        return await self.client.get(path, headers=headers)


@pytest.fixture
async def rig() -> Any:
    r = Rig()
    yield r
    await r.client.aclose()


async def test_an_anonymous_public_read_is_answered_from_memory(rig: Rig) -> None:
    first = await rig.get("/courses/a?page=1")
    again = await rig.get("/courses/a?page=1")
    assert rig.inner.calls == 1
    assert again.status_code == 200 and again.content == first.content
    assert again.headers["etag"] == first.headers["etag"] and again.headers["x-content-type-options"] == "nosniff"
    assert "traceparent" in first.headers and "traceparent" not in again.headers and "x-trace-id" not in again.headers
    await rig.get("/courses/a?page=2")  # another query string is another answer
    assert rig.inner.calls == 2


async def test_if_none_match_gets_a_304_from_memory(rig: Rig) -> None:
    first = await rig.get("/courses/a")
    same = await rig.get("/courses/a", **{"If-None-Match": first.headers["etag"]})
    other = await rig.get("/courses/a", **{"If-None-Match": '"something-else"'})
    assert rig.inner.calls == 1
    assert same.status_code == 304 and same.content == b"" and same.headers["etag"] == first.headers["etag"]
    assert "content-type" not in same.headers
    assert other.status_code == 200 and other.content == first.content


async def test_a_new_generation_is_read_again(rig: Rig) -> None:
    await rig.get("/courses/a")
    rig.generation = rig.inner.generation = 2
    second = await rig.get("/courses/a")
    assert rig.inner.calls == 2 and second.json()["call"] == 2
    await rig.get("/courses/a")
    assert rig.inner.calls == 2


async def test_an_answer_of_an_older_generation_is_not_kept(rig: Rig) -> None:
    rig.generation = 2  # the route answered from generation 1 (read before the bump)
    await rig.get("/courses/a")
    await rig.get("/courses/a")
    assert rig.inner.calls == 2


async def test_a_caller_with_a_token_always_gets_the_stack(rig: Rig) -> None:
    await rig.get("/courses/a")
    for _ in range(2):
        r = await rig.get("/courses/a", Authorization="Bearer some-token")
        assert r.headers["x-trace-id"]
    assert rig.inner.calls == 3


@pytest.mark.parametrize("path", ["/courses/private", "/courses/gone", "/enrollments/x"])
async def test_unmarked_answers_errors_and_other_paths_are_not_kept(rig: Rig, path: str) -> None:
    await rig.get(path)
    await rig.get(path)
    assert rig.inner.calls == 2


async def test_only_get_is_answered_from_memory(rig: Rig) -> None:
    await rig.get("/courses/a")
    await rig.client.post("/courses/a")
    await rig.client.head("/courses/a")
    assert rig.inner.calls == 3


async def test_the_scheme_is_part_of_the_key(rig: Rig) -> None:
    """An answer over http (no HSTS) is never replayed over https, nor the other way round."""
    await rig.get("/courses/a")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=rig.app), base_url="https://edge") as tls:
        await tls.get("/courses/a")
        await tls.get("/courses/a")
    assert rig.inner.calls == 2


async def test_the_origin_is_part_of_the_key(rig: Rig) -> None:
    a = await rig.get("/courses/a", Origin="https://a.example")
    b = await rig.get("/courses/a", Origin="https://b.example")
    assert (
        rig.inner.calls == 2 and a.json()["origin"] == "https://a.example" and b.json()["origin"] == "https://b.example"
    )
    assert (await rig.get("/courses/a", Origin="https://b.example")).json()["origin"] == "https://b.example"
    assert rig.inner.calls == 2


async def test_an_unknown_generation_or_the_layer_off_passes_through(rig: Rig) -> None:
    await rig.get("/courses/a")
    rig.generation = None  # Redis unreachable
    await rig.get("/courses/a")
    rig.generation, rig.on = 1, False
    await rig.get("/courses/a")
    assert rig.inner.calls == 3
    rig.on = True
    await rig.get("/courses/a")
    assert rig.inner.calls == 3  # the entry of generation 1 is still good


class Redis:
    def __init__(self) -> None:
        self.value = 7
        self.reads = 0
        self.gate: asyncio.Event | None = None

    async def get(self, key: str) -> int:
        self.reads += 1
        if self.gate is not None:
            await self.gate.wait()
        return self.value


class Container:
    def __init__(self) -> None:
        self.r = Redis()

    def redis(self) -> Redis:
        return self.r


async def test_the_generation_is_read_at_most_once_per_max_age() -> None:
    clock, c = GenerationClock(), Container()
    assert await clock.current(c, 60) == 7
    c.r.value = 8
    assert await clock.current(c, 60) == 7 and c.r.reads == 1  # within max_age: the last reading
    assert await clock.current(c, 0) == 8 and c.r.reads == 2
    clock.forget()
    c.r.value = 9
    assert await clock.current(c, 60) == 9 and c.r.reads == 3  # forgotten: read again at once


async def test_one_reader_at_a_time_and_a_reading_from_before_forget_is_not_kept() -> None:
    clock, c = GenerationClock(), Container()
    c.r.gate = asyncio.Event()
    slow = asyncio.create_task(clock.current(c, 60))
    await asyncio.sleep(0)
    assert await clock.current(c, 60) is None and c.r.reads == 1  # the others go by the last reading (none yet)
    clock.forget()  # this process invalidated while the reading was on its way
    c.r.gate.set()
    assert await slow is None
    c.r.gate, c.r.value = None, 8
    assert await clock.current(c, 60) == 8 and c.r.reads == 2


async def test_a_request_that_waited_for_redis_in_vain_does_not_wait_again() -> None:
    """explore32 F5: with Redis hung, an anonymous catalogue read waited for the edge cache's generation, then for the
    page cache's: two timeouts. Once a call of the request failed, its page is read from the database at once."""
    from pydantic import BaseModel

    from smartcourse.services import catalog_cache

    class Hung:
        calls = 0

        async def get(self, key: str) -> str:
            Hung.calls += 1
            raise TimeoutError("Timeout reading from redis")

        async def set(self, *args: Any, **kwargs: Any) -> None:
            raise AssertionError("nothing is stored in a Redis that did not answer")

    class Container:
        def redis(self) -> Hung:
            return Hung()

    class Page(BaseModel):
        items: list[int]

    async def compute() -> Page:
        return Page(items=[1])

    async def one_request() -> tuple[int | None, bytes]:
        gen = await GenerationClock().current(Container(), 0)
        page = await catalog_cache.cached_page(Container(), kind="list", params={}, compute=compute)
        return gen, page.body

    # Each request in a context of its own, as the server runs them.
    for _ in range(2):
        before = Hung.calls
        gen, body = await asyncio.create_task(one_request())
        assert (gen, body, Hung.calls - before) == (None, b'{"items":[1]}', 1)
    # A request whose first Redis call is the page cache's also makes only that one.
    before = Hung.calls
    page = await asyncio.create_task(catalog_cache.cached_page(Container(), kind="list", params={}, compute=compute))
    assert page.body == b'{"items":[1]}' and Hung.calls - before == 1
