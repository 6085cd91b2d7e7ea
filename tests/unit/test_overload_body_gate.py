"""explore10 F1: clients that send headers and never their body held every in-flight slot (the whole API answered
503 overloaded). A request with a body counts once its body has arrived; a body that stops arriving is 408."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from smartcourse.api.overload import InFlightLimit


async def reads_its_body(scope: Scope, receive: Receive, send: Send) -> None:
    """An endpoint: reads the whole body (or hears the client leave), then answers 200."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def request(method: str = "POST", length: int | None = 10) -> Scope:
    headers = [(b"content-length", str(length).encode())] if length is not None else []
    return {"type": "http", "method": method, "path": "/x", "headers": headers}


class Client:
    def __init__(self) -> None:
        self.sent: list[Message] = []
        self.parts: asyncio.Queue[Message] = asyncio.Queue()

    async def receive(self) -> Message:
        return await self.parts.get()

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int | None:
        return next((m["status"] for m in self.sent if m["type"] == "http.response.start"), None)

    def body(self) -> Any:
        return json.loads(b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body"))


async def test_a_body_that_never_arrives_holds_no_slot_and_is_answered_408() -> None:
    gate = InFlightLimit(reads_its_body, limit=lambda: 1, body_timeout=lambda: 0.3)
    slow = [Client() for _ in range(5)]
    tasks = [asyncio.create_task(gate(request(), c.receive, c.send)) for c in slow]
    await asyncio.sleep(0.05)
    assert gate.in_flight == 0  # headers only: nothing is being served
    quick = Client()
    await quick.parts.put({"type": "http.request", "body": b"", "more_body": False})
    await asyncio.wait_for(gate(request("GET", None), quick.receive, quick.send), 5)
    assert quick.status == 200  # not shed, though five requests are open
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    for c in slow:
        assert c.status == 408 and c.body()["code"] == "request_timeout"
        assert set(c.body()) == {"code", "message", "details", "trace_id"}  # as every error body (ErrorBody)
        assert (b"connection", b"close") in next(m for m in c.sent if m["type"] == "http.response.start")["headers"]
        assert len([m for m in c.sent if m["type"] == "http.response.start"]) == 1  # the app's own answer dropped
    assert gate.in_flight == 0


async def test_a_body_arriving_in_parts_is_served_and_counted_once_complete() -> None:
    gate = InFlightLimit(reads_its_body, limit=lambda: 1, body_timeout=lambda: 0.5, body_min_rate=lambda: 5)
    c = Client()
    task = asyncio.create_task(gate(request(), c.receive, c.send))
    for part in (b"12345", b"6789"):
        await asyncio.sleep(0.3)  # quicker than the timeout between two parts, each part buying 1 s per 5 bytes
        await c.parts.put({"type": "http.request", "body": part, "more_body": True})
    await c.parts.put({"type": "http.request", "body": b"0", "more_body": False})
    await asyncio.wait_for(task, 5)
    assert c.status == 200 and gate.in_flight == 0


async def test_a_complete_body_beyond_the_limit_is_shed_with_retry_after() -> None:
    entered, release = asyncio.Event(), asyncio.Event()

    async def busy(scope: Scope, receive: Receive, send: Send) -> None:
        if (await receive())["type"] == "http.disconnect":
            raise RuntimeError("the client left")  # as a framework reading the body raises: swallowed, answered
        entered.set()
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    gate = InFlightLimit(busy, limit=lambda: 1, body_timeout=lambda: 5)
    first, second = Client(), Client()
    for c in (first, second):
        await c.parts.put({"type": "http.request", "body": b"0123456789", "more_body": False})
    running = asyncio.create_task(gate(request(), first.receive, first.send))
    await asyncio.wait_for(entered.wait(), 5)
    await asyncio.wait_for(gate(request(), second.receive, second.send), 5)
    assert second.status == 503 and second.body()["code"] == "overloaded"
    assert set(second.body()) == {"code", "message", "details", "trace_id"}
    start = next(m for m in second.sent if m["type"] == "http.response.start")
    assert (b"retry-after", b"1") in start["headers"]
    release.set()
    await running
    assert first.status == 200 and gate.in_flight == 0


async def test_a_body_trickled_within_the_idle_timeout_but_below_the_minimum_rate_is_answered_408() -> None:
    """explore12 F5: one byte every 20 s (under the 30 s between two parts) used to keep its socket for ever. The
    whole body has the timeout plus a second per `min_rate` bytes (mod_reqtimeout's MinRate)."""
    gate = InFlightLimit(reads_its_body, limit=lambda: 1, body_timeout=lambda: 0.4, body_min_rate=lambda: 10)
    c = Client()
    task = asyncio.create_task(gate(request(length=100), c.receive, c.send))
    loop = asyncio.get_running_loop()
    began = loop.time()
    for _ in range(20):  # a byte every 0.25 s: each part in time, the whole at 4 bytes/s against 10
        await asyncio.sleep(0.25)
        if task.done():
            break
        await c.parts.put({"type": "http.request", "body": b"x", "more_body": True})
    await asyncio.wait_for(task, 5)
    assert c.status == 408 and c.body()["code"] == "request_timeout"
    assert "slower than 10 bytes/s" in c.body()["message"]
    assert c.body()["details"] == {"timeout_seconds": 0.4, "min_rate_bytes_per_second": 10}
    assert loop.time() - began < 1.5  # 0.4 s plus the few bytes' 0.1 s each, not the 20 parts' 5 s
    assert gate.in_flight == 0


async def test_without_a_minimum_rate_only_the_idle_timeout_applies() -> None:
    gate = InFlightLimit(reads_its_body, limit=lambda: 1, body_timeout=lambda: 0.4, body_min_rate=lambda: 0)
    c = Client()
    task = asyncio.create_task(gate(request(length=100), c.receive, c.send))
    for _ in range(4):  # 1 s in all, each part within 0.4 s of the last
        await asyncio.sleep(0.25)
        await c.parts.put({"type": "http.request", "body": b"x", "more_body": True})
    await c.parts.put({"type": "http.request", "body": b"x", "more_body": False})
    await asyncio.wait_for(task, 5)
    assert c.status == 200 and gate.in_flight == 0
