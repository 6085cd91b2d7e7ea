"""OpenTelemetry for every process: one trace from the HTTP request to the SMTP send.

`configure_telemetry(process)` is called once at each process entry (the API app factory, the Temporal worker,
the relay, the consumers, each Celery pool process, the Lambda handlers). It installs the tracer provider,
instruments Celery (trace context in task headers), and makes every log line carry the trace.

Where spans go:
  * OTLP over HTTP (Jaeger, an OpenTelemetry collector) when OTEL_EXPORTER_OTLP_ENDPOINT (or
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set;
  * otherwise JSON lines in `<SMARTCOURSE_DATA_DIR>/traces/<process>-<pid>.jsonl`, which `smartcourse trace
    <trace_id>` reads back as a tree;
  * OTEL_TRACES_EXPORTER overrides the choice: a comma list of `otlp`, `file`, `console`, `none`;
    OTEL_SDK_DISABLED=true turns tracing off.

How the trace crosses process boundaries:
  * HTTP: W3C `traceparent` in and out (FastAPI instrumentation; responses also carry `X-Trace-Id`);
  * the outbox: `UnitOfWork.emit` stores the request's context on the row (`outbox.trace_context`), and the
    relay, a dispatcher, or anything else working from the row continues it with `continue_from(row)`;
  * Kafka: the relay's publish span goes out as a `traceparent` record header (`inject_headers`), and the
    consumer continues it (`continue_from(record.headers)`);
  * Temporal: temporalio's TracingInterceptor on the client (bootstrap; workers built on that client use it
    too) carries it into workflows and activities; Celery: the instrumentation carries it in task headers.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.util.types import Attributes

from smartcourse.logging import configure_logging, set_process_name

log = logging.getLogger(__name__)

TRACER_NAME = "smartcourse"
SPAN_FILE_SUFFIX = ".jsonl"
#: A span file is rotated (to `<name>.jsonl.1`, replacing the previous one) past this size.
MAX_SPAN_FILE_BYTES = int(os.environ.get("SMARTCOURSE_TRACE_FILE_MAX_BYTES", str(64 * 1024 * 1024)))
#: Span files of processes that stopped writing this many days ago are deleted when a process starts.
SPAN_FILE_RETENTION_DAYS = float(os.environ.get("SMARTCOURSE_TRACE_RETENTION_DAYS", "7"))
#: The first word of a database span's name (upper-cased: `text("select 1")` names its span `select`).
_SQL_VERBS = frozenset(
    {"SELECT", "INSERT", "UPDATE", "DELETE", "BEGIN", "COMMIT", "ROLLBACK", "WITH", "SHOW", "SET", "LOCK", "CONNECT"}
)

_SQL_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE|JOIN)\s+\"?([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)

_configured_pid: int | None = None
_process_name = "unknown"
_provider: TracerProvider | None = None


# --- setup --------------------------------------------------------------------------------------------------


def configure_telemetry(process_name: str) -> None:
    """Tracing and JSON logs for this process; idempotent (the first name wins), redone after a fork."""
    global _configured_pid, _process_name, _provider
    set_process_name(process_name)
    configure_logging()
    if _configured_pid == os.getpid():
        return
    _configured_pid = os.getpid()
    _process_name = process_name
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return
    resource = Resource.create(
        {
            "service.name": os.environ.get("OTEL_SERVICE_NAME") or f"smartcourse-{process_name}",
            "service.namespace": "smartcourse",
            "smartcourse.process": process_name,
            "process.pid": os.getpid(),
            "deployment.environment": os.environ.get("SMARTCOURSE_ENV", "development"),
        }
    )
    existing = trace.get_tracer_provider()
    if isinstance(existing, TracerProvider):
        # Someone configured the SDK already (`opentelemetry-instrument`, the distro): use theirs as it is.
        _provider = existing
        _instrument_celery()
        return
    provider = TracerProvider(resource=resource, sampler=ParentBased(root=RootSampler()))
    for exporter, delay_ms in _exporters(process_name):
        provider.add_span_processor(
            BatchSpanProcessor(
                exporter,
                schedule_delay_millis=int(os.environ.get("OTEL_BSP_SCHEDULE_DELAY", str(delay_ms))),
                max_queue_size=int(os.environ.get("OTEL_BSP_MAX_QUEUE_SIZE", "8192")),
            )
        )
    _provider = provider
    trace.set_tracer_provider(provider)
    _instrument_celery()
    if _file_exporting():
        _sweep_old_span_files(span_dir())


def _exporters(process_name: str) -> list[tuple[SpanExporter, int]]:
    chosen = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if not chosen:
        otlp = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        chosen = "otlp" if otlp else "file"
    out: list[tuple[SpanExporter, int]] = []
    for name in {n.strip() for n in chosen.split(",") if n.strip()}:
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            out.append((OTLPSpanExporter(), 2000))
        elif name == "file":
            out.append((JsonLinesSpanExporter(process_name), 1000))
        elif name == "console":
            out.append((ConsoleSpanExporter(), 1000))
        elif name != "none":
            log.warning("OTEL_TRACES_EXPORTER=%s: unknown exporter %r ignored", chosen, name)
    return out


def _file_exporting() -> bool:
    return _provider is not None and any(
        isinstance(getattr(p, "span_exporter", None), JsonLinesSpanExporter)
        for p in getattr(_provider._active_span_processor, "_span_processors", ())
    )


def _instrument_celery() -> None:
    """Celery's producer side (apply_async injects the context into the task headers) and its worker side."""
    from opentelemetry.instrumentation.celery import CeleryInstrumentor

    instrumentor = CeleryInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()


