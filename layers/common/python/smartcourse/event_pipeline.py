"""The `smartcourse relay` and `smartcourse consumers` processes: outbox → Kafka → consumers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator

from smartcourse.adapters.event_codec import EventCodec
from smartcourse.adapters.schema_registry import SchemaRegistry
from smartcourse.bootstrap import Container, get_container
from smartcourse.config import Settings
from smartcourse.consumers import InProcessPublisher
from smartcourse.consumers import registry as consumer_registry
from smartcourse.event_consumer import Consumer
from smartcourse.metrics import serve_metrics
from smartcourse.services.heartbeats import beating
from smartcourse.services.outbox import run_relay
from smartcourse.telemetry import configure_telemetry

log = logging.getLogger(__name__)


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


@contextlib.asynccontextmanager
async def event_codec(settings: Settings) -> AsyncIterator[EventCodec]:
    """The codec for this process; with a registry, every contract is registered first (refused → no start)."""
    if not settings.schema_registry_url:
        log.warning("SCHEMA_REGISTRY_URL is not set: events travel as plain JSON, checked against local contracts")
        yield EventCodec()
        return
    registry = SchemaRegistry(settings.schema_registry_url, subject_prefix=settings.events_namespace)
    try:
        await registry.register_all()
        yield EventCodec(registry)
    finally:
        await registry.aclose()


async def run_relay_process(*, container: Container | None = None, stop: asyncio.Event | None = None) -> None:
    """Outbox → Kafka when KAFKA_BOOTSTRAP_SERVERS is set, else outbox → the in-process consumers."""
    configure_telemetry("relay")
    serve_metrics("relay")  # SMARTCOURSE_METRICS_PORT_RELAY (9102)
    c = container or await get_container()
    stop = stop or _stop_on_signals()
    try:
        async with beating(c.sessionmaker, "relay"):  # its sign of life for /health (services/heartbeats.py)
            await _relay(c, stop)
    finally:
        if container is None:
            await c.aclose()


async def _relay(c: Container, stop: asyncio.Event) -> None:
    from smartcourse.entrypoints.kafka import KafkaPublisher

    settings = c.settings
    if not settings.kafka_bootstrap_servers:
        log.info("relay publishing to the in-process consumers (no KAFKA_BOOTSTRAP_SERVERS)")
        await run_relay(c.sessionmaker, InProcessPublisher(c.sessionmaker, consumer_registry()), stop=stop)
        return
    async with event_codec(settings) as codec:
        publisher = KafkaPublisher(
            bootstrap_servers=settings.kafka_bootstrap_servers, codec=codec, namespace=settings.events_namespace
        )
        await publisher.start()
        log.info("relay publishing to Kafka at %s", settings.kafka_bootstrap_servers)
        try:
            await run_relay(c.sessionmaker, publisher, stop=stop)
        finally:
            await publisher.stop()


async def run_consumers_process(
    *, consumers: list[Consumer] | None = None, container: Container | None = None, stop: asyncio.Event | None = None
) -> None:
    """Every consumer of `consumers.registry()`, each as its own Kafka consumer group, until stopped."""
    from smartcourse.entrypoints.kafka import KafkaConsumerRunner

    configure_telemetry("consumers")
    serve_metrics("consumers")  # SMARTCOURSE_METRICS_PORT_CONSUMERS (9103)
    c = container or await get_container()
    stop = stop or _stop_on_signals()
    settings = c.settings
    try:
        if not settings.kafka_bootstrap_servers:
            raise SystemExit(
                "smartcourse consumers needs KAFKA_BOOTSTRAP_SERVERS (without Kafka the relay applies them)"
            )
        consumers = consumer_registry() if consumers is None else consumers
        async with event_codec(settings) as codec:
            runners = [
                KafkaConsumerRunner(
                    consumer,
                    sessionmaker=c.sessionmaker,
                    bootstrap_servers=settings.kafka_bootstrap_servers,
                    codec=codec,
                    namespace=settings.events_namespace,
                )
                for consumer in consumers
            ]
            if not runners:
                log.warning("no consumers registered; idling")
            # One failing runner stops the process (its supervisor restarts it); the others stop cleanly.
            tasks = [asyncio.create_task(r.run(stop)) for r in runners]
            waiter = asyncio.create_task(stop.wait())
            async with beating(c.sessionmaker, "consumers"):  # its sign of life for /health
                done, _ = await asyncio.wait([*tasks, waiter], return_when=asyncio.FIRST_COMPLETED)
            stop.set()
            await asyncio.gather(*tasks, waiter, return_exceptions=True)
            for task in done:
                if task is not waiter and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
    finally:
        if container is None:
            await c.aclose()
