"""Every Prometheus metric of SmartCourse in one place, and how each process serves them (`serve_metrics`).

Who counts what (the process that knows the answer counts it):

* API: requests, domain errors, enrollment decisions, assistant interactions.
* worker: workflow runs and activities (the Temporal interceptor in workflows/metrics.py), the in-process
  relay without Kafka, and the platform's stored state read from PostgreSQL (`DatabaseState`: outbox backlog
  and age, dead letters not replayed, workflow runs by status, admitted enrollments not yet active).
* relay: outbox events published, failures and publish latency.
* consumers: records handled, dead letters, consumer lag.
* celery: task outcomes, retries and durations (signals in smartcourse.tasks), dead letters.

The API serves /metrics on its own port; every other process serves them with `serve_metrics(kind)` on a port
of its own (`SMARTCOURSE_METRICS_PORT_<KIND>`, default `DEFAULT_PORTS`). With PROMETHEUS_MULTIPROC_DIR set
(Celery's prefork pool, several API workers), the figures of all processes sharing the directory are added up
(prometheus_client's multiprocess mode; see smartcourse/metrics_multiprocess.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy import text

from smartcourse import __version__

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST

#: The port each process kind serves /metrics on unless SMARTCOURSE_METRICS_PORT_<KIND> says otherwise.
#: The API has none: it serves /metrics on its own HTTP port.
DEFAULT_PORTS = {"worker": 9101, "relay": 9102, "consumers": 9103, "celery": 9104}
KINDS = ("api", *DEFAULT_PORTS)

# Latency buckets: requests and assistant calls (seconds), long-running work (publishing can take minutes).
_FAST = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SLOW = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
_ASSISTANT = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0)

# --- every process ---------------------------------------------------------------------------------------

BUILD_INFO = Gauge(
    "smartcourse_build_info",
    "1 per SmartCourse process: its kind and version",
    ["kind", "version"],
    multiprocess_mode="liveall",
)

# --- API -------------------------------------------------------------------------------------------------

HTTP_REQUESTS = Counter(
    "smartcourse_http_requests_total", "HTTP requests by route and status", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "smartcourse_http_request_duration_seconds", "HTTP request latency by route", ["method", "route"], buckets=_FAST
)
#: Every error answer of the API by its `code` (refusals and failures alike; the name is kept for the dashboards).
DOMAIN_ERRORS = Counter("smartcourse_domain_errors_total", "Error answers of the API by code", ["code"])
ENROLLMENT_REQUESTS = Counter(
    "smartcourse_enrollment_requests_total",
    "Enrollment requests by decision: admitted, waitlisted, repeat (an existing enrollment returned) or refused "
    "(reason = the error code)",
    ["outcome", "reason"],
)

# --- assistant (API) -------------------------------------------------------------------------------------

ASSISTANT_INTERACTIONS = Counter(
    "smartcourse_assistant_interactions_total",
    "Assistant interactions by kind (ask, summary, quiz, ...) and outcome as stored "
    "(answer, clarify, refuse, generated, error, cancelled)",
    ["kind", "outcome"],
)
ASSISTANT_LATENCY = Histogram(
    "smartcourse_assistant_duration_seconds",
    "Assistant interaction time, request to last token",
    ["kind"],
    buckets=_ASSISTANT,
)
ASSISTANT_FIRST_TOKEN = Histogram(
    "smartcourse_assistant_first_token_seconds",
    "Streamed assistant answers: time to the first token",
    ["kind"],
    buckets=_ASSISTANT,
)
ASSISTANT_TOKENS = Counter(
    "smartcourse_assistant_tokens_total",
    "Model tokens used by the assistant (direction: in = prompt, out = completion)",
    ["kind", "direction"],
)

# --- workflows (worker) ----------------------------------------------------------------------------------

WORKFLOW_RUNS = Counter(
    "smartcourse_workflow_runs_total",
    "Workflow runs finished, by workflow type and outcome (completed, failed, cancelled, continued)",
    ["workflow", "outcome"],
)
WORKFLOW_DURATION = Histogram(
    "smartcourse_workflow_duration_seconds",
    "Workflow run time from start to finish, by type and outcome (publishing's is the publish duration)",
    ["workflow", "outcome"],
    buckets=_SLOW,
)
ACTIVITY_RUNS = Counter(
    "smartcourse_activity_runs_total",
    "Activity attempts by activity and outcome (completed, failed, cancelled)",
    ["activity", "outcome"],
)
ACTIVITY_DURATION = Histogram(
    "smartcourse_activity_duration_seconds", "Activity attempt time by activity", ["activity"], buckets=_SLOW
)

# --- outbox and events (worker or relay; consumers) ------------------------------------------------------

OUTBOX_RELAYED = Counter("smartcourse_outbox_relayed_total", "Outbox events published", ["event_type"])
OUTBOX_FAILURES = Counter("smartcourse_outbox_failures_total", "Outbox publish failures", ["event_type"])
OUTBOX_PUBLISH_DURATION = Histogram(
    "smartcourse_outbox_publish_duration_seconds",
    "Time to publish one outbox event (Kafka acks=all, or the in-process consumers)",
    ["event_type"],
    buckets=_FAST,
)
EVENTS_CONSUMED = Counter("smartcourse_events_consumed_total", "Kafka records handled", ["consumer", "outcome"])
CONSUMER_LAG = Gauge(
    "smartcourse_kafka_consumer_lag",
    "Records in a partition not yet read by the consumer group (high watermark - position)",
    ["consumer", "topic", "partition"],
    multiprocess_mode="max",
)
ENGINE_UP = Gauge(
    "smartcourse_engine_up",
    "1 when the engine answered the API's last probe (as /health probes it), 0 when it did not; read at most every "
    "10 s on a scrape of the API's /metrics",
    ["engine"],
    multiprocess_mode="livemin",  # an engine one API process cannot reach is down for it
)
MATERIALS_SKIPPED = Counter(
    "smartcourse_publish_materials_skipped_total",
    "Course materials a publish could not index, by reason: missing (the stored file is gone: a file-store fault), "
    "or the extractor's (unreadable, empty, too_large, ...: the instructor's file; the publish report names it); "
    "partly_unreadable: indexed without the pages it could not read",
    ["reason"],
)


def at_zero(counter: Counter, *label_sets: tuple[str, ...]) -> None:
    """Show these series at 0 from the start. An alert on `increase()` or `rate()` of a failure counter cannot fire on
    the first failure of a series that appears already at 1 (no earlier sample to rise from): the first missing file,
    the first failed workflow or task of a process's life went unalerted (explore25 F2)."""
    for labels in label_sets:
        counter.labels(*labels)