#: The flush in progress, if any (`force_flush`).
_flushing: threading.Thread | None = None

#: How long a Lambda invocation waits for its spans to be exported before it answers (`force_flush` in the handlers).
LAMBDA_FLUSH_MILLIS = 2000


def force_flush(timeout_millis: int = 5000) -> bool:
    """Export what this process has buffered (tests, and short-lived processes before they exit, a Lambda invocation
    before it is frozen), waiting at most `timeout_millis`. The SDK's own flush runs the export in the caller and
    waits out the exporter's timeout and retries whatever it is asked: a collector that did not answer added 7-15 s to
    every Lambda invocation (explore33 F4). So it runs on a thread of its own, and while one is still exporting the
    next call does not wait for it: an unreachable collector costs spans, not the requests' time. False when not
    done in time."""
    global _flushing
    provider = _provider
    if provider is None:
        return True
    if _flushing is not None and _flushing.is_alive():
        return False
    done: list[bool] = []
    _flushing = threading.Thread(
        target=lambda: done.append(provider.force_flush(timeout_millis)), name="otel-flush", daemon=True
    )
    _flushing.start()
    _flushing.join(timeout_millis / 1000)
    return bool(done) and done[0]


def process_name() -> str:
    return _process_name


class RootSampler(Sampler):
    """Samples every new trace except a database statement with no parent (PostgreSQL's in any case, or any client
    span carrying `db.system`: Redis's too): the relay's polling, the sweepers, the worker's state metrics and
    `/health`'s probes would otherwise start a trace per query. Anything started under a request or a task is kept
    by the parent-based sampler around it (OTEL_TRACES_SAMPLER is not read: this is the root policy)."""

    def should_sample(
        self,
        parent_context: otel_context.Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        orphan_statement = kind == SpanKind.CLIENT and (
            name.split(" ", 1)[0].upper() in _SQL_VERBS or bool(attributes and attributes.get("db.system"))
        )
        if orphan_statement:
            return ALWAYS_OFF.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)
        return ALWAYS_ON.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return "SmartCourseRoot(no orphan SQL)"


_tracer: tuple[trace.TracerProvider, trace.Tracer] | None = None


def tracer() -> trace.Tracer:
    """SmartCourse's tracer from the current provider, built once per provider.

    `trace.get_tracer` builds a new Tracer at each call (the SDK's provider compares instrumentation scopes to
    find it): 5 % of the enrollment worker's busy CPU when every span asked for it (docs/benchmarks.md,
    "Eighth pass"). A provider set later (the SDK's, after the proxy) gets its own tracer."""
    global _tracer
    provider = trace.get_tracer_provider()
    cached = _tracer
    if cached is None or cached[0] is not provider:
        cached = _tracer = (provider, provider.get_tracer(TRACER_NAME))
    return cached[1]


def trace_engine(engine: Any) -> None:
    """SQL spans for an (async) SQLAlchemy engine: each statement a child of the span that ran it."""
    from opentelemetry.instrumentation.sqlalchemy import EngineTracer
    from opentelemetry.metrics import get_meter

    sync_engine = getattr(engine, "sync_engine", engine)
    if getattr(sync_engine, "_smartcourse_traced", False):
        return
    usage = get_meter(TRACER_NAME).create_up_down_counter("db.client.connections.usage", unit="connections")
    EngineTracer(tracer(), sync_engine, usage)
    sync_engine._smartcourse_traced = True


