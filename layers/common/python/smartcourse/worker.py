"""The worker process: the Temporal worker plus the outbox relay."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from smartcourse.bootstrap import get_container
from smartcourse.consumers import InProcessPublisher, registry
from smartcourse.logging import configure_logging
from smartcourse.services.outbox import run_relay

log = logging.getLogger(__name__)


async def run_worker() -> None:
    from workflows.worker import build_worker

    configure_logging()
    c = await get_container()
    client = await c.temporal()
    worker = build_worker(client, c)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    publisher = InProcessPublisher(c.sessionmaker, registry())
    relay = asyncio.create_task(run_relay(c.sessionmaker, publisher, stop=stop))
    log.info("worker started on task queue %s", c.settings.temporal_task_queue)
    async with worker:
        await stop.wait()
    relay.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await relay
    await c.aclose()