at_zero(MATERIALS_SKIPPED, ("missing",))
DEAD_LETTERS = Counter(
    "smartcourse_dead_letters_total",
    "Events and tasks given up on (a dead_letters row written), by consumer (celery:<task> for tasks)",
    ["consumer"],
)

# --- Celery ----------------------------------------------------------------------------------------------

CELERY_TASKS = Counter(
    "smartcourse_celery_tasks_total",
    "Celery task runs by task and outcome (succeeded, retried, failed = out of retries and dead-lettered)",
    ["task", "outcome"],
)


def observe_assistant(
    kind: str, outcome: str, *, seconds: float, first_token_seconds: float | None, tokens_in: int, tokens_out: int
) -> None:
    """One recorded assistant interaction (services/assistant.record, after its commit)."""
    ASSISTANT_INTERACTIONS.labels(kind, outcome).inc()
    ASSISTANT_LATENCY.labels(kind).observe(seconds)
    if first_token_seconds is not None:
        ASSISTANT_FIRST_TOKEN.labels(kind).observe(first_token_seconds)
    ASSISTANT_TOKENS.labels(kind, "in").inc(tokens_in)
    ASSISTANT_TOKENS.labels(kind, "out").inc(tokens_out)


CELERY_TASK_DURATION = Histogram(
    "smartcourse_celery_task_duration_seconds", "Celery task run time (one attempt)", ["task"], buckets=_SLOW
)
EMAIL_BATCH_SIZE = Histogram(
    "smartcourse_email_batch_size",
    "E-mails per notifications.send_emails task, as the enqueuing process coalesced them (tasks.EmailBatcher)",
    buckets=(1, 2, 4, 8, 16, 32, 64),
)


# --- the platform's stored state, read from PostgreSQL ---------------------------------------------------


@dataclass
class _Snapshot:
    at: float = 0.0
    outbox_backlog: int = 0
    outbox_oldest_age: float = 0.0
    outbox_retrying: int = 0
    dead_letters: dict[str, int] = field(default_factory=dict)
    workflow_runs: dict[tuple[str, str], int] = field(default_factory=dict)
    enrollment_backlog: int = 0
    enrollment_oldest_age: float = 0.0
    email_backlog: int = 0
    email_oldest_age: float = 0.0
    email_retrying: int = 0


