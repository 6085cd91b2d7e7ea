"""The HTTP side of tracing: a server span per request (W3C `traceparent` in and out).

The span's id goes out on every answer (`traceparent`, `X-Trace-Id`) and the request log line is written by
`api.edge.EdgeMiddleware`, which runs inside this span."""

from __future__ import annotations

from fastapi import FastAPI

from smartcourse import telemetry

#: Not traced: scrapes and probes would otherwise start a trace every few seconds.
UNTRACED_URLS = "/metrics,/health$"


def install_tracing(app: FastAPI) -> None:
    """Trace every request. Never records headers, bodies or query strings: no token or password reaches a span."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    telemetry.configure_telemetry("api")
    if not getattr(app.state, "smartcourse_traced", False):
        FastAPIInstrumentor.instrument_app(app, excluded_urls=UNTRACED_URLS, exclude_spans=["receive", "send"])
        app.state.smartcourse_traced = True
