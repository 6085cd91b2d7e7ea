"""Load shedding: at most N requests of one API process at once; beyond, 503 `overloaded` with Retry-After at once.

A saturated process answers early and clearly instead of queueing requests until they time out (or until the
database pool's timeout turns them into errors). The limit is per process (`SMARTCOURSE_API_MAX_IN_FLIGHT`, 0 = no
limit); `smartcourse run` starts one process per core, so the whole API takes cores x N. /health and /metrics are
never shed (an operator must see an overloaded process). See docs/architecture.md, "Launch day".
"""

from __future__ import annotations

import json
from collections.abc import Callable

from prometheus_client import Counter
from starlette.types import ASGIApp, Receive, Scope, Send

from smartcourse.config import get_settings

SHED = Counter("smartcourse_http_shed_total", "Requests answered 503 overloaded because the process was saturated")

EXEMPT = frozenset({"/health", "/metrics"})


def overloaded_body(limit: int, retry_after: int) -> bytes:
    return json.dumps(
        {
            "code": "overloaded",
            "message": "the service is at capacity; retry shortly",
            "details": {"limit": limit, "retry_after_seconds": retry_after},
        }
    ).encode()


class InFlightLimit:
    """Pure ASGI middleware counting this process's HTTP requests in flight (no per-request task or queue)."""

    def __init__(self, app: ASGIApp, *, limit: Callable[[], int], retry_after: int = 1) -> None:
        self.app = app
        self.limit = limit
        self.retry_after = retry_after
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in EXEMPT:
            await self.app(scope, receive, send)
            return
        limit = self.limit()
        if limit and self.in_flight >= limit:
            SHED.inc()
            body = overloaded_body(limit, self.retry_after)
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(self.retry_after).encode()),
            ]
            await send({"type": "http.response.start", "status": 503, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


def install_load_shedding(app: object, limit: Callable[[], int] | None = None) -> None:
    """Add the limit to a FastAPI/Starlette app (first, so the other middlewares wrap its 503: headers, metrics)."""
    app.add_middleware(InFlightLimit, limit=limit or (lambda: get_settings().api_max_in_flight))  # type: ignore[attr-defined]