# --- the context: current ids, carriers, continuing a stored context -------------------------------------------


def current_trace_id() -> str | None:
    """The current trace id as 32 hex digits, or None outside any span."""
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


def current_span_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.span_id, "016x") if ctx.is_valid else None


def current_carrier() -> dict[str, str] | None:
    """The current context as W3C headers (`traceparent`, `tracestate`), or None outside any span: what the
    outbox stores with an event."""
    if not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier or None


def inject_headers(headers: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """Append the current context to Kafka record headers (`traceparent` as bytes)."""
    for key, value in (current_carrier() or {}).items():
        headers.append((key, value.encode()))
    return headers


def _as_carrier(source: Any) -> dict[str, str]:
    """A text-map carrier from an outbox row (`.trace_context`), a mapping, or Kafka headers (pairs of
    str/bytes)."""
    if source is None:
        return {}
    if hasattr(source, "trace_context"):
        source = source.trace_context
        if source is None:
            return {}
    if isinstance(source, Mapping):
        return {str(k).lower(): _text(v) for k, v in source.items() if v is not None}
    carrier: dict[str, str] = {}
    try:
        for key, value in source:
            if value is not None:
                carrier[str(key).lower()] = _text(value)
    except (TypeError, ValueError):
        return {}
    return carrier


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes | bytearray) else str(value)


def extract_context(source: Any) -> otel_context.Context | None:
    """The context stored in `source` (see `_as_carrier`), or None when it carries none."""
    carrier = _as_carrier(source)
    if "traceparent" not in carrier:
        return None
    ctx = propagate.extract(carrier)
    return ctx if trace.get_current_span(ctx).get_span_context().is_valid else None


@contextlib.contextmanager
def continue_from(
    source: Any,
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Attributes = None,
) -> Iterator[trace.Span]:
    """A span named `name`, current for the block, continuing the trace stored in `source`.

    `source` is an outbox row (its `trace_context`, written by `UnitOfWork.emit` from the request that caused
    the event), a carrier mapping (`{"traceparent": ...}`), Kafka record headers, or None. Without a stored
    context the span starts a new trace. An exception is recorded on the span (status ERROR) and re-raised.
    Used by the outbox relay, the Kafka consumers, and whatever else acts on an outbox row later (a dispatcher
    starting a workflow): `with telemetry.continue_from(row, "dispatch enrollment"): ...`
    """
    parent = extract_context(source)
    with tracer().start_as_current_span(name, context=parent, kind=kind, attributes=attributes) as span:
        yield span


def publishing(row: Any) -> contextlib.AbstractContextManager[trace.Span]:
    """The relay's span for publishing one outbox row, in the trace of the request that emitted it: a
    publisher called inside it carries the context on (Kafka header; in-process consumers run inside it)."""
    return continue_from(
        row,
        f"outbox publish {row.event_type}",
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.destination.name": str(row.topic),
            "messaging.message.id": str(row.id),
            "smartcourse.event_type": str(row.event_type),
            "smartcourse.aggregate_id": str(row.aggregate_id),
        },
    )


def mark_error(span: trace.Span, exc: BaseException) -> None:
    """Record `exc` on `span` and set its status to ERROR (for errors that are handled, not raised)."""
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"[:500]))


# --- the local span file ---------------------------------------------------------------------------------------


def span_dir() -> Path:
    """Where spans are written without a collector: SMARTCOURSE_TRACE_DIR, else `<data dir>/traces`."""
    explicit = os.environ.get("SMARTCOURSE_TRACE_DIR")
    if explicit:
        return Path(explicit)
    data_dir = os.environ.get("SMARTCOURSE_DATA_DIR")
    return (Path(data_dir) if data_dir else _settings_data_dir()) / "traces"


def _settings_data_dir() -> Path:
    """The data directory as the settings read it, `.env` included: `smartcourse trace` or a `serve` started by hand
    in a directory whose `.env` names it looked in `./var/traces` (explore16 F3). `var` when the settings cannot be
    read (spans must never fail over a setting)."""
    try:
        from smartcourse.config import get_settings

        return Path(get_settings().data_dir)
    except Exception:
        return Path("var")


def _hex(value: int | None, width: int) -> str | None:
    return format(value, f"0{width}x") if value else None


