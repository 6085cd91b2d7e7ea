"""The HTTP side of tracing: a server span per request (W3C `traceparent` in and out).

The span's id goes out on every answer (`traceparent`, `X-Trace-Id`) and the request log line is written by
`api.edge.EdgeMiddleware`, which runs inside this span."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.semconv.attributes.http_attributes import HTTP_ROUTE
from opentelemetry.util.http import sanitize_method
from starlette.types import ASGIApp, Receive, Scope, Send

from smartcourse import telemetry

#: Not traced: scrapes and probes would otherwise start a trace every few seconds. The instrumentation searches each
#: pattern in `scheme://host/path`: anchored on the whole path, or `/certificates/verify/health` and `/metrics/x`
#: went untraced too (explore13 F7: their answers carried no trace id).
UNTRACED_URLS = ",".join(rf"^[a-z]+://[^/]*{path}$" for path in ("/metrics", "/health", "/health/ready"))


def span_details_before_routing(scope: Scope) -> tuple[str, dict[str, str]]:
    """The server span's name and attributes as it starts: the method only. The instrumentation's own matched the
    path against every route of the app on every request, before the router matches it again (6 % of an API
    process's CPU on a course read: docs/benchmarks.md, "Tenth pass"); `api.edge.EdgeMiddleware` names the span
    `<method> <route template>` and sets `http.route` from the router's match instead (`name_server_span`)."""
    method = sanitize_method(str(scope.get("method", "")).strip())
    return ("HTTP" if method == "_OTHER" else method), {}


def name_server_span(span: trace.Span, method: str, route: str | None) -> None:
    """Name the server span as OpenTelemetry's conventions do (`GET /courses/{course_id}`), once routed and before
    the response ends (the instrumentation ends the span with the response's last byte)."""
    if route and span.is_recording():
        span.update_name(f"{method} {route}")
        span.set_attribute(HTTP_ROUTE, route)


#: Where `CallerTraceBoundary` leaves a caller's `traceparent` for the server span (`record_caller_trace`).
CALLER_TRACEPARENT = "smartcourse.caller_traceparent"
_TRACE_HEADERS = (b"traceparent", b"tracestate")


class CallerTraceBoundary:
    """A caller's W3C `traceparent` is not continued (TRUST_TRACEPARENT unset): the request starts a trace of its
    own, so nobody can choose the `X-Trace-Id` they get back nor put their requests into another request's trace
    (an operator reading `smartcourse trace <id>` from a support ticket or `GET /ops/workflows` sees only what that
    request did). The header is kept as the server span's `smartcourse.caller_traceparent`. Pure ASGI, outside the
    instrumentation's middleware."""

    def __init__(self, app: ASGIApp, *, trusted: bool) -> None:
        self.app, self.trusted = app, trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.trusted:
            headers = scope.get("headers") or ()
            caller = next((value for name, value in headers if name == b"traceparent"), None)
            if caller is not None:
                scope = dict(scope)
                scope["headers"] = [(n, v) for n, v in headers if n not in _TRACE_HEADERS]
                scope[CALLER_TRACEPARENT] = caller.decode("latin-1")[:100]
        await self.app(scope, receive, send)


#: The server span's attributes that carry the request's URL: kept without its query string, which may name a person
#: (`GET /users?email=...`) or what they searched (explore55 F9: `http.url` kept it whole in the span files).
_URL_ATTRIBUTES = ("http.url", "http.target", "url.full")


def record_caller_trace(span: trace.Span, scope: dict[str, Any]) -> None:
    """The instrumentation's server-request hook: the caller's `traceparent` the boundary set aside, as an attribute;
    and the request's URL attributes without their query string."""
    if not span.is_recording():
        return
    caller = scope.get(CALLER_TRACEPARENT)
    if caller:
        span.set_attribute(CALLER_TRACEPARENT, caller)
    attributes = getattr(span, "attributes", None) or {}
    for name in _URL_ATTRIBUTES:
        value = attributes.get(name)
        if isinstance(value, str) and "?" in value:
            span.set_attribute(name, value.split("?", 1)[0])
    if attributes.get("url.query"):
        span.set_attribute("url.query", "")


def install_tracing(app: FastAPI) -> None:
    """Trace every request. Never records headers, bodies or query strings: no token or password reaches a span."""
    from opentelemetry.instrumentation import fastapi as otel_fastapi

    telemetry.configure_telemetry("api")
    # Read when the app builds its middleware stack (on its first request), for every app of the process. A private
    # name of the instrumentation's: if a release renames it, this sets nothing and the spans keep their names (the
    # route scan comes back, not a wrong name).
    otel_fastapi._get_default_span_details = span_details_before_routing
    if not getattr(app.state, "smartcourse_traced", False):
        otel_fastapi.FastAPIInstrumentor.instrument_app(
            app,
            excluded_urls=UNTRACED_URLS,
            exclude_spans=["receive", "send"],
            server_request_hook=record_caller_trace,
        )
        from smartcourse.config import get_settings

        trusted = get_settings().trust_traceparent
        build = app.build_middleware_stack

        def build_behind_the_boundary() -> ASGIApp:
            return CallerTraceBoundary(build(), trusted=trusted)

        app.build_middleware_stack = build_behind_the_boundary  # type: ignore[method-assign]
        app.state.smartcourse_traced = True
