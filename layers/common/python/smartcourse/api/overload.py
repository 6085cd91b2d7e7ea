"""Load shedding: at most N requests of one API process at once; beyond, 503 `overloaded` with Retry-After at once.

A saturated process answers early and clearly instead of queueing requests until they time out (or until the
database pool's timeout turns them into errors). The limit is per process (`SMARTCOURSE_API_MAX_IN_FLIGHT`, 0 = no
limit); `smartcourse run` starts one process per core, so the whole API takes cores x N. /health and /metrics are
never shed (an operator must see an overloaded process). See docs/architecture.md, "Launch day".
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable

from prometheus_client import Counter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smartcourse import telemetry
from smartcourse.config import get_settings

SHED = Counter("smartcourse_http_shed_total", "Requests answered 503 overloaded because the process was saturated")

EXEMPT = frozenset({"/health", "/metrics"})


def overloaded_body(limit: int, retry_after: int) -> bytes:
    return json.dumps(
        {
            "code": "overloaded",
            "message": "the service is at capacity; retry shortly",
            "details": {"limit": limit, "retry_after_seconds": retry_after},
            "trace_id": telemetry.current_trace_id(),  # every error body has the four keys (schemas.ErrorBody)
        }
    ).encode()


def _timeout_body(seconds: float, min_rate: float, too_slow: bool) -> bytes:
    message = (
        f"the request body arrived slower than {min_rate:g} bytes/s; send it again"
        if too_slow
        else f"the request body stopped arriving for {seconds:g} s; send it again"
    )
    return json.dumps(
        {
            "code": "request_timeout",  # api.app._STATUS_CODES[408], as docs/errors.md lists it
            "message": message,
            "details": {"timeout_seconds": seconds, "min_rate_bytes_per_second": min_rate},
            "trace_id": telemetry.current_trace_id(),
        }
    ).encode()


def _has_body(scope: Scope) -> bool:
    """Whether the request announces a body (a Content-Length above 0, or chunks)."""
    for name, value in scope.get("headers") or ():
        if name == b"content-length":
            return value.strip() not in (b"0", b"")
        if name == b"transfer-encoding":
            return True
    return False


async def _answer(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


class InFlightLimit:
    """Pure ASGI middleware counting this process's HTTP requests in flight (no per-request task or queue).

    A request counts from the moment it can be served: at once without a body, once its body has arrived with one.
    A client that sends headers and then trickles (or never sends) the body holds a connection, not a slot: 520
    such connections from one unauthenticated client used to hold every slot and shed every other request for as
    long as they stayed open (explore10 F1). Such a body is given `body_timeout` seconds between two of its parts,
    and `body_timeout` seconds plus one second per `body_min_rate` bytes received in all (Apache's mod_reqtimeout
    `body=N,MinRate=R`: one byte every 20 s kept a socket for ever, explore12 F5); beyond either it is answered 408
    `request_timeout` (the connection closes: its body is unread)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        limit: Callable[[], int],
        retry_after: int = 1,
        body_timeout: Callable[[], float] | None = None,
        body_min_rate: Callable[[], float] | None = None,
    ) -> None:
        self.app = app
        self.limit = limit
        self.retry_after = retry_after
        self.body_timeout = body_timeout or (lambda: get_settings().api_body_timeout)
        self.body_min_rate = body_min_rate or (lambda: get_settings().api_body_min_rate)
        self.in_flight = 0

    def full(self) -> tuple[bool, int]:
        limit = self.limit()
        return bool(limit) and self.in_flight >= limit, limit

    async def shed(self, send: Send, limit: int) -> None:
        SHED.inc()
        headers = [(b"retry-after", str(self.retry_after).encode())]
        await _answer(send, 503, overloaded_body(limit, self.retry_after), headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in EXEMPT:
            await self.app(scope, receive, send)
            return
        if not _has_body(scope):
            full, limit = self.full()
            if full:
                await self.shed(send, limit)
                return
            self.in_flight += 1
            try:
                await self.app(scope, receive, send)
            finally:
                self.in_flight -= 1
            return
        gate = _BodyGate(self, receive, send, self.body_timeout(), self.body_min_rate())
        try:
            await self.app(scope, gate.receive, gate.send)
        except Exception:
            if not gate.answered:
                raise
            # Answered here already (408, 503): the app's error on hearing a disconnected client is no news.
        finally:
            if gate.counted:
                self.in_flight -= 1


class _BodyGate:
    """One request with a body: its parts read under the idle timeout and the whole body's deadline (which grows
    with the bytes received); counted in flight (or shed) once complete. A request this gate answered itself (408,
    503) is a disconnected client to the app, whose own answer is dropped."""

    def __init__(self, limiter: InFlightLimit, receive: Receive, send: Send, timeout: float, min_rate: float) -> None:
        self.limiter, self._receive, self._send, self.timeout = limiter, receive, send, timeout
        self.min_rate = min_rate
        self.counted = self.complete = self.answered = self.started = False
        self.deadline: float | None = None  # the loop's clock: the first read's time + timeout + bytes / min_rate

    async def receive(self) -> Message:
        if self.answered:
            return {"type": "http.disconnect"}
        if self.complete:
            return await self._receive()  # after the body: only the client's disconnect is left to hear
        now = asyncio.get_running_loop().time()
        if self.deadline is None:
            self.deadline = now + self.timeout if self.min_rate else math.inf
        wait = min(self.timeout, self.deadline - now)
        try:
            async with asyncio.timeout(max(wait, 0.0)):  # a timer, not a task per part (the admission's hot path)
                message = await self._receive()
        except TimeoutError:
            if not self.started:
                body = _timeout_body(self.timeout, self.min_rate, too_slow=wait < self.timeout)
                await _answer(self._send, 408, body, [(b"connection", b"close")])
            self.answered = True
            return {"type": "http.disconnect"}
        if message["type"] == "http.request" and self.min_rate:
            self.deadline += len(message.get("body", b"")) / self.min_rate
        if message["type"] == "http.request" and not message.get("more_body", False):
            self.complete = True
            full, limit = self.limiter.full()
            if full and not self.started:
                await self.limiter.shed(self._send, limit)
                self.answered = True
                return {"type": "http.disconnect"}
            self.limiter.in_flight += 1
            self.counted = True
        return message

    async def send(self, message: Message) -> None:
        if self.answered:
            return
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


def install_load_shedding(app: object, limit: Callable[[], int] | None = None) -> None:
    """Add the limit to a FastAPI/Starlette app (first, so the other middlewares wrap its 503: headers, metrics)."""
    app.add_middleware(InFlightLimit, limit=limit or (lambda: get_settings().api_max_in_flight))  # type: ignore[attr-defined]
