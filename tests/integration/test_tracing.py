"""One trace end to end: an enrollment's trace id followed through every process it touches; error bodies, the
request log line, and (with the stack) the Kafka header path from the relay to a consumer."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from smartcourse import telemetry
from smartcourse.logging import JsonFormatter
from tests.conftest import Api, read_mail
from tests.engines import require_engine

pytestmark = pytest.mark.timeout(300)


async def collect_spans(
    trace_id: str, data_dir: Path, done: Callable[[list[dict[str, Any]]], bool], timeout: float = 45
) -> list[dict[str, Any]]:
    """The trace's spans from every process's span file (and Jaeger, when the processes export there), polled
    until `done` holds: a process exports about a second after its spans end."""
    jaeger = os.environ.get("JAEGER_QUERY_URL") if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") else None
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        telemetry.force_flush()
        spans = {s["span_id"]: s for s in telemetry.read_spans(trace_id, data_dir / "traces")}
        if jaeger:
            spans.update({s["span_id"]: s for s in telemetry.fetch_jaeger_spans(trace_id, jaeger)})
        found = list(spans.values())
        if done(found) or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.5)


def names(spans: list[dict[str, Any]]) -> set[str]:
    """Span names, plus `<prefix>.*` for each dotted name (so a path can name "any activity of enroll")."""
    out = {str(s["name"]) for s in spans}
    return out | {n.rsplit(".", 1)[0] + ".*" for n in out if "." in n}


REQUEST_PATH = [
    "POST /enrollments",  # the API's server span
    "outbox publish enrollment.created",  # the relay, continuing the context stored on the outbox row
    "analytics consume",  # the consumers, inside the relay's span
]
WORKFLOW_PATH = [
    "StartWorkflow:EnrollmentWorkflow",  # the workflow start (the dispatcher, fed by the outbox)
    "RunWorkflow:EnrollmentWorkflow",  # the worker
    "RunActivity:enroll.*",  # its activities (the one that enqueues the welcome email among them)
    "deliver email",  # the Celery worker process: this e-mail of a `notifications.send_emails` batch
    "smtp send",  # adapters/mail.py, in the Celery worker
]


@pytest.fixture(scope="module")
async def enrolled(
    api_module: Api, worker: object, celery_worker: Any, settings: Any, container: Any
) -> dict[str, Any]:
    """One enrollment through the embedded set (API and worker in this process, a Celery worker subprocess, the
    SMTP sink), up to its welcome email."""
    api = api_module
    teacher, student = await api.user("instructor"), await api.user()
    course = await api.course(teacher, title="Traced Course")
    module = await api.module(teacher, course["id"])
    await api.lesson(teacher, course["id"], module["id"])
    r = await api.client.post(f"/courses/{course['id']}/publish", headers=teacher["headers"])
    assert (await api.wait_workflow(teacher, r.json()["workflow_id"], timeout=180))["status"] == "completed"
    r = await api.client.post("/enrollments", json={"course_id": course["id"]}, headers=student["headers"])
    assert r.status_code == 201, r.text
    deadline = asyncio.get_running_loop().time() + 90
    while not read_mail(settings.mail_dir, to=student["email"]):
        assert asyncio.get_running_loop().time() < deadline, "no welcome email"
        await asyncio.sleep(0.3)
    return {"response": r, "workflow_id": f"enroll-{course['id']}-{student['id']}-1", "data_dir": settings.data_dir}


@pytest.fixture(scope="module")
async def api_module(app: Any) -> Any:
    import httpx

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield Api(client)


def spans_where(data_dir: Path, match: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    out = []
    for path in sorted((data_dir / "traces").glob("*.jsonl*")):
        for line in path.read_text(errors="replace").splitlines():
            span = json.loads(line)
            if match(span):
                out.append(span)
    return out


async def test_the_request_the_outbox_row_and_the_consumers_share_one_trace(
    enrolled: dict[str, Any], container: Any
) -> None:
    r = enrolled["response"]
    trace_id = r.headers["X-Trace-Id"]
    assert len(trace_id) == 32 and r.headers["traceparent"].split("-")[1] == trace_id
    # The event was committed with the request's context: whatever acts on the row later continues it.
    async with container.engine.connect() as conn:
        stored = (
            await conn.execute(
                text("SELECT event_type, trace_context FROM outbox WHERE aggregate_id = :id"), {"id": r.json()["id"]}
            )
        ).all()
    created = [tc for event_type, tc in stored if event_type == "enrollment.created"]
    assert created and created[0]["traceparent"].split("-")[1] == trace_id

    spans = await collect_spans(trace_id, Path(enrolled["data_dir"]), lambda s: set(REQUEST_PATH) <= names(s))
    missing = [n for n in REQUEST_PATH if n not in names(spans)]
    assert not missing, f"not in trace {trace_id}: {missing}\n{telemetry.format_trace(spans)}"
    by_name = {s["name"]: s for s in spans}
    request = by_name["POST /enrollments"]
    assert request["pid"] == os.getpid() and request["process"] == "api" and request["kind"] == "SERVER"
    assert (request.get("attributes") or {}).get("http.route") == "/enrollments"  # named once routed
    # the request's SQL, as children of its span
    assert any(
        s["parent_id"] == request["span_id"] and (s.get("attributes") or {}).get("db.system") == "postgresql"
        for s in spans
    )
    # (the workflow's own events join this trace too, so there are several consumer spans: one is this event's)
    published = by_name["outbox publish enrollment.created"]["span_id"]
    assert any(s["name"] == "analytics consume" and s["parent_id"] == published for s in spans)


async def test_the_workflow_its_activities_the_celery_task_and_the_smtp_send_share_one_trace(
    enrolled: dict[str, Any],
) -> None:
    data_dir = Path(enrolled["data_dir"])
    wid = enrolled["workflow_id"]

    async def workflow_trace() -> str | None:
        deadline = asyncio.get_running_loop().time() + 30
        while asyncio.get_running_loop().time() < deadline:
            telemetry.force_flush()
            runs = spans_where(
                data_dir,
                lambda s: (
                    s["name"] == "RunWorkflow:EnrollmentWorkflow"
                    and (s.get("attributes") or {}).get("temporalWorkflowID") == wid
                ),
            )
            if runs:
                return str(runs[0]["trace_id"])
            await asyncio.sleep(0.5)
        return None

    trace_id = await workflow_trace()
    assert trace_id, f"no RunWorkflow span of {wid}"
    spans = await collect_spans(trace_id, data_dir, lambda s: set(WORKFLOW_PATH) <= names(s))
    missing = [n for n in WORKFLOW_PATH if n not in names(spans)]
    assert not missing, f"not in trace {trace_id}: {missing}\n{telemetry.format_trace(spans)}"
    by_name = {s["name"]: s for s in spans}
    celery, smtp = by_name["deliver email"], by_name["smtp send"]
    # Another process: the Celery worker's pool process, its spans in its own file.
    assert celery["pid"] != os.getpid() and celery["process"] == "celery"
    assert smtp["pid"] == celery["pid"] and smtp["status"] != "ERROR" and smtp["kind"] == "CLIENT"
    assert smtp["parent_id"] == celery["span_id"]
    activity = next(s for s in spans if s["name"].startswith("RunActivity:enroll."))
    assert celery["parent_id"] == activity["span_id"]  # the carrier the activity put in the task's arguments
    # ... and linked to the batch task that sent it: a trace of its own (Celery's producer and run spans)
    [link] = celery["links"]
    batch = await collect_spans(link["trace_id"], data_dir, lambda s: "run/notifications.send_emails" in names(s))
    run = next(s for s in batch if s["name"] == "run/notifications.send_emails")
    assert run["span_id"] == link["span_id"] and run["pid"] == celery["pid"]
    assert any(s["name"] == "apply_async/notifications.send_emails" and s["pid"] == os.getpid() for s in batch)
    tree = telemetry.format_trace(spans)
    assert f"trace {trace_id}:" in tree and "(api, celery)" in tree


async def test_one_enrollment_is_one_trace_from_the_request_to_the_smtp_send(enrolled: dict[str, Any]) -> None:
    """The whole path under the request's trace id: the dispatcher that starts the workflow from the outbox row
    must continue the trace stored on that row (`with telemetry.continue_from(row, ...)` around the start)."""
    trace_id = enrolled["response"].headers["X-Trace-Id"]
    path = REQUEST_PATH + WORKFLOW_PATH
    spans = await collect_spans(trace_id, Path(enrolled["data_dir"]), lambda s: set(path) <= names(s), timeout=20)
    missing = [n for n in path if n not in names(spans)]
    assert not missing, (
        f"not in the request's trace {trace_id}: {missing} (the workflow start must run inside "
        f"telemetry.continue_from(outbox_row, ...))\n{telemetry.format_trace(spans)}"
    )
    assert {s["process"] for s in spans} == {"api", "celery"}


async def test_every_error_body_carries_the_trace_id(api: Api) -> None:
    user = await api.user()
    answers = [
        await api.client.get(f"/courses/{uuid.uuid4()}"),  # 404, a domain error
        await api.client.post("/enrollments", json={"course_id": "nope"}, headers=user["headers"]),  # 422
        await api.client.post("/enrollments", json={"course_id": str(uuid.uuid4())}),  # 401
        await api.client.get("/no/such/route"),  # 404 from the router
        # Paths that end like the untraced probes (explore13 F7: the patterns were not anchored on the path).
        await api.client.get("/certificates/verify/health"),  # 422 invalid_certificate_code
        await api.client.get("/metrics/x"),  # 404
    ]
    for r in answers:
        body = r.json()
        assert r.status_code >= 400 and {"code", "message", "details"} <= set(body), body
        assert body["trace_id"] and body["trace_id"] == r.headers["X-Trace-Id"], (r.status_code, body)
        assert r.headers["traceparent"].split("-")[1] == body["trace_id"]
    assert len({r.headers["X-Trace-Id"] for r in answers}) == len(answers)  # one trace per request
    for probe in ("/health", "/metrics"):  # still not traced: scrapes and probes every few seconds
        assert "X-Trace-Id" not in (await api.client.get(probe)).headers, probe


@pytest.fixture
def access_lines(caplog: pytest.LogCaptureFixture) -> Callable[[], list[dict[str, Any]]]:
    caplog.set_level(logging.INFO, logger="smartcourse.access")

    def lines() -> list[dict[str, Any]]:
        formatter = JsonFormatter()
        return [json.loads(formatter.format(r)) for r in caplog.records if r.name == "smartcourse.access"]

    return lines


async def test_one_json_log_line_per_request_with_its_trace(
    api: Api, access_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    user = await api.user(password="a-secret-passphrase")
    before = len(access_lines())
    enrollment_id = str(uuid.uuid4())
    r = await api.client.get(f"/enrollments/{enrollment_id}", headers=user["headers"])
    assert r.status_code == 404
    lines = access_lines()[before:]
    assert len(lines) == 1
    line = lines[0]
    assert line["method"] == "GET" and line["route"] == "/enrollments/{enrollment_id}" and line["status"] == 404
    assert isinstance(line["duration_ms"], float) and line["user_id"] == user["id"]
    assert line["trace_id"] == r.headers["X-Trace-Id"] and len(line["span_id"]) == 16
    assert line["level"] == "info" and line["process"] and line["time"]
    text_of_all = json.dumps(access_lines())
    # Never a token or a password: the login and register calls above were logged too, without them.
    assert user["access_token"] not in text_of_all and "a-secret-passphrase" not in text_of_all
    assert enrollment_id not in json.dumps(line)  # the route template, not the path


# --- the stack: the Kafka header path ------------------------------------------------------------------------


async def test_the_kafka_header_carries_the_trace_from_the_relay_to_the_consumer(settings: Any) -> None:
    from opentelemetry import trace

    from smartcourse.adapters.event_codec import EventCodec
    from smartcourse.domain.events import DomainEvent
    from smartcourse.entrypoints.kafka import KafkaConsumerRunner, KafkaPublisher
    from smartcourse.event_consumer import Consumer
    from smartcourse.services.outbox import relay_once
    from tests.integration.kafka_kit import create_events_db, drop_events_db, read_topic, wait_until

    kafka = require_engine("kafka")
    telemetry.configure_telemetry("api")  # the suite's process (already, when the app was built)
    ns = f"t{uuid.uuid4().hex[:10]}."
    db = await create_events_db(settings.database_url)
    seen: dict[str, str | None] = {}

    async def effect(session: Any, envelope: dict[str, Any]) -> None:
        seen[envelope["event_id"]] = telemetry.current_trace_id()

    consumer = Consumer(f"trace-consumer-{uuid.uuid4().hex[:6]}", {"user.registered": effect})
    publisher = KafkaPublisher(bootstrap_servers=kafka, codec=EventCodec(), namespace=ns)
    runner = KafkaConsumerRunner(
        consumer, sessionmaker=db.sessionmaker, bootstrap_servers=kafka, codec=EventCodec(), namespace=ns
    )
    stop = asyncio.Event()
    await publisher.start()
    try:
        user_id = str(uuid.uuid4())
        with telemetry.tracer().start_as_current_span("POST /auth/register (test)") as request_span:
            (event_id,) = await db.emit(
                DomainEvent("user.registered", user_id, {"user_id": user_id, "role": "student"})
            )
            trace_id = format(request_span.get_span_context().trace_id, "032x")
        assert trace.get_current_span().get_span_context().is_valid is False  # the relay runs outside it
        assert await relay_once(db.sessionmaker, publisher) == 1

        (record,) = await read_topic(kafka, f"{ns}smartcourse.users", count=1)
        headers = {k: v.decode() for k, v in record.headers}
        assert headers["traceparent"].split("-")[1] == trace_id

        task = asyncio.create_task(runner.run(stop))
        await wait_until(lambda: _seen(seen, event_id), what="the consumer's effect")
        assert seen[event_id] == trace_id
        stop.set()
        await asyncio.wait_for(task, 20)
        spans = await collect_spans(
            trace_id, Path(settings.data_dir), lambda s: {f"{consumer.name} consume"} <= names(s), timeout=20
        )
        by_name = {s["name"]: s for s in spans}
        publish = by_name["outbox publish user.registered"]
        consume = by_name[f"{consumer.name} consume"]
        assert publish["kind"] == "PRODUCER" and consume["kind"] == "CONSUMER"
        assert consume["parent_id"] == publish["span_id"]  # the header's context, not a new trace
    finally:
        stop.set()
        await publisher.stop()
        await drop_events_db(settings.database_url, db)


async def _seen(seen: dict[str, str | None], event_id: str) -> bool:
    return event_id in seen


PROBE = """
from smartcourse import telemetry
telemetry.configure_telemetry("probe")
with telemetry.tracer().start_as_current_span("POST /probe") as request:
    with telemetry.continue_from(telemetry.current_carrier(), "outbox publish probe.sent"):
        pass
    print(telemetry.current_trace_id())