def span_record(span: ReadableSpan, process: str) -> dict[str, Any]:
    """One span as the JSON object of a span-file line."""
    ctx = span.get_span_context()
    start, end = span.start_time or 0, span.end_time or span.start_time or 0
    record: dict[str, Any] = {
        "trace_id": _hex(ctx.trace_id if ctx else None, 32),
        "span_id": _hex(ctx.span_id if ctx else None, 16),
        "parent_id": _hex(span.parent.span_id if span.parent else None, 16),
        "name": span.name,
        "kind": span.kind.name,
        "process": span.resource.attributes.get("smartcourse.process", process),
        "service": span.resource.attributes.get("service.name"),
        "pid": span.resource.attributes.get("process.pid"),
        "start": start / 1e9,
        "duration_ms": round((end - start) / 1e6, 3),
        "status": span.status.status_code.name,
    }
    if span.status.description:
        record["status_message"] = span.status.description
    if span.attributes:
        record["attributes"] = dict(span.attributes)
    if span.links:  # e.g. an e-mail in its request's trace, linked to the batch task that sent it
        record["links"] = [
            {"trace_id": _hex(link.context.trace_id, 32), "span_id": _hex(link.context.span_id, 16)}
            for link in span.links
        ]
    errors = [e for e in span.events if e.name == "exception"]
    if errors:
        record["exceptions"] = [
            {k: (e.attributes or {}).get(k) for k in ("exception.type", "exception.message")} for e in errors
        ]
    return record


class JsonLinesSpanExporter(SpanExporter):
    """Appends each finished span as one JSON line to `<span_dir()>/<process>-<pid>.jsonl` (one file per process:
    no interleaving between writers). The directory is resolved at each export, so a process that set
    SMARTCOURSE_DATA_DIR after starting its tracer still writes where its data is."""

    def __init__(self, process: str) -> None:
        self.process = process
        self._made: Path | None = None  # the directory this exporter created (no mkdir per export)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = "".join(
            json.dumps(span_record(s, self.process), separators=(",", ":"), default=str) + "\n" for s in spans
        )
        directory = span_dir()
        path = directory / f"{self.process}-{os.getpid()}{SPAN_FILE_SUFFIX}"
        try:
            if directory != self._made:
                directory.mkdir(parents=True, exist_ok=True)
                self._made = directory
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(lines)
                size = fh.tell()
            if size > MAX_SPAN_FILE_BYTES:
                path.replace(path.with_name(path.name + ".1"))
        except OSError:
            self._made = None  # the directory may have gone: make it again next time
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _sweep_old_span_files(directory: Path) -> None:
    cutoff = time.time() - SPAN_FILE_RETENTION_DAYS * 86400
    with contextlib.suppress(OSError):
        for path in directory.glob(f"*{SPAN_FILE_SUFFIX}*"):
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()


def read_spans(trace_id: str, directory: Path | None = None) -> list[dict[str, Any]]:
    """Every span of `trace_id` found in the span files of `directory` (default `span_dir()`)."""
    wanted = normalize_trace_id(trace_id)
    directory = directory or span_dir()
    spans: list[dict[str, Any]] = []
    needle = f'"trace_id":"{wanted}"'
    for path in sorted(directory.glob(f"*{SPAN_FILE_SUFFIX}*")):
        with contextlib.suppress(OSError), open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if needle in line:
                    with contextlib.suppress(ValueError):
                        spans.append(json.loads(line))
    return spans


def normalize_trace_id(value: str) -> str:
    """32 lower-case hex digits from a trace id, a `traceparent` value, or an `X-Trace-Id` header."""
    text = value.strip().lower()
    parts = text.split("-")
    if len(parts) == 4 and len(parts[1]) == 32:
        text = parts[1]
    if len(text) != 32 or any(c not in "0123456789abcdef" for c in text):
        raise ValueError(f"{value!r} is not a trace id (32 hex digits, or a traceparent)")
    return text