#: Ages are read against the transaction's `now()`: a row another process stamped a moment later but committed before
#: the statement's snapshot reads a few milliseconds "in the future" (-0.0067 s failed a CI run): never below 0.
_STATE_SQL = {
    "outbox": text(
        "select count(*), greatest(coalesce(extract(epoch from now() - min(occurred_at)), 0), 0), "
        "count(*) filter (where attempts > 0) from outbox where published_at is null"
    ),
    "dead_letters": text(
        "select consumer, count(*) from dead_letters where replayed_at is null and discarded_at is null "
        "group by consumer"
    ),
    "workflow_runs": text("select kind, status, count(*) from workflow_runs group by kind, status"),
    "enrollments": text(
        "select count(*), greatest(coalesce(extract(epoch from now() - min(admitted_at)), 0), 0) "
        "from enrollments where status = 'pending'"
    ),
    # The e-mails not sent yet (queued, or retried while SMTP refuses): explore55 F13, an SMTP outage showed nowhere.
    "emails": text(
        "select count(*), greatest(coalesce(extract(epoch from now() - min(created_at)), 0), 0), "
        "count(*) filter (where email_attempts > 0) from notifications where email_status = 'pending'"
    ),
}


class DatabaseState(Collector):
    """Gauges of what PostgreSQL holds: the worker refreshes them with `run` every few seconds (its scrape never
    waits on the database); the API's /metrics reads them at most every few seconds on a scrape (`refresh_if_stale`),
    so the backlog is scrapeable where the README points, and while the worker is down (explore10 F5). They say
    what the database holds, not what a process did: the same figure on each process reporting it (aggregate with
    `max`, never `sum`).
    """

    def __init__(self) -> None:
        self.snapshot: _Snapshot | None = None
        self._refreshing: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None
        self._tried = 0.0

    async def refresh_if_stale(self, sessionmaker: Any, *, max_age: float = 5.0, timeout: float = 2.0) -> None:
        """Refresh unless the last try is younger than `max_age`; concurrent scrapes share one try, which gives up
        after `timeout` (a scrape must answer while the database is slow or down). A failure is logged and the older
        snapshot kept (`smartcourse_state_refreshed_timestamp_seconds` tells its age)."""
        loop = asyncio.get_running_loop()
        if self._refreshing is None or self._refreshing[0] is not loop:
            self._refreshing = (loop, asyncio.Lock())  # a lock serves one event loop (tests run several)
        async with self._refreshing[1]:
            if time.time() - self._tried < max_age:
                return
            self._tried = time.time()
            try:
                async with asyncio.timeout(timeout):
                    await self.refresh(sessionmaker)
            except Exception:
                log.warning("could not read the platform state for /metrics", exc_info=True)

    async def refresh(self, sessionmaker: Any) -> None:
        snap = _Snapshot(at=time.time())
        async with sessionmaker() as session:
            backlog, age, retrying = (await session.execute(_STATE_SQL["outbox"])).one()
            snap.outbox_backlog, snap.outbox_oldest_age, snap.outbox_retrying = int(backlog), float(age), int(retrying)
            snap.dead_letters = {c: int(n) for c, n in await session.execute(_STATE_SQL["dead_letters"])}
            snap.workflow_runs = {(k, s): int(n) for k, s, n in await session.execute(_STATE_SQL["workflow_runs"])}
            pending, oldest = (await session.execute(_STATE_SQL["enrollments"])).one()
            snap.enrollment_backlog, snap.enrollment_oldest_age = int(pending), float(oldest)
            emails, age, retrying = (await session.execute(_STATE_SQL["emails"])).one()
            snap.email_backlog, snap.email_oldest_age, snap.email_retrying = int(emails), float(age), int(retrying)
        self.snapshot = snap

    async def run(self, sessionmaker: Any, *, stop: asyncio.Event, every: float = 5.0) -> None:
        while not stop.is_set():
            try:
                await self.refresh(sessionmaker)
            except Exception:
                log.warning("could not read the platform state for /metrics", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)

    def describe(self) -> Iterable[Metric]:
        return []  # no fixed description: nothing to check at registration

    def collect(self) -> Iterable[Metric]:
        snap = self.snapshot
        if snap is None:
            return
        yield GaugeMetricFamily(
            "smartcourse_outbox_backlog", "Outbox events not yet published", value=snap.outbox_backlog
        )
        yield GaugeMetricFamily(
            "smartcourse_outbox_oldest_age_seconds",
            "Age of the oldest unpublished outbox event (0 when none)",
            value=snap.outbox_oldest_age,
        )
        yield GaugeMetricFamily(
            "smartcourse_outbox_retrying",
            "Unpublished outbox events that already failed at least once",
            value=snap.outbox_retrying,
        )
        dead = GaugeMetricFamily(
            "smartcourse_dead_letters_pending",
            "Dead letters neither replayed nor discarded, by consumer",
            labels=["consumer"],
        )
        for consumer, n in sorted(snap.dead_letters.items()):
            dead.add_metric([consumer], n)
        yield dead
        yield GaugeMetricFamily(
            "smartcourse_dead_letters_pending_all",
            "Dead letters neither replayed nor discarded, all consumers",
            value=sum(snap.dead_letters.values()),
        )
        runs = GaugeMetricFamily(
            "smartcourse_workflow_runs_recorded",
            "Workflow runs recorded in workflow_runs, by kind and status",
            labels=["kind", "status"],
        )
        for (kind, status), n in sorted(snap.workflow_runs.items()):
            runs.add_metric([kind, status], n)
        yield runs
        yield GaugeMetricFamily(
            "smartcourse_enrollment_backlog",
            "Admitted enrollments whose workflow has not made them active yet",
            value=snap.enrollment_backlog,
        )
        yield GaugeMetricFamily(
            "smartcourse_enrollment_backlog_oldest_age_seconds",
            "How long the oldest admitted-but-not-active enrollment has waited (0 when none)",
            value=snap.enrollment_oldest_age,
        )
        yield GaugeMetricFamily(
            "smartcourse_email_backlog",
            "E-mails not sent yet (queued, or retried while SMTP fails)",
            value=snap.email_backlog,
        )
        yield GaugeMetricFamily(
            "smartcourse_email_backlog_oldest_age_seconds",
            "How long the oldest e-mail not sent yet has waited (0 when none)",
            value=snap.email_oldest_age,
        )
        yield GaugeMetricFamily(
            "smartcourse_email_retrying",
            "E-mails not sent yet that already failed at least once (SMTP refusing or away)",
            value=snap.email_retrying,
        )
        yield GaugeMetricFamily(
            "smartcourse_state_refreshed_timestamp_seconds", "When the state above was read", value=snap.at
        )


