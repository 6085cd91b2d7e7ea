"""The worker process: the Temporal worker plus the outbox relay, the dispatcher, the sweeper and its heartbeat."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from typing import Any

from smartcourse.bootstrap import get_container
from smartcourse.consumers import InProcessPublisher, registry
from smartcourse.errors import Unavailable
from smartcourse.metrics import DATABASE_STATE, serve_metrics
from smartcourse.services import retention
from smartcourse.services.conversations import purge_expired
from smartcourse.services.dispatcher import run_dispatcher
from smartcourse.services.heartbeats import run_heartbeat
from smartcourse.services.outbox import run_relay
from smartcourse.services.workflows import sweep
from smartcourse.telemetry import configure_telemetry
from workflows.worker import build_worker

log = logging.getLogger(__name__)


#: How often the sweeper trims the tables that only pile up (services/retention.py).
RETENTION_EVERY_SECONDS = 3600.0


async def run_sweeper(c: Any, *, stop: asyncio.Event, every: float = 30.0) -> None:
    """Start any workflow a crash left unstarted (see services/workflows.sweep), purge the assistant's
    conversations past their retention, and, once an hour, the rows past theirs (services/retention.py)."""
    retained_at: float | None = None
    while not stop.is_set():
        try:
            await sweep(c)
        except Exception:
            log.exception("workflow sweep failed")
        try:
            await purge_expired(c)
        except Exception:
            log.exception("conversation retention clean-up failed")
        if retained_at is None or time.monotonic() - retained_at >= RETENTION_EVERY_SECONDS:
            retained_at = time.monotonic()
            try:
                await retention.purge(c)
            except Exception:
                log.exception("retention clean-up failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


#: The longest pause between two tries to reach the workflow engine at start.
ENGINE_RETRY_MAX_SECONDS = 30.0


async def connect_when_reachable(c: Any, *, stop: asyncio.Event, first_delay: float = 1.0) -> Any | None:
    """The Temporal client, once the engine answers; None when stopped meanwhile. A worker started while Temporal
    is down waits for it (a line per try, the pause doubling up to `ENGINE_RETRY_MAX_SECONDS`) instead of exiting:
    `run` restarted an exiting worker five times in about 52 s, then stopped the whole product, the API included,
    for a one-minute engine outage (explore18 F2). Once connected, the SDK rides out later outages by itself."""
    delay = first_delay
    while not stop.is_set():
        try:
            return await c.temporal()
        except Unavailable as exc:
            log.warning("%s; the worker waits for it (next try in %.0f s)", exc, delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        delay = min(delay * 2, ENGINE_RETRY_MAX_SECONDS)
    return None


async def run_worker() -> None:
    configure_telemetry("worker")
    serve_metrics("worker")  # SMARTCOURSE_METRICS_PORT_WORKER (9101): docs/operations.md
    c = await get_container()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # What needs no workflow engine runs at once, and on through an engine outage (explore21 F6: it all waited):
    # the relay of the outbox to the in-process consumers, the stored state's gauges, the heartbeat.
    # The platform's stored state (outbox backlog, dead letters, ...) on this process's /metrics.
    state = asyncio.create_task(DATABASE_STATE.run(c.sessionmaker, stop=stop))
    # Its sign of life for /health (services/heartbeats.py): on the loop the relay, dispatcher and sweeper share,
    # so a stopped or hung worker stops beating (one waiting for Temporal beats: /health's `temporal` says why
    # nothing starts).
    heartbeat = asyncio.create_task(run_heartbeat(c.sessionmaker, "worker", stop=stop))
    tasks: list[asyncio.Task[None]] = [state, heartbeat]
    # One try at the engine before the relay takes the loop: behind a launch-day backlog its rounds (thousands of
    # events to the in-process consumers) held up the connection, and a restarted worker started no workflow for
    # 4-11 s more (explore38 F2). An engine that is down is waited for with the relay running.
    client = None
    with contextlib.suppress(Unavailable):
        client = await c.temporal()
    if not c.settings.kafka_bootstrap_servers:  # with Kafka, `smartcourse relay` + `smartcourse consumers` do it
        publisher = InProcessPublisher(c.sessionmaker, registry())
        tasks.append(asyncio.create_task(run_relay(c.sessionmaker, publisher, stop=stop)))
    if client is None:
        client = await connect_when_reachable(c, stop=stop)
    if client is not None:
        worker = build_worker(client, c)
        # Start what a crash left unstarted, and the workflows of admissions from the outbox, with the dispatcher's
        # bound on work in flight (also with Kafka: it reads the outbox table). Several workers take turns.
        tasks += [
            asyncio.create_task(run_sweeper(c, stop=stop)),
            asyncio.create_task(run_dispatcher(c, stop=stop)),
        ]
        log.info("worker started on task queue %s", c.settings.temporal_task_queue)
        async with worker:
            await stop.wait()
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await c.aclose()
