"""Tracing helpers: carriers and continuing a stored context, the span file, `smartcourse trace`, JSON log lines."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from smartcourse import telemetry
from smartcourse.logging import JsonFormatter, install_record_factory

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
ENV = {k: v for k, v in os.environ.items() if k != "JAEGER_QUERY_URL"}  # the span files only
PARENT = "00f067aa0ba902b7"


@pytest.fixture
def spans() -> InMemorySpanExporter:
    """A private provider (the global one may be the suite's): spans recorded in memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    original = telemetry.tracer
    telemetry.tracer = lambda: provider.get_tracer("test")  # type: ignore[assignment]
    yield exporter
    telemetry.tracer = original  # type: ignore[assignment]


def test_continue_from_an_outbox_row_joins_the_stored_trace(spans: InMemorySpanExporter) -> None:
    row = SimpleNamespace(trace_context={"traceparent": f"00-{TRACE}-{PARENT}-01"})
    with telemetry.continue_from(row, "outbox publish x", kind=SpanKind.PRODUCER):
        pass
    (span,) = spans.get_finished_spans()
    assert format(span.context.trace_id, "032x") == TRACE
    assert span.parent is not None and format(span.parent.span_id, "016x") == PARENT
    assert span.kind == SpanKind.PRODUCER


@pytest.mark.parametrize(
    "source",
    [
        [("event_type", b"user.registered"), ("traceparent", f"00-{TRACE}-{PARENT}-01".encode())],  # Kafka
        {"Traceparent": f"00-{TRACE}-{PARENT}-01"},  # a carrier, any case
    ],
)
def test_continue_from_headers_and_carriers(spans: InMemorySpanExporter, source: Any) -> None:
    with telemetry.continue_from(source, "consume"):
        pass
    assert format(spans.get_finished_spans()[0].context.trace_id, "032x") == TRACE


@pytest.mark.parametrize("source", [None, SimpleNamespace(trace_context=None), {}, [("event_id", b"x")], 42])
def test_without_a_stored_context_a_new_trace_starts(spans: InMemorySpanExporter, source: Any) -> None:
    with telemetry.continue_from(source, "consume"):
        pass
    (span,) = spans.get_finished_spans()
    assert span.parent is None and format(span.context.trace_id, "032x") != TRACE


def test_an_exception_marks_the_span_failed_and_propagates(spans: InMemorySpanExporter) -> None:
    with pytest.raises(RuntimeError), telemetry.continue_from(None, "consume"):
        raise RuntimeError("broker down")
    (span,) = spans.get_finished_spans()
    assert span.status.status_code.name == "ERROR"
    assert any(e.name == "exception" for e in span.events)


def test_carrier_and_headers_of_the_current_span(spans: InMemorySpanExporter) -> None:
    assert telemetry.current_carrier() is None and telemetry.current_trace_id() is None
    with telemetry.continue_from({"traceparent": f"00-{TRACE}-{PARENT}-01"}, "work"):
        carrier = telemetry.current_carrier()
        headers = telemetry.inject_headers([])
        assert telemetry.current_trace_id() == TRACE
    assert carrier is not None and carrier["traceparent"].split("-")[1] == TRACE
    assert headers == [("traceparent", carrier["traceparent"].encode())]


def test_root_sql_statements_are_not_sampled_but_requests_are() -> None:
    sampler = telemetry.RootSampler()
    assert not sampler.should_sample(None, 1, "SELECT smartcourse", SpanKind.CLIENT).decision.is_sampled()
    # `text("select 1")` (the health probe, the worker's state metrics): lower case; and Redis, by its db.system.
    assert not sampler.should_sample(None, 1, "select", SpanKind.CLIENT).decision.is_sampled()
    assert not sampler.should_sample(None, 1, "connect", SpanKind.CLIENT).decision.is_sampled()
    assert not sampler.should_sample(None, 1, "GET", SpanKind.CLIENT, {"db.system": "redis"}).decision.is_sampled()
    assert sampler.should_sample(None, 1, "POST /enrollments", SpanKind.SERVER).decision.is_sampled()
    assert sampler.should_sample(None, 1, "smtp send", SpanKind.CLIENT).decision.is_sampled()


def test_normalize_trace_id_accepts_a_traceparent_and_refuses_junk() -> None:
    assert telemetry.normalize_trace_id(TRACE.upper()) == TRACE
    assert telemetry.normalize_trace_id(f"00-{TRACE}-{PARENT}-01") == TRACE
    with pytest.raises(ValueError):
        telemetry.normalize_trace_id("not-a-trace")


# --- the span file and `smartcourse trace` ---------------------------------------------------------------


def _span(span_id: str, parent: str | None, name: str, process: str, start: float, ms: float, **kw: Any) -> str:
    record = {
        "trace_id": TRACE,
        "span_id": span_id,
        "parent_id": parent,
        "name": name,
        "kind": "INTERNAL",
        "process": process,
        "start": start,
        "duration_ms": ms,
        "status": "UNSET",
        **kw,
    }
    return json.dumps(record, separators=(",", ":")) + "\n"


def _write_trace(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "api-100.jsonl").write_text(
        _span("a" * 16, None, "POST /enrollments", "api", 100.0, 40.0)
        + _span("b" * 16, "a" * 16, "INSERT", "api", 100.01, 2.5, attributes={"db.statement": "INSERT INTO outbox"})
        + json.dumps({**json.loads(_span("9" * 16, None, "GET /health", "api", 1.0, 1.0)), "trace_id": "f" * 32})
        + "\n"
    )
    (directory / "celery-200.jsonl").write_text(
        _span("c" * 16, "a" * 16, "run/notifications.send_email", "celery", 100.5, 30.0)
        + _span("d" * 16, "c" * 16, "smtp send", "celery", 100.51, 12.0, status="ERROR", status_message="refused")
    )


def test_smartcourse_trace_prints_the_tree_across_processes(tmp_path: Path) -> None:
    _write_trace(tmp_path / "traces")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "smartcourse.cli",
            "trace",
            f"00-{TRACE}-{PARENT}-01",
            "--dir",
            str(tmp_path / "traces"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=ENV,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith(f"trace {TRACE}: 4 spans in 2 processes (api, celery)")
    rows = [line.split() for line in lines[2:]]
    assert [(r[0], r[1]) for r in rows] == [
        ("api", "POST"),
        ("api", "INSERT"),
        ("celery", "run/notifications.send_email"),
        ("celery", "smtp"),
    ]
    # Children are indented under their parent; SQL shows its table; failures show their cause.
    assert "  INSERT outbox" in lines[3] and "    smtp send" in lines[5]
    assert lines[2].rstrip().endswith("40.0 ms  ok")
    assert lines[5].rstrip().endswith("12.0 ms  ERROR: refused")
    assert "GET /health" not in out.stdout  # another trace's span


def test_smartcourse_trace_says_where_it_looked(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "smartcourse.cli", "trace", TRACE, "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=ENV,
    )
    assert out.returncode == 1 and str(tmp_path) in out.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "smartcourse.cli", "trace", "xyz", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=ENV,
    )
    assert bad.returncode == 2 and "not a trace id" in bad.stderr


def test_smartcourse_trace_stops_quietly_when_its_reader_leaves(tmp_path: Path) -> None:
    """`smartcourse trace <id> --json | head -1`: the rest of the output has nowhere to go, and that is no error
    worth a traceback (it printed `BrokenPipeError` from the final flush)."""
    spans = tmp_path / "traces"
    spans.mkdir()
    (spans / "api-1.jsonl").write_text(  # far more than a pipe holds, so the writer meets the closed end
        "".join(_span(f"{i:016x}", None, f"span {i}", "api", 100.0 + i, 1.0) for i in range(3000))
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "smartcourse.cli", "trace", TRACE, "--dir", str(spans), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert json.loads(proc.stdout.readline())["trace_id"] == TRACE
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert proc.returncode == 1


def test_the_span_file_exporter_writes_one_line_per_span(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTCOURSE_TRACE_DIR", str(tmp_path))
    exporter = telemetry.JsonLinesSpanExporter("worker")
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("RunWorkflow:EnrollmentWorkflow") as parent:
        with tracer.start_as_current_span("RunActivity:enroll.activate", attributes={"n": 1}):
            pass
        trace_id = format(parent.get_span_context().trace_id, "032x")
    found = telemetry.read_spans(trace_id, tmp_path)
    assert sorted(s["name"] for s in found) == ["RunActivity:enroll.activate", "RunWorkflow:EnrollmentWorkflow"]
    child = next(s for s in found if s["name"] == "RunActivity:enroll.activate")
    assert child["process"] == "worker" and child["attributes"] == {"n": 1}
    assert child["parent_id"] == format(parent.get_span_context().span_id, "016x")
    assert [p.name for p in tmp_path.iterdir()] == [next(tmp_path.iterdir()).name]  # one file per process


def test_jaeger_answers_are_read_as_span_records(monkeypatch: pytest.MonkeyPatch) -> None:
    body = {
        "data": [
            {
                "processes": {
                    "p1": {
                        "serviceName": "smartcourse-relay",
                        "tags": [{"key": "smartcourse.process", "value": "relay"}],
                    }
                },
                "spans": [
                    {
                        "traceID": TRACE,
                        "spanID": "c" * 16,
                        "operationName": "outbox publish enrollment.created",
                        "references": [{"refType": "CHILD_OF", "spanID": "a" * 16}],
                        "startTime": 100_000_000,
                        "duration": 1500,
                        "processID": "p1",
                        "tags": [
                            {"key": "span.kind", "value": "producer"},
                            {"key": "otel.status_code", "value": "ERROR"},
                            {"key": "otel.status_description", "value": "broker down"},
                        ],
                    }
                ],
            }
        ]
    }

    class Answer:
        def __enter__(self) -> Answer:
            return self

        def __exit__(self, *_: Any) -> None:
            return None

        def read(self) -> bytes:
            return json.dumps(body).encode()

    seen: list[str] = []
    monkeypatch.setattr(telemetry.urllib.request, "urlopen", lambda url, timeout: seen.append(url) or Answer())
    (span,) = telemetry.fetch_jaeger_spans(TRACE, "http://127.0.0.1:16686/")
    assert seen == [f"http://127.0.0.1:16686/api/traces/{TRACE}"]
    assert span["process"] == "relay" and span["parent_id"] == "a" * 16 and span["kind"] == "PRODUCER"
    assert span["status"] == "ERROR" and span["status_message"] == "broker down" and span["duration_ms"] == 1.5


# --- log lines ---------------------------------------------------------------------------------------------


def test_a_log_line_carries_time_level_process_and_the_trace(spans: InMemorySpanExporter) -> None:
    install_record_factory()  # records are stamped when created: formatting may happen later, outside the span
    logger = logging.getLogger("smartcourse.test")
    with telemetry.continue_from({"traceparent": f"00-{TRACE}-{PARENT}-01"}, "work") as span:
        record = logger.makeRecord(logger.name, logging.INFO, __file__, 1, "hello %s", ("ada",), None)
        span_id = format(span.get_span_context().span_id, "016x")
    record.route = "/courses/{course_id}"
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "hello ada" and line["level"] == "info" and line["time"].endswith("+00:00")
    assert line["trace_id"] == TRACE and line["span_id"] == span_id
    assert "process" in line and line["route"] == "/courses/{course_id}"


def test_the_tracer_is_built_once_per_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    """`tracer()` is called for every span: it hands back the same tracer until another provider is set."""
    from opentelemetry import trace

    first, second = TracerProvider(), TracerProvider()
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: first)
    a, b = telemetry.tracer(), telemetry.tracer()
    assert a is b
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: second)
    c = telemetry.tracer()
    assert c is not a and c is telemetry.tracer()


def test_the_span_file_exporter_makes_its_directory_again_when_it_went(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "spans"
    monkeypatch.setenv("SMARTCOURSE_TRACE_DIR", str(directory))
    exporter = telemetry.JsonLinesSpanExporter("worker")
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("one"):
        pass
    assert len(list(directory.iterdir())) == 1
    for path in directory.iterdir():
        path.unlink()
    directory.rmdir()
    with tracer.start_as_current_span("lost"):  # the directory it made is gone: this export fails ...
        pass
    with tracer.start_as_current_span("two") as span:  # ... and the next one makes it again
        trace_id = format(span.get_span_context().trace_id, "032x")
    assert [s["name"] for s in telemetry.read_spans(trace_id, directory)] == ["two"]


def test_the_server_span_is_named_without_the_instrumentations_route_scan() -> None:
    """`api.tracing` replaces a private function of opentelemetry-instrumentation-fastapi (its per-request scan of
    every route): fail loudly if a release stops reading that name, rather than silently scanning again."""
    import inspect

    from opentelemetry.instrumentation import fastapi as otel_fastapi

    from smartcourse.api.tracing import span_details_before_routing

    assert "default_span_details=_get_default_span_details" in inspect.getsource(otel_fastapi)
    assert span_details_before_routing({"method": "GET", "path": "/courses/1"}) == ("GET", {})
    assert span_details_before_routing({"method": "BREW"}) == ("HTTP", {})


def test_the_header_names_the_trace_asked_for_and_counts_the_linked_ones() -> None:
    """explore10 F8: a Celery batch serving several requests links to each; `smartcourse trace <request>` finds its
    spans through the link, and the header named the batch's trace, whichever span came first."""
    other = "e" * 32
    linked = json.loads(_span("e" * 16, None, "run/notifications.send_emails", "celery", 99.0, 5.0))
    spans = [
        {**linked, "trace_id": other, "links": [{"trace_id": TRACE, "span_id": "a" * 16}]},
        json.loads(_span("a" * 16, None, "POST /enrollments", "api", 100.0, 40.0)),
    ]
    head = telemetry.format_trace(spans, f"00-{TRACE}-{PARENT}-01").splitlines()[0]
    assert head.startswith(f"trace {TRACE}: 2 spans in 2 processes")
    assert head.endswith(f"; 1 of them in 1 linked trace(s) ({other})")
    alone = telemetry.format_trace(spans[1:], TRACE).splitlines()[0]
    assert "linked" not in alone


def test_a_retried_or_dead_lettered_celery_attempt_marks_its_run_span_failed() -> None:
    """explore10 F8: each failed attempt's `run/<task>` span said ok; only its inner spans said ERROR. (The Celery
    signal handlers call these; importing `smartcourse.tasks` here would configure Celery for the whole suite.)"""
    from celery.exceptions import Retry
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import StatusCode

    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("run/notifications.send_emails") as span:
        telemetry.fail_current_span(telemetry.retry_reason(Retry(exc=ConnectionRefusedError(111, "refused"))))
    assert span.status.status_code is StatusCode.ERROR  # type: ignore[attr-defined]
    assert span.status.description == "retrying after ConnectionRefusedError: [Errno 111] refused"  # type: ignore[attr-defined]
    with tracer.start_as_current_span("run/notifications.send_email") as span:
        telemetry.fail_current_span("dead-lettered after 5 retries: OSError: down")
    assert span.status.description == "dead-lettered after 5 retries: OSError: down"  # type: ignore[attr-defined]


def test_the_span_files_follow_the_data_dir_of_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """explore16 F3: with SMARTCOURSE_DATA_DIR in `.env` only, `smartcourse trace` looked in `./var/traces`."""
    from smartcourse.config import get_settings

    (tmp_path / ".env").write_text(f"SMARTCOURSE_DATA_DIR={tmp_path / 'data'}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SMARTCOURSE_DATA_DIR", raising=False)
    monkeypatch.delenv("SMARTCOURSE_TRACE_DIR", raising=False)
    get_settings.cache_clear()
    try:
        assert telemetry.span_dir() == tmp_path / "data" / "traces"
        monkeypatch.setenv("SMARTCOURSE_DATA_DIR", str(tmp_path / "env"))  # the environment still comes first
        assert telemetry.span_dir() == tmp_path / "env" / "traces"
    finally:
        get_settings.cache_clear()