DATABASE_STATE = DatabaseState()
REGISTRY.register(DATABASE_STATE)


# --- serving ---------------------------------------------------------------------------------------------


def multiprocess_mode() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def registry() -> CollectorRegistry:
    """What /metrics shows: this process's metrics, or in multiprocess mode those of every process sharing the
    directory (plus this process's stored-state gauges, which are not kept in files)."""
    if not multiprocess_mode():
        return REGISTRY
    merged = CollectorRegistry()
    multiprocess.MultiProcessCollector(merged)
    merged.register(DATABASE_STATE)
    return merged


def exposition() -> bytes:
    """The /metrics body (text format)."""
    return generate_latest(registry())


def mark_process(kind: str) -> None:
    """Say which kind of process this is (smartcourse_build_info); also makes every kind's /metrics non-empty."""
    BUILD_INFO.labels(kind, __version__).set(1)


def metrics_port(kind: str) -> int | None:
    """SMARTCOURSE_METRICS_PORT_<KIND>, else SMARTCOURSE_METRICS_PORT, else the kind's default; None when `off`."""
    raw = os.environ.get(f"SMARTCOURSE_METRICS_PORT_{kind.upper()}") or os.environ.get("SMARTCOURSE_METRICS_PORT")
    if raw is None or raw == "":
        return DEFAULT_PORTS.get(kind)
    if raw.strip().lower() in ("off", "none", "-"):
        return None
    return int(raw)


_served: dict[str, int] = {}
_serve_lock = threading.Lock()


def serve_metrics(kind: str, *, port: int | None = None, host: str | None = None) -> int | None:
    """Serve this process's /metrics on a side HTTP server (a daemon thread); returns the port, None when off.

    Called once by each process entry point (worker, relay, consumers, Celery's worker_init); later calls in the
    same process return the port already served. A port in use is logged and skipped: metrics never stop a process.
    SMARTCOURSE_METRICS_HOST is the address (127.0.0.1; 0.0.0.0 in containers). Port 0 picks a free port.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown process kind {kind!r}; one of {', '.join(KINDS)}")
    mark_process(kind)
    with _serve_lock:
        if kind in _served:
            return _served[kind]
        port = metrics_port(kind) if port is None else port
        if port is None:
            log.info("metrics of %s not served (SMARTCOURSE_METRICS_PORT_%s=off)", kind, kind.upper())
            return None
        addr = host or os.environ.get("SMARTCOURSE_METRICS_HOST", "127.0.0.1")
        try:
            server, _ = start_http_server(port, addr=addr, registry=registry())
        except OSError as exc:
            log.warning(
                "metrics of %s not served: cannot listen on %s:%s (%s); set SMARTCOURSE_METRICS_PORT_%s",
                kind,
                addr,
                port,
                exc,
                kind.upper(),
            )
            return None
        _served[kind] = int(server.server_port)
        log.info("metrics of %s on http://%s:%s/metrics", kind, addr, _served[kind])
        return _served[kind]
