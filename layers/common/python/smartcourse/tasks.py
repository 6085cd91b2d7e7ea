"""The Celery app and its tasks (`celery -A smartcourse.tasks worker`): late acks, retries with backoff, dead letters.

An entry point: the tasks call into the notifications service; no service imports this module.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import importlib
import logging
import os
import signal
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from celery import Celery, Task, signals
from celery.exceptions import Ignore, Reject, Retry
from celery.signals import (
    task_failure,
    task_postrun,
    task_prerun,
    task_rejected,
    task_retry,
    task_success,
    task_unknown,
    worker_init,
)
from celery.worker.consumer import Consumer as CeleryConsumer
from celery.worker.consumer import consumer as celery_consumer
from kombu import Exchange, Queue
from kombu.transport import TRANSPORT_ALIASES
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, Status, StatusCode
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

# First: in a `celery worker` process it selects prometheus_client's multiprocess mode (prefork children count).
from smartcourse import metrics_multiprocess  # noqa: F401
from smartcourse.adapters.files import FileStore
from smartcourse.config import Settings, get_settings
from smartcourse.db import make_engine
from smartcourse.logging import JsonFormatter, install_record_factory, set_process_name
from smartcourse.metrics import (
    CELERY_TASK_DURATION,
    CELERY_TASKS,
    DEAD_LETTERS,
    EMAIL_BATCH_SIZE,
    at_zero,
    serve_metrics,
)
from smartcourse.models import DeadLetter
from smartcourse.priority import lower_background_priority
from smartcourse.services.heartbeats import run_heartbeat
from smartcourse.services.notifications import (
    deliver_email,
    mark_email_failed,
    orphaned_email_retries,
    pending_to_sweep,
)
from smartcourse.services.notifications import email_batch_items as _batch_items
from smartcourse.services.operations import current_trace_id, kept_error, record_task_outcome
from smartcourse.telemetry import (
    configure_telemetry,
    current_carrier,
    extract_context,
    fail_current_span,
    normalize_trace_id,
    retry_reason,
    tracer,
)

log = logging.getLogger(__name__)

T = TypeVar("T")


#: Redis broker URLs (`redis://`, `redis+socket://`) use the transport that keeps a queue entry that is not a message
#: as a dead letter instead of stopping the worker (`smartcourse.broker`, explore40 F2).
TRANSPORT_ALIASES["redis"] = "smartcourse.broker:Transport"


def kombu_redis_url(url: str) -> str:
    """redis-py spells a unix-socket Redis `unix:///path`; kombu and Celery spell it `redis+socket:///path`."""
    if url.startswith("unix://"):
        return "redis+socket://" + url.removeprefix("unix://")
    return url


def task_queue(name: str) -> Queue:
    """The work queue. On RabbitMQ a message rejected without requeue (a task out of retries) is
    dead-lettered to `<name>.dlq`. Every producer and consumer declares it with the same arguments
    (RabbitMQ refuses a redeclaration that differs); Redis ignores them."""
    return Queue(
        name,
        Exchange(name, type="direct", durable=True),
        routing_key=name,
        durable=True,
        queue_arguments={"x-dead-letter-exchange": f"{name}.dlx", "x-dead-letter-routing-key": f"{name}.dlq"},
    )


def dead_letter_queue(name: str) -> Queue:
    """Where RabbitMQ parks the messages of `task_queue(name)` that were rejected; nothing consumes it."""
    return Queue(
        f"{name}.dlq",
        Exchange(f"{name}.dlx", type="direct", durable=True),
        routing_key=f"{name}.dlq",
        durable=True,
    )


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery settings from SmartCourse settings: CELERY_BROKER_URL (RabbitMQ), else the (embedded) Redis."""
    redis_url = settings.redis_url
    if not settings.celery_broker_url and not redis_url:
        from smartcourse.bootstrap import resolve_settings

        redis_url = resolve_settings(settings, need=("redis",)).redis_url
    broker = settings.celery_broker_url or kombu_redis_url(redis_url or "")
    backend = settings.celery_result_backend or (kombu_redis_url(redis_url) if redis_url else None)
    queue = settings.celery_queue
    vt = settings.celery_visibility_timeout
    sweep = settings.email_sweep_seconds
    conf: dict[str, Any] = {
        "broker_url": broker,
        "result_backend": backend,
        # Nothing reads task results (state lives in PostgreSQL): don't pay a backend write per task.
        # A task that wants its result kept says ignore_result=False.
        "task_ignore_result": True,
        "result_expires": 24 * 3600,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        # At-least-once: the message is acked only after the task ran, and a worker killed mid-task
        # (OOM, SIGKILL, deploy) has its message redelivered. Tasks must therefore be idempotent.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # With late acks a prefetched message is stuck behind a slow task: take one at a time.
        "worker_prefetch_multiplier": 1,
        # Broker connection lost: running late-ack tasks will be redelivered anyway, so stop them
        # rather than let both copies run.
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "broker_connection_retry_on_startup": True,
        # Hard limit below the Redis visibility timeout and RabbitMQ's 30 min consumer timeout.
        "task_time_limit": min(600, max(30, vt - 5)),
        "task_default_queue": queue,
        "task_default_exchange": queue,
        "task_default_routing_key": queue,
        "task_queues": (task_queue(queue),),
        "task_create_missing_queues": False,
        "beat_schedule": {
            "notifications-sweep-pending": {
                "task": "notifications.sweep_pending",
                "schedule": sweep,
                # A sweep nobody ran in time is superseded by the next one.
                "options": {"expires": max(1.0, sweep - 5)},
            }
        },
        "beat_schedule_filename": str((settings.data_dir / "celery" / "beat-schedule").resolve()),
        # Celery's consumer, with a message it cannot decode kept as a dead letter (explore18 F9).
        "worker_consumer": "smartcourse.tasks:Consumer",
        # Celery's prefork pool, registering again after a broker reconnect without the processes that exited.
        "worker_pool": "smartcourse.celery_pool:TaskPool",
    }
    if broker.startswith(("redis", "rediss")):
        conf["broker_transport_options"] = {
            # Redis has no consumer acks: an unacked message is handed out again after this long.
            "visibility_timeout": vt,
            # Look for such messages about every tenth of the timeout (kombu's default is ~100 s).
            "unacked_restore_interval": max(1, min(10, vt // 10)),
            "unacked_restore_throttle": 1,
        }
    return conf


def make_app(settings: Settings | None = None) -> Celery:
    """A Celery app configured from `settings`, or lazily from the environment on first use."""
    celery = Celery("smartcourse", set_as_current=settings is None)
    if settings is not None:
        celery.conf.update(celery_config(settings))
        return celery

    def _lazy_config() -> dict[str, Any]:
        conf = celery_config(get_settings())
        # beat opens its schedule file before any beat signal fires; best effort (read-only in Lambda).
        with contextlib.suppress(OSError):
            os.makedirs(os.path.dirname(conf["beat_schedule_filename"]), exist_ok=True)
        return conf

    # A callable is read when the configuration is first needed, not at import: importing this module
    # (an API function that enqueues) neither reads the environment early nor starts an engine.
    celery.add_defaults(_lazy_config)
    return celery


app = make_app()

_configure_lock = threading.Lock()
_configured_apps: set[int] = set()


def ensure_configured(celery: Celery = app) -> Celery:
    """`celery` with its configuration fully read, once per process; call it before using the app from threads.

    Celery reads a lazy configuration (`make_app`'s) on first use, and not safely across threads: it installs the
    new configuration *before* evaluating our lazy defaults, so a second thread using the app meanwhile sees no
    `broker_url` and builds its connection pool for Celery's default (amqp://localhost), which then fails every
    enqueue of that process until it restarts (seen in a benchmark: the worker's first welcome e-mails go from
    several executor threads at once). Here the first use happens in one thread while the others wait."""
    key = id(celery)
    if key not in _configured_apps:
        with _configure_lock:
            if key not in _configured_apps:
                _ = celery.conf.broker_url  # reads the whole configuration, lazy defaults included
                _configured_apps.add(key)
    return celery


@signals.celeryd_after_setup.connect
def _declare_dead_letter_queue(instance: Any = None, **_: Any) -> None:
    """RabbitMQ drops a dead-lettered message whose exchange does not exist: declare it before consuming (this
    signal comes before the consumer starts, and after Celery's logging is set up, so the lines below are JSON)."""
    worker_app = getattr(instance, "app", None) or app
    with worker_app.connection_for_write() as conn:
        # Said on every try (explore18 F8: a worker starting while its broker was down waited 74 s without a line,
        # and /health's "stale" pointed at the database). Celery's own consumer logs its retries; this comes first.
        # Until it answers (max_retries=None): after ten tries it used to raise, log a traceback, and start without
        # the dead-letter queue on RabbitMQ (explore25 F3).
        conn.ensure_connection(max_retries=None, errback=_broker_unreachable)
        if conn.transport.driver_type != "amqp":
            return
        dead_letter_queue(worker_app.conf.task_default_queue)(conn.default_channel).declare()
        log.info("dead-letter queue %s.dlq declared", worker_app.conf.task_default_queue)


def _broker_unreachable(exc: BaseException, interval: float) -> None:
    log.warning(
        "the Celery worker cannot reach its broker (%s: %s); trying again in %.0f s",
        type(exc).__name__,
        exc,
        interval,
    )


@signals.worker_process_init.connect
def _telemetry_in_pool_process(**_: Any) -> None:
    """Each pool process traces its tasks (continuing the trace in the task's headers) with its own exporter
    thread: set up after the fork, never inherited. Its tasks' `failed` and `retried` series start at 0 (the alerts
    on them fire on the first one: `metrics.at_zero`)."""
    configure_telemetry("celery")
    ours = [name for name in app.tasks if not name.startswith("celery.")]
    at_zero(CELERY_TASKS, *((name, outcome) for name in ours for outcome in ("failed", "retried")))


@signals.worker_process_shutdown.connect
def _close_smtp(**_: Any) -> None:
    """A pool process ends: say QUIT on its kept SMTP connection (adapters/mail.py) instead of dropping it."""
    from smartcourse.adapters.mail import close_connections

    close_connections()


class _NoTracebackForDroppedMessages(logging.Filter):
    """Celery's lines for a message it drops (an unregistered task, an invalid one, a body it cannot decode) carry a
    traceback of its own consumer, which says nothing the line does not: the line stays, the traceback goes (run.log
    has no tracebacks for a handled case; explore25 F5). `record_poison` logs the dead letter beside it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.msg in _DROPPED_MESSAGE_LINES:
            record.exc_info = None
            record.exc_text = None
        return True


_DROPPED_MESSAGE_LINES = frozenset(
    (celery_consumer.UNKNOWN_TASK_ERROR, celery_consumer.INVALID_TASK_ERROR, celery_consumer.MESSAGE_DECODE_ERROR)
)
celery_consumer.logger.addFilter(_NoTracebackForDroppedMessages())


@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
def _json_log_lines(logger: logging.Logger | None = None, **_: Any) -> None:
    """Celery's own handlers write SmartCourse's JSON lines (process `celery`, the task's trace and span)."""
    set_process_name("celery")
    install_record_factory()  # Celery's handlers are already in place; only stamp records with the trace
    if os.environ.get("SMARTCOURSE_LOG_FORMAT", "json") == "json":
        for handler in (logger or logging.getLogger()).handlers:
            handler.setFormatter(JsonFormatter())


@worker_init.connect
def _background_priority(**_: Any) -> None:
    """Before the pool forks: the worker and its children yield the CPU to the API."""
    lower_background_priority()


#: What a pool child would otherwise import on its first task (runtime() and the e-mail path): ~1 s of CPU per child
#: (py-spy, docs/benchmarks.md "Eighth pass"). Imported by the parent before it forks, the children share them.
PRELOADED_MODULES = (
    "smartcourse.bootstrap",
    "smartcourse.adapters.mail",
    "sqlalchemy.dialects.postgresql.asyncpg",
    "asyncpg",
    "email.generator",  # Message.as_bytes imports it on first use; adapters.mail brings the email.mime classes
)


@worker_init.connect
def _preload(**_: Any) -> None:
    """Before the pool forks: import what every task needs, once, instead of in each child on its first task.
    Only modules: connections, loops and threads are still made in each child (runtime())."""
    for name in PRELOADED_MODULES:
        importlib.import_module(name)


@signals.celeryd_after_setup.connect
def _serve_metrics(sender: Any = None, **_: Any) -> None:
    """The worker's /metrics (SMARTCOURSE_METRICS_PORT_CELERY, 9104): its pool children's figures added up. Once
    Celery's logging is set up (`worker_init` comes before it), so a port in use is logged as a JSON line too
    (explore16 F6)."""
    serve_metrics("celery")


class _Heartbeat:
    """The Celery worker's heartbeat (services/heartbeats.py, read by /health): a thread of the main process with a
    loop and a one-connection engine of its own, started once the worker is ready (its pool already forked, so
    nothing of it is inherited) and stopped with the worker. A stopped (SIGSTOP) or dead worker stops beating."""

    def __init__(self) -> None:
        self.thread: threading.Thread | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop: asyncio.Event | None = None

    def start(self) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name="smartcourse-heartbeat", daemon=True)
            self.thread.start()

    def _run(self) -> None:
        from smartcourse.bootstrap import resolve_settings

        async def main() -> None:
            self.loop, self.stop = asyncio.get_running_loop(), asyncio.Event()
            settings = resolve_settings(get_settings(), need=("db",))
            engine = make_engine(
                settings.database_url or "", pool_size=1, max_overflow=0, application_name="smartcourse-celery"
            )
            try:
                await run_heartbeat(async_sessionmaker(engine, expire_on_commit=False), "celery", stop=self.stop)
            finally:
                await engine.dispose()

        try:
            asyncio.run(main())
        except Exception:
            log.warning("the Celery heartbeat stopped", exc_info=True)

    def shutdown(self) -> None:
        if self.loop is not None and self.stop is not None:
            with contextlib.suppress(RuntimeError):  # its loop already closed
                self.loop.call_soon_threadsafe(self.stop.set)
        if self.thread is not None:
            self.thread.join(timeout=5)


_heartbeat = _Heartbeat()


@signals.worker_ready.connect
def _start_heartbeat(**_: Any) -> None:
    _heartbeat.start()
    _beat_watch.start()


@signals.worker_shutting_down.connect
def _beat_stops_with_the_worker(**_: Any) -> None:
    _beat_watch.stopping = True


@signals.worker_shutdown.connect
def _stop_heartbeat(**_: Any) -> None:
    _beat_watch.stopping = True
    _heartbeat.shutdown()


def process_gone(pid: int) -> bool:
    """The process `pid` has exited (no such process, or a zombie not reaped yet): read from /proc, without reaping
    it (the worker's own child handling does that)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in (b"Z", b"X")


class _BeatWatch:
    """The embedded beat (`celery worker -B`, as `smartcourse run` starts it) is a child of the worker's main
    process that nothing watched: killed, the sweeps it schedules (the e-mail sweeper) stopped for good while the
    worker and its heartbeat went on, `/health` ok (explore70 F2). Once the worker is ready, a thread looks at the
    beat every `EVERY` s; gone while the worker is not shutting down, the worker kills itself (SIGKILL), and its
    supervisor restarts it, beat and all, as any killed child (its tasks in flight are redelivered: acks_late)."""

    EVERY = 5.0

    def __init__(self) -> None:
        self.stopping = False
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        import billiard.process

        beats = [p.pid for p in billiard.process.active_children() if p.name == "Beat" and p.pid]
        if not beats or self.thread is not None:
            return  # no embedded beat (a worker without -B)
        self.thread = threading.Thread(target=self._watch, args=(beats[0],), name="smartcourse-beat-watch", daemon=True)
        self.thread.start()

    def _watch(self, pid: int) -> None:
        while not self.stopping:
            time.sleep(self.EVERY)
            if process_gone(pid) and not self.stopping:
                log.critical("the embedded beat (pid %s) is gone: killing this worker so that it is restarted", pid)
                os.kill(os.getpid(), signal.SIGKILL)
                return


_beat_watch = _BeatWatch()


_task_started: dict[str, float] = {}
#: task_postrun's state -> smartcourse_celery_tasks_total's outcome (REJECTED: out of retries, dead-lettered)
_OUTCOMES = {"SUCCESS": "succeeded", "RETRY": "retried", "FAILURE": "failed", "REJECTED": "failed"}


@task_prerun.connect
def _task_prerun(task_id: str | None = None, **_: Any) -> None:
    if task_id:
        _task_started[task_id] = time.perf_counter()


@task_postrun.connect
def _task_postrun(task_id: str | None = None, task: Any = None, state: str | None = None, **_: Any) -> None:
    """Count each attempt (in the pool child that ran it) by outcome, and time it."""
    name = getattr(task, "name", None) or "unknown"
    CELERY_TASKS.labels(name, _OUTCOMES.get(str(state), str(state).lower())).inc()
    started = _task_started.pop(task_id or "", None)
    if started is not None:
        CELERY_TASK_DURATION.labels(name).observe(time.perf_counter() - started)


# --- async code inside sync tasks ----------------------------------------------------------------


@dataclass
class Runtime:
    """One worker process's event loop, database engine and file store."""

    pid: int
    settings: Settings
    loop: asyncio.AbstractEventLoop
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    files: FileStore


_runtime: Runtime | None = None


def runtime() -> Runtime:
    """Built on first use in each process, i.e. after the prefork pool forked it.

    Why a private loop and a small pool per child: asyncpg connections belong to the loop that opened them and
    must not cross a fork, so nothing is created in the parent; each child gets its own loop, kept for its
    lifetime (no loop churn per task), and its own pool of one or two connections on that loop. (It used to be a
    NullPool: a new PostgreSQL session for the task and another for its outcome record, i.e. two backend forks and
    authentications per e-mail, about a third of the task's CPU and of PostgreSQL's per enrollment.)
    """
    global _runtime
    if _runtime is None or _runtime.pid != os.getpid():
        from smartcourse.bootstrap import build_file_store, resolve_settings

        settings = resolve_settings(get_settings(), need=("db", "smtp"))
        engine = make_engine(
            settings.database_url or "", pool_size=1, max_overflow=1, application_name="smartcourse-celery"
        )
        _runtime = Runtime(
            pid=os.getpid(),
            settings=settings,
            loop=asyncio.new_event_loop(),
            engine=engine,
            sessionmaker=async_sessionmaker(engine, expire_on_commit=False),
            files=build_file_store(settings),
        )
    return _runtime


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on this process's loop (tasks are sync functions)."""
    return runtime().loop.run_until_complete(coro)


# --- retries and dead letters ---------------------------------------------------------------------


def _event_id(task_id: str | None) -> uuid.UUID:
    try:
        return uuid.UUID(str(task_id))
    except ValueError:
        return uuid.uuid5(uuid.NAMESPACE_URL, f"celery-task:{task_id}")


class DeadLetteringTask(Task):  # type: ignore[misc]
    """Retries any error with exponential backoff and full jitter; once out of retries the task records
    itself in `dead_letters` (consumer "celery:<name>") and rejects its message without requeue, which
    RabbitMQ routes to the DLQ. A task that must not retry some error lists it in `dont_autoretry_for`."""

    autoretry_for = (Exception,)
    retry_backoff = True  # 1 s, 2 s, 4 s, ... each drawn uniformly below that (jitter), capped below
    retry_backoff_max = 600
    retry_jitter = True
    max_retries = get_settings().celery_max_retries

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except (Retry, Ignore):
            raise
        except Reject as exc:
            # Celery's own: a retry it could not send (`Task.retry` rejects when the task's arguments do not fit it,
            # e.g. a kwarg it does not take), and the message is dropped. It was dropped with one log line (explore25
            # F2b); it is a dead letter like a task out of retries.
            cause = exc.reason if isinstance(exc.reason, BaseException) else exc
            self._give_up(args, kwargs, cause)
            raise
        except Exception as exc:
            # autoretry re-raises the original error once max_retries is reached: this is the last attempt.
            self._give_up(args, kwargs, exc)
            raise Reject(f"{type(exc).__name__}: {exc}", requeue=False) from exc

    def _give_up(self, args: tuple[Any, ...], kwargs: dict[str, Any], exc: BaseException) -> None:
        """Record the dead letter (with the task's own bookkeeping and its `failed` outcome) and fail the span."""
        error = kept_error(f"{type(exc).__name__}: {exc}\n{''.join(traceback.format_exception(exc))}")
        try:
            run_async(self._record_dead_letter(args, kwargs, error))
        except Exception:
            log.exception("could not record the dead letter of %s[%s]", self.name, self.request.id)
        fail_current_span(f"dead-lettered after {self.request.retries} retries: {type(exc).__name__}: {exc}")

    async def _record_dead_letter(self, args: tuple[Any, ...], kwargs: dict[str, Any], error: str) -> None:
        request = self.request
        delivery = request.delivery_info or {}
        # A task whose arguments are an address someone typed keeps their fingerprints here too (explore69 F5: the
        # dead letter listed the address to admins): its replay finds no account, and the owner asks again (the
        # code would have expired after the hour of retries anyway).
        recorded = _recorded_args(self.name, args, kwargs)
        error = _recorded_error(self.name, args, kwargs, error)
        payload = {"task": self.name, "task_id": request.id, **recorded, "retries": request.retries}
        async with runtime().sessionmaker() as session, session.begin():
            stored = await session.execute(
                insert(DeadLetter)
                .values(
                    consumer=f"celery:{self.name}"[:100],
                    event_id=_event_id(request.id),
                    topic=str(delivery.get("routing_key") or self.app.conf.task_default_queue)[:100],
                    payload=payload,
                    error=error,
                    trace_id=current_trace_id(),  # the failed run's, as GET /ops/tasks has it (explore10 F6)
                )
                .on_conflict_do_nothing()
            )
            # Same transaction: whoever sees the dead letter also sees the task's own bookkeeping and its
            # `failed` outcome (a Reject fires no task_failure signal: the outcome is recorded here).
            await self.on_dead_letter(session, args, kwargs)
            await record_task_outcome(
                session,
                task_id=str(request.id),
                task=self.name,
                status="failed",
                retries=int(request.retries or 0),
                args=recorded,
                error=error,
                trace_id=current_trace_id(),
            )
        if getattr(stored, "rowcount", 1):  # not again for a redelivered copy of the task
            DEAD_LETTERS.labels(f"celery:{self.name}"[:100]).inc()
        log.error("task %s[%s] dead-lettered after %s retries", self.name, request.id, request.retries)

    async def on_dead_letter(self, session: AsyncSession, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Hook for a task's own bookkeeping when it gives up (e.g. mark a row failed), written in the
        dead letter's transaction so the two are never seen apart."""


# --- poison messages: what Celery itself drops (explore18 F9) -------------------------------------

#: The part of a poison message's body kept in its dead letter.
POISON_BODY_CHARS = 4000


def poison_dead_letter(
    message: Any, reason: str, *, task: str | None = None, task_id: str | None = None
) -> dict[str, Any]:
    """The `dead_letters` row for a message Celery drops before any task runs: an unregistered task name, a body it
    cannot decode, a message that is not a task. Celery only logs those; kept here, they show in
    GET /ops/dead-letters, in `dead_letters_pending` and its alert, as a Kafka record that is not an event does. They
    cannot be replayed (`payload.poison` says why): the body is kept as it came, text if it is UTF-8, else base64."""
    headers = dict(getattr(message, "headers", None) or {})
    task = task or (str(headers["task"]) if headers.get("task") else None)
    task_id = task_id or (str(headers["id"]) if headers.get("id") else None)
    raw = getattr(message, "body", b"")
    raw = raw.encode() if isinstance(raw, str) else bytes(raw or b"")
    try:
        body, encoding = raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        body, encoding = base64.b64encode(raw).decode(), "base64"
    try:
        event_id = uuid.UUID(str(task_id))
    except ValueError:  # no id, or not a UUID: the same body gives the same row (a redelivery is not kept twice)
        event_id = uuid.uuid5(uuid.NAMESPACE_URL, "celery-poison:" + hashlib.sha256(raw).hexdigest())
    delivery = dict(getattr(message, "delivery_info", None) or {})
    return {
        "consumer": f"celery:{task or 'unknown'}"[:100],
        "event_id": event_id,
        "topic": str(delivery.get("routing_key") or app.conf.task_default_queue)[:100],
        "payload": {
            "task": task,
            "task_id": task_id,
            "poison": reason,
            "content_type": getattr(message, "content_type", None),
            "body_encoding": encoding,
            "body": body[:POISON_BODY_CHARS],
            "body_bytes": len(raw),
        },
        "error": reason,
    }


async def _store_poison(values: dict[str, Any]) -> bool:
    """Insert the dead letter once (unique per consumer and event id); True if this call stored it."""
    from smartcourse.bootstrap import resolve_settings

    settings = resolve_settings(get_settings(), need=("db",))
    engine = make_engine(
        settings.database_url or "", pool_size=1, max_overflow=0, application_name="smartcourse-celery"
    )
    try:
        async with async_sessionmaker(engine)() as session, session.begin():
            stored = await session.execute(insert(DeadLetter).values(**values).on_conflict_do_nothing())
        return bool(getattr(stored, "rowcount", 1))
    finally:
        await engine.dispose()


def record_poison(
    message: Any, reason: str, *, task: str | None = None, task_id: str | None = None
) -> threading.Thread:
    """Log the poison message and keep it as a dead letter, off the consumer's thread (its event loop carries every
    delivery; a poison message is rare, so a short-lived connection of its own is cheap). Returns the thread."""
    values = poison_dead_letter(message, reason, task=task, task_id=task_id)
    log.error(
        "a message on %s was dropped before any task ran (%s); keeping it as a dead letter of %s, event %s",
        values["topic"],
        reason,
        values["consumer"],
        values["event_id"],
    )

    def store() -> None:
        try:
            if asyncio.run(_store_poison(values)):
                DEAD_LETTERS.labels(values["consumer"]).inc()
            else:  # the same message delivered again, or a dead letter of that task id kept before (explore25 F5)
                log.warning(
                    "a dead letter of %s with event %s was already kept: this delivery is not kept again",
                    values["consumer"],
                    values["event_id"],
                )
        except Exception:
            log.exception("could not keep the dropped message %s as a dead letter", values["event_id"])

    # Not a daemon: a worker stopping right after still writes the row (the connection attempt is bounded).
    thread = threading.Thread(target=store, name="smartcourse-poison")
    thread.start()
    return thread


class Consumer(CeleryConsumer):  # type: ignore[misc]
    """Celery's consumer (`worker_consumer`): a body it cannot decode is acked and logged by Celery, and kept here; a
    body it decodes but cannot turn into a task request is rejected and kept here, where it used to stop the worker.

    A message naming a real task with a body that is not Celery's `[args, kwargs, embed]` (`"hello"`) raised
    ValueError out of the consumer: the worker exited, the message went back to the queue, every restart died on it
    again, and after five `run` stopped everything, the API included (explore25 F1). Celery itself catches only
    InvalidTaskError, ContentDisallowed and DecodeError there."""

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        record_poison(message, f"the body could not be decoded: {type(exc).__name__}: {exc}"[:500])
        super().on_decode_error(message, exc)

    def create_task_handler(self, *args: Any, **kwargs: Any) -> Any:
        handle = super().create_task_handler(*args, **kwargs)
        broker_errors = tuple(getattr(self, "connection_errors", ())) + tuple(getattr(self, "channel_errors", ()))

        def on_task_received(message: Any) -> Any:
            try:
                return handle(message)
            except Exception as exc:
                if broker_errors and isinstance(exc, broker_errors):
                    raise  # the broker's, not the message's: Celery reconnects
                record_poison(message, f"not a valid task message: {type(exc).__name__}: {exc}"[:500])
                message.reject_log_error(log, self.connection_errors, requeue=False)
                return None

        return on_task_received


@task_unknown.connect
def _unknown_task(message: Any = None, name: str | None = None, id: str | None = None, **_: Any) -> None:
    record_poison(message, f"no task named {name!r} is registered in this worker", task=name, task_id=id)


@task_rejected.connect
def _rejected_message(message: Any = None, exc: BaseException | None = None, **_: Any) -> None:
    reason = f"not a valid task message: {type(exc).__name__}: {exc}" if exc else "not a task message"
    record_poison(message, reason[:500])


# --- task outcomes in PostgreSQL (GET /ops/tasks) -------------------------------------------------

#: Periodic tasks whose successes are not worth a row a minute (their failures and retries still are).
UNRECORDED_SUCCESSES = frozenset({"notifications.sweep_pending"})


#: Tasks whose arguments are personal data someone typed: the password reset's address, maybe of nobody with an
#: account. Their outcome rows (kept, and listed to admins by `GET /ops/tasks`) hold a keyed fingerprint of each
#: argument instead (`_fingerprint`: the same address, the same fingerprint, so a later success still resolves a
#: failure), as their log lines hold none (explore67 F4: every address typed into the reset form, listed forever).
PERSONAL_ARGUMENTS = frozenset({"accounts.send_password_reset"})


def _fingerprint(value: Any) -> str:
    """`hidden:` and an HMAC of the value (any case, trimmed) keyed by the deployment's JWT secret: not reversible
    by hashing a list of addresses without that secret."""
    key = _runtime.settings.jwt_secret if _runtime is not None else get_settings().jwt_secret
    digest = hmac.new(key.encode(), str(value).strip().lower().encode(), hashlib.sha256).hexdigest()
    return f"hidden:{digest[:20]}"


def _recorded_args(name: str, args: Any, kwargs: Any) -> dict[str, Any]:
    """A task's arguments as its outcome row keeps them (`PERSONAL_ARGUMENTS`: fingerprints)."""
    args, kwargs = list(args or []), dict(kwargs or {})
    if name in PERSONAL_ARGUMENTS:
        args, kwargs = [_fingerprint(a) for a in args], {k: _fingerprint(v) for k, v in kwargs.items()}
    return {"args": args, "kwargs": kwargs}


def _recorded_error(name: str, args: Any, kwargs: Any, error: str) -> str:
    """A failure's text as its rows keep it: for `PERSONAL_ARGUMENTS` tasks, each argument replaced by its fingerprint
    (an SMTP refusal quotes the recipient's address)."""
    if name not in PERSONAL_ARGUMENTS:
        return error
    import re

    from smartcourse.schemas import stored_address

    for value in [*(args or []), *dict(kwargs or {}).values()]:
        typed = str(value).strip()
        # As typed, and as stored (the form an SMTP refusal quotes), in any case (explore71 F8).
        for form in {typed, stored_address(typed)} - {""}:
            error = re.sub(re.escape(form), _fingerprint(value), error, flags=re.IGNORECASE)
    return error


def _outcome(task: Any, status: str, error: str | None = None) -> dict[str, Any] | None:
    """The task's outcome row as `record_task_outcome` takes it (None without a task id)."""
    request = getattr(task, "request", None)
    task_id = getattr(request, "id", None)
    if not task_id:
        return None
    args, kwargs = getattr(request, "args", None), getattr(request, "kwargs", None)
    return {
        "task_id": str(task_id),
        "task": str(task.name),
        "status": status,
        "retries": int(getattr(request, "retries", 0) or 0),
        "args": _recorded_args(str(task.name), args, kwargs),
        "error": None if error is None else _recorded_error(str(task.name), args, kwargs, error),
        "trace_id": current_trace_id(),
    }


#: Task ids whose success the task body already wrote in its own transaction (`SuccessInBody`): not written again.
_succeeded_in_body: set[str] = set()


class SuccessInBody:
    """For a task body that commits its effect: its success row written in that same transaction (one commit
    instead of two). Pass the instance as the body's hook, and call `committed()` once the transaction committed:
    only then does the `task_success` handler skip the task. A body whose transaction rolls back records nothing
    here, and its failure or later success is recorded as usual."""

    def __init__(self, task: Any) -> None:
        self.task = task
        self.task_id: str | None = None

    async def __call__(self, session: AsyncSession) -> None:
        outcome = _outcome(self.task, "succeeded")
        if outcome is not None:
            await record_task_outcome(session, **outcome)
            self.task_id = outcome["task_id"]

    def committed(self) -> None:
        if self.task_id is not None:
            _succeeded_in_body.add(self.task_id)


def _record_outcome(task: Any, status: str, error: str | None = None) -> None:
    """Write the task's outcome (signal handlers run in the worker process, after the task body)."""
    outcome = _outcome(task, status, error)
    if outcome is None:
        return

    async def write() -> None:
        async with runtime().sessionmaker() as session, session.begin():
            await record_task_outcome(session, **outcome)

    try:
        run_async(write())
    except Exception:  # bookkeeping must never change what the task did
        log.warning("could not record the outcome of %s[%s]", task.name, outcome["task_id"], exc_info=True)


@task_success.connect
def _task_succeeded(sender: Any = None, **_: Any) -> None:
    if sender is None or sender.name in UNRECORDED_SUCCESSES:
        return
    task_id = getattr(getattr(sender, "request", None), "id", None)
    if task_id is not None and str(task_id) in _succeeded_in_body:
        _succeeded_in_body.discard(str(task_id))  # written with the task's own commit
        return
    _record_outcome(sender, "succeeded")


@task_retry.connect
def _task_retrying(sender: Any = None, reason: Any = None, einfo: Any = None, **_: Any) -> None:
    if sender is not None:
        cause = getattr(reason, "exc", None) or reason
        _record_outcome(sender, "retrying", f"{type(cause).__name__}: {cause}\n{getattr(einfo, 'traceback', '') or ''}")


@task_retry.connect
def _run_span_retrying(reason: Any = None, **_: Any) -> None:
    # The attempt's span (the Celery instrumentation's `run/<task>`, current while the task runs): a retried or
    # dead-lettered attempt showed `ok` in `smartcourse trace`, only its inner spans said ERROR (explore10 F8).
    fail_current_span(retry_reason(reason))


@task_failure.connect
def _task_failed(sender: Any = None, exception: BaseException | None = None, einfo: Any = None, **_: Any) -> None:
    # Tasks derived from DeadLetteringTask end in a Reject instead (recorded with their dead letter).
    fail_current_span(f"{type(exception).__name__}: {exception}")
    if sender is not None:
        _record_outcome(
            sender, "failed", f"{type(exception).__name__}: {exception}\n{getattr(einfo, 'traceback', '') or ''}"
        )


# --- the tasks ------------------------------------------------------------------------------------


class _MailRetries(DeadLetteringTask):
    """An e-mail waits out a mail relay's outage: more retries than other tasks (`EMAIL_MAX_RETRIES`), the same
    backoff, so an outage of up to about an hour holds e-mails instead of dead-lettering them."""

    max_retries = get_settings().email_max_retries


class _EmailTask(_MailRetries):
    async def on_dead_letter(self, session: AsyncSession, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        raw = args[0] if args else kwargs.get("notification_id")
        try:
            nid = uuid.UUID(str(raw))
        except ValueError:  # arguments that name no notification (the dead letter keeps them as they came)
            return
        await mark_email_failed(session, nid)


@app.task(name="notifications.send_email", base=_EmailTask)
def send_email_task(notification_id: str) -> str:
    """Celery task: send one notification's email (idempotent; see `notifications.deliver_email`)."""
    try:
        nid = uuid.UUID(str(notification_id))
    except ValueError:
        log.error("notifications.send_email: %r is not a notification id", notification_id)
        return "invalid"
    success = SuccessInBody(send_email_task)
    result = run_async(deliver_email(nid, rt=runtime(), on_sent=success))
    if result == "sent":  # returned after its commit, which holds the success row too
        success.committed()
    return result


def enqueue_email(notification_id: uuid.UUID) -> None:
    """Ask a worker to send the notification's email. Safe to call any number of times: the task sends once.

    Never raises: if the broker is unreachable the row simply stays 'pending' and the sweeper enqueues
    it within a couple of minutes, so a caller that already committed does not fail for it. Blocking
    (a broker round trip): from async code, call it through `asyncio.to_thread`.
    """
    try:
        ensure_configured()
        send_email_task.apply_async(args=[str(notification_id)])
    except Exception:
        log.warning("could not enqueue notification email %s; the sweeper will", notification_id, exc_info=True)


@app.task(name="accounts.send_password_reset", base=_MailRetries)
def send_password_reset_task(email: str) -> str:
    """Celery task: e-mail a password-reset token to the account of `email`, if it has an active one
    (`accounts.send_password_reset`). Retried like the other e-mails; a retry sends a second, equally good token."""
    from smartcourse.services.accounts import send_password_reset

    rt = runtime()
    return run_async(send_password_reset(str(email), settings=rt.settings, sessionmaker=rt.sessionmaker))


@app.task(name="accounts.send_invitation", base=_MailRetries)
def send_invitation_task(user_id: str) -> str:
    """Celery task: e-mail the owner of an account an admin made the link to choose its password
    (`accounts.send_invitation`). Retried like the other e-mails; a retry sends a second, equally good link."""
    from smartcourse.services.accounts import send_invitation

    rt = runtime()
    return run_async(send_invitation(uuid.UUID(str(user_id)), settings=rt.settings, sessionmaker=rt.sessionmaker))


@app.task(name="accounts.send_email_verification", base=_MailRetries)
def send_email_verification_task(user_id: str) -> str:
    """Celery task: e-mail a sign-up the link proving its address (`accounts.send_email_verification`). Retried like
    the other e-mails; a retry sends a second, equally good link."""
    from smartcourse.services.accounts import send_email_verification

    rt = runtime()
    return run_async(
        send_email_verification(uuid.UUID(str(user_id)), settings=rt.settings, sessionmaker=rt.sessionmaker)
    )


def _enqueue_account_mail(task: Any, arg: str, what: str) -> bool:
    """Queue an account's own e-mail task; False if the broker did not take it (the caller says so: such a request
    has no row for a sweeper to find later). Blocking: from async code, call it through `asyncio.to_thread`."""
    try:
        ensure_configured()
        task.apply_async(args=[arg])
    except Exception:
        log.warning("could not enqueue %s", what, exc_info=True)
        return False
    return True


def enqueue_invitation(user_id: str) -> bool:
    """Queue the invitation of the account `user_id` (`_enqueue_account_mail`)."""
    return _enqueue_account_mail(send_invitation_task, user_id, "an invitation e-mail")


def enqueue_email_verification(user_id: str) -> bool:
    """Queue the e-mail proving the address of the account `user_id` (`_enqueue_account_mail`)."""
    return _enqueue_account_mail(send_email_verification_task, user_id, "an address confirmation e-mail")


def enqueue_password_reset(email: str) -> bool:
    """Queue the reset e-mail of `email` (`_enqueue_account_mail`)."""
    return _enqueue_account_mail(send_password_reset_task, email, "a password-reset e-mail")


# --- several e-mails in one task ------------------------------------------------------------------


class EmailsFailed(Exception):
    """Some e-mails of a `notifications.send_emails` batch failed: the task is retried (with backoff, like
    `send_email`), and the retry finds the ones sent meanwhile already sent."""


class _EmailBatchTask(_MailRetries):
    async def on_dead_letter(self, session: AsyncSession, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        # Only the ones still pending (the failing ones) become 'failed'; the batch's sent ones stay sent.
        for nid, _ in _batch_items(args[0] if args else kwargs.get("emails")):
            await mark_email_failed(session, nid)


@app.task(name="notifications.send_emails", base=_EmailBatchTask)
def send_emails_task(emails: list[dict[str, Any]]) -> dict[str, int]:
    """Celery task: several notifications' e-mails (`EmailBatcher` coalesces the welcome e-mails of an enrollment
    burst). Each is sent exactly as `send_email` sends one (`deliver_email`: its own claim, SMTP, commit), inside a
    span continuing the trace of the request that caused it (`trace`, a W3C carrier) and linked to this task's.
    Any failing one fails the task after the others were tried: the retry skips the sent ones. Returns the count
    of each outcome ("sent", "already_sent", ...)."""
    return run_async(_deliver_all(_batch_items(emails)))


async def _deliver_all(items: list[tuple[uuid.UUID, Any]]) -> dict[str, int]:
    outcomes: Counter[str] = Counter()
    failed: list[tuple[uuid.UUID, BaseException]] = []
    batch = trace.get_current_span().get_span_context()
    links = [Link(batch)] if batch.is_valid else None
    for nid, carrier in items:
        attributes = {"smartcourse.notification_id": str(nid), "celery.task_name": "notifications.send_emails"}
        with tracer().start_as_current_span(
            "deliver email", context=extract_context(carrier), links=links, attributes=attributes
        ) as span:
            try:
                outcome = await deliver_email(nid, rt=runtime())
            except Exception as exc:  # the others are still tried; the task fails at the end
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
                log.warning("notification %s: e-mail failed (%s: %s)", nid, type(exc).__name__, exc)
                failed.append((nid, exc))
                outcomes["failed"] += 1
                continue
            span.set_attribute("smartcourse.outcome", outcome)
            outcomes[outcome] += 1
    if failed:
        first_id, first = failed[0]
        raise EmailsFailed(
            f"{len(failed)} of {len(items)} e-mails failed, first {first_id}: {type(first).__name__}: {first}"
        ) from first
    return dict(outcomes)


def _trace_of(carrier: Any) -> str | None:
    """The trace id in a W3C `traceparent` carrier (`{"traceparent": "00-<trace>-<span>-01"}`), else None."""
    parent = carrier.get("traceparent") if isinstance(carrier, dict) else None
    try:
        return normalize_trace_id(parent) if isinstance(parent, str) else None
    except ValueError:
        return None


def enqueue_emails(emails: list[dict[str, Any]]) -> None:
    """Ask a worker to send these notifications' e-mails in one task ([{"id": ..., "trace": carrier}, ...]). Never
    raises (like `enqueue_email`): rows whose enqueue was lost stay 'pending' for the sweeper. Blocking."""
    try:
        ensure_configured()
        send_emails_task.apply_async(args=[emails])
    except Exception:
        # Which e-mails, and the traces they belong to: the line is the only record of the lost enqueue (explore18
        # F7: it named neither, and its own trace id led nowhere).
        log.warning(
            "could not enqueue %d notification e-mails; the sweeper will",
            len(emails),
            exc_info=True,
            extra={
                "notification_ids": [str(e.get("id")) for e in emails][:50],
                "trace_ids": sorted({t for e in emails if (t := _trace_of(e.get("trace")))})[:50],
            },
        )


class EmailBatcher:
    """Coalesces the e-mail enqueues of one process into `notifications.send_emails` tasks, at most one per `window`.

    A Celery task costs its worker more than the e-mail it sends (receiving, the pool hand-over, the outcome row:
    docs/benchmarks.md, "Seventh pass"), and an enrollment burst sets up tens of enrollments a second. An enqueue
    with no task sent in the last `window` seconds goes at once (a lone enrollment waits for nothing); one that
    comes sooner opens a batch sent `window` seconds after the previous task (or at `max_size`), which the others
    coming meanwhile join. Each caller returns once the task carrying its e-mail is on the broker (or its enqueue
    failed, logged: the sweeper then sends them), as `enqueue_email` in a thread did: a caller that returned knows
    its e-mail was handed over, and a caller killed while waiting never returned, so nothing changes for a crash.

    The enqueue runs in a thread, outside the callers' traces: the task is a trace of its own, and each e-mail
    carries its caller's trace context, which the task continues (`send_emails_task`)."""

    def __init__(
        self,
        *,
        window: float = 0.1,
        max_size: int = 50,
        send: Callable[[list[dict[str, Any]]], None] = enqueue_emails,
    ) -> None:
        self.window, self.max_size, self.send = window, max_size, send
        self._open: tuple[list[dict[str, Any]], asyncio.Future[None], asyncio.TimerHandle] | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self._last_sent = -float("inf")  # loop time of the last batch's close

    async def enqueue(self, notification_id: uuid.UUID) -> None:
        """Enqueue one e-mail (with those coming within the window); returns once its task is on the broker."""
        loop = asyncio.get_running_loop()
        if self._open is None:
            # The first since a quiet `window` goes now (the callers of this same tick still join it).
            delay = max(0.0, self._last_sent + self.window - loop.time())
            self._open = ([], loop.create_future(), loop.call_later(delay, self._close))
        emails, sent, _ = self._open
        emails.append({"id": str(notification_id), "trace": current_carrier()})
        if len(emails) >= self.max_size:
            self._close()
        await asyncio.shield(sent)  # a cancelled caller leaves the others' enqueue alone

    def _close(self) -> None:
        if self._open is None:
            return
        emails, sent, timer = self._open
        self._open = None
        timer.cancel()
        self._last_sent = asyncio.get_running_loop().time()
        task = asyncio.get_running_loop().create_task(self._enqueue(emails, sent))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _enqueue(self, emails: list[dict[str, Any]], sent: asyncio.Future[None]) -> None:
        try:
            EMAIL_BATCH_SIZE.observe(len(emails))
            await asyncio.get_running_loop().run_in_executor(None, self._send_detached, emails)
        except Exception:  # `send` never raises; this is the executor itself failing
            log.warning("could not enqueue %d notification e-mails; the sweeper will", len(emails), exc_info=True)
        finally:
            if not sent.done():
                sent.set_result(None)

    def _send_detached(self, emails: list[dict[str, Any]]) -> None:
        token = otel_context.attach(otel_context.Context())  # not a child of whichever caller opened the batch
        try:
            self.send(emails)
        finally:
            otel_context.detach(token)


@app.task(name="notifications.sweep_pending")
def sweep_pending_task() -> int:
    """Celery beat, every EMAIL_SWEEP_SECONDS (a minute): enqueue again what `notifications.pending_to_sweep` finds
    (never attempted for as long). Duplicates are harmless."""
    rt = runtime()
    ids = run_async(pending_to_sweep(rt.sessionmaker, older_than=timedelta(seconds=rt.settings.email_sweep_seconds)))
    orphaned = run_async(orphaned_email_retries(rt.sessionmaker))
    for nid in [*ids, *orphaned]:
        enqueue_email(nid)
    if ids:
        log.warning("sweeper re-enqueued %d notification emails", len(ids))
    if orphaned:
        log.warning("sweeper re-enqueued %d notification emails whose retry was lost", len(orphaned))
    return len(ids) + len(orphaned)