def fetch_jaeger_spans(trace_id: str, query_url: str, *, timeout: float = 5.0) -> list[dict[str, Any]]:
    """The spans of `trace_id` from a Jaeger query API (`/api/traces/<id>`), as span-file records."""
    url = f"{query_url.rstrip('/')}/api/traces/{normalize_trace_id(trace_id)}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            body = json.load(resp)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return []
        raise
    out: list[dict[str, Any]] = []
    for found in body.get("data") or []:
        processes = found.get("processes") or {}
        for span in found.get("spans") or []:
            tags = {t["key"]: t.get("value") for t in span.get("tags") or []}
            proc = processes.get(span.get("processID")) or {}
            ptags = {t["key"]: t.get("value") for t in proc.get("tags") or []}
            parent = next(
                (r.get("spanID") for r in span.get("references") or [] if r.get("refType") == "CHILD_OF"), None
            )
            code = str(tags.get("otel.status_code") or "")
            record: dict[str, Any] = {
                "trace_id": span.get("traceID"),
                "span_id": span.get("spanID"),
                "parent_id": parent,
                "name": span.get("operationName"),
                "kind": str(tags.get("span.kind") or "internal").upper(),
                "process": ptags.get("smartcourse.process") or proc.get("serviceName"),
                "service": proc.get("serviceName"),
                "pid": ptags.get("process.pid"),
                "start": float(span.get("startTime") or 0) / 1e6,
                "duration_ms": float(span.get("duration") or 0) / 1000,
                "status": "ERROR" if code == "ERROR" or tags.get("error") is True else (code or "UNSET"),
                "attributes": {k: v for k, v in tags.items() if not k.startswith("otel.") and k != "span.kind"},
            }
            if tags.get("otel.status_description"):
                record["status_message"] = tags["otel.status_description"]
            links = [  # OTLP span links arrive as FOLLOWS_FROM references
                {"trace_id": r.get("traceID"), "span_id": r.get("spanID")}
                for r in span.get("references") or []
                if r.get("refType") == "FOLLOWS_FROM"
            ]
            if links:
                record["links"] = links
            out.append(record)
    return out


def _label(span: dict[str, Any]) -> str:
    """A span's name, and for a SQL statement the table it touches (`SELECT enrollments`)."""
    name = str(span.get("name"))
    statement = (span.get("attributes") or {}).get("db.statement")
    if isinstance(statement, str):
        match = _SQL_TABLE.search(statement)
        if match and match.group(1).lower() not in name.lower():
            name = f"{name} {match.group(1)}"
    return name


def fail_current_span(message: str) -> None:
    """Mark the current span failed (a Celery attempt's `run/<task>` span that is retried or dead-lettered: the
    instrumentation leaves it `ok`, explore10 F8)."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_status(Status(StatusCode.ERROR, message[:300]))


def retry_reason(reason: Any) -> str:
    """Celery's `task_retry` reason (a `Retry` carrying the error, or the error) as a span status message."""
    cause = getattr(reason, "exc", None) or reason
    return f"retrying after {type(cause).__name__}: {cause}"


def format_trace(spans: list[dict[str, Any]], trace_id: str | None = None) -> str:
    """The spans of one trace as an indented tree: process, span name, duration, status. `trace_id`: the trace
    asked for; spans of other traces among `spans` (those that link to it: a Celery batch serving several requests)
    are counted apart in the header, which names the trace asked for (explore10 F8: it named whichever span came
    first)."""
    if not spans:
        return ""
    wanted = normalize_trace_id(trace_id) if trace_id else str(spans[0]["trace_id"])
    linked = {str(s.get("trace_id")) for s in spans} - {wanted}
    by_id = {s["span_id"]: s for s in spans if s.get("span_id")}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for s in spans:
        parent = s.get("parent_id")
        children.setdefault(parent if parent in by_id else None, []).append(s)
    for kids in children.values():
        kids.sort(key=lambda s: float(s.get("start") or 0))
    starts = [float(s.get("start") or 0) for s in spans]
    ends = [float(s.get("start") or 0) + float(s.get("duration_ms") or 0) / 1000 for s in spans]
    processes = sorted({str(s.get("process")) for s in spans})
    others = sum(1 for s in spans if str(s.get("trace_id")) != wanted)
    head = (
        f"trace {wanted}: {len(spans)} spans in {len(processes)} processes "
        f"({', '.join(processes)}), {1000 * (max(ends) - min(starts)):.1f} ms"
    )
    if linked:
        head += f"; {others} of them in {len(linked)} linked trace(s) ({', '.join(sorted(linked))})"
    width = max(len("PROCESS"), *(len(p) for p in processes))
    lines = [head, f"{'PROCESS':<{width}}  {'SPAN':<64} {'DURATION':>11}  STATUS"]

    def walk(span: dict[str, Any], depth: int) -> None:
        name = ("  " * depth + _label(span))[:64]
        status = "ERROR" if span.get("status") == "ERROR" else "ok"
        if span.get("status_message"):
            status += f": {span['status_message']}"
        duration = f"{float(span.get('duration_ms') or 0):.1f} ms"
        lines.append(f"{span.get('process')!s:<{width}}  {name:<64} {duration:>11}  {status}")
        for kid in children.get(span.get("span_id"), []):
            walk(kid, depth + 1)

    for root in children.get(None, []):
        walk(root, 0)
    return "\n".join(lines)