assert telemetry.force_flush()
"""


def test_spans_reach_the_stacks_jaeger_over_otlp(tmp_path: Path) -> None:
    """With OTEL_EXPORTER_OTLP_ENDPOINT set (as `scripts/stack env` prints it), a process exports to Jaeger, and
    `smartcourse trace --jaeger` prints the trace from there."""
    import subprocess
    import sys
    import time

    query = require_engine("jaeger")
    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{os.environ.get('STACK_JAEGER_OTLP_PORT', '4318')}",
        "SMARTCOURSE_TRACE_DIR": str(tmp_path),
    }
    env.pop("OTEL_TRACES_EXPORTER", None)
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    trace_id = out.stdout.strip().splitlines()[-1]
    assert not list(tmp_path.iterdir())  # OTLP chosen: no span file

    deadline = time.monotonic() + 20
    while len(spans := telemetry.fetch_jaeger_spans(trace_id, query)) < 2:
        assert time.monotonic() < deadline, f"trace {trace_id} not in Jaeger: {spans}"
        time.sleep(0.5)
    by_name = {s["name"]: s for s in spans}
    assert by_name["outbox publish probe.sent"]["parent_id"] == by_name["POST /probe"]["span_id"]
    assert {s["service"] for s in spans} == {"smartcourse-probe"} and {s["process"] for s in spans} == {"probe"}

    cli = subprocess.run(
        [sys.executable, "-m", "smartcourse.cli", "trace", trace_id, "--jaeger", query, "--dir", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 0, cli.stderr
    assert "POST /probe" in cli.stdout and "  outbox publish probe.sent" in cli.stdout


async def test_a_server_span_keeps_no_query_string(api: Api, data_dir: Path) -> None:
    """explore55 F9: the server span's `http.url` kept the query string (`/users?email=...`, what a student searched)
    in the span files, although no query string is recorded, as the tracing's docstring says."""
    marker = f"someone{uuid.uuid4().hex[:8]}"
    r = await api.client.get("/search", params={"q": marker})
    assert r.status_code == 200, r.text

    def served(found: list[dict[str, Any]]) -> bool:
        return any(s["kind"] == "SERVER" for s in found)

    spans = await collect_spans(r.headers["x-trace-id"], data_dir, served)
    [server] = [s for s in spans if s["kind"] == "SERVER"]
    assert server["attributes"]["http.url"].endswith("/search"), server["attributes"]
    assert marker not in json.dumps(spans), [s["attributes"] for s in spans]
