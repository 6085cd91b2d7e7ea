"""The HTTP side of tracing: a server span per request, its trace id on the response, one log line per request."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from opentelemetry import trace

from smartcourse import telemetry

#: The request log: one line per request (method, route template, status, duration_ms, user_id).
access_log = logging.getLogger("smartcourse.access")

#: Not traced: scrapes and probes would otherwise start a trace every few seconds.
UNTRACED_URLS = "/metrics,/health$"


def _route_template(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "path", "unmatched")


def install_tracing(app: FastAPI) -> None:
    """Trace every request (W3C `traceparent` in and out), answer with `traceparent` and `X-Trace-Id`, and log
    one line per request. Never logs headers, bodies or query strings: no token or password reaches a log."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    telemetry.configure_telemetry("api")
    if not getattr(app.state, "smartcourse_traced", False):
        FastAPIInstrumentor.instrument_app(app, excluded_urls=UNTRACED_URLS, exclude_spans=["receive", "send"])
        app.state.smartcourse_traced = True

    @app.middleware("http")
    async def _trace_and_log(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            trace_id = telemetry.current_trace_id()
            if trace_id:
                for key, value in (telemetry.current_carrier() or {}).items():
                    response.headers[key] = value
                response.headers["X-Trace-Id"] = trace_id
            return response
        finally:
            route = _route_template(request)
            principal = getattr(request.state, "principal", None)
            user_id = str(principal.user_id) if principal is not None else None
            span = trace.get_current_span()
            if user_id and span.is_recording():
                span.set_attribute("enduser.id", user_id)
            if request.url.path not in ("/metrics", "/health"):
                access_log.info(
                    "%s %s %s",
                    request.method,
                    route,
                    status,
                    extra={
                        "method": request.method,
                        "route": route,
                        "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                        "user_id": user_id,
                    },
                )
