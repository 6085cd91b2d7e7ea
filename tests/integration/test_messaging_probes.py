"""/health probes the messaging engines a deployment is configured with: Kafka, its schema registry and Celery's
RabbitMQ broker (explore24 F3, F4: each was down while /health said `ok` and every process `up`)."""

from __future__ import annotations

import asyncio
import socket
from types import SimpleNamespace
from typing import Any

import pytest

from smartcourse.bootstrap import Container
from smartcourse.services import health
from tests.engines import require_engine


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _probes(settings: Any, **engines: str) -> dict[str, Any]:
    return Container.messaging_probes(SimpleNamespace(settings=settings.model_copy(update=engines)))  # type: ignore[arg-type]


async def test_an_unreachable_kafka_registry_or_broker_is_down(settings: Any) -> None:
    port = _closed_port()
    probes = _probes(
        settings,
        kafka_bootstrap_servers=f"127.0.0.1:{port}",
        schema_registry_url=f"http://127.0.0.1:{port}",
        celery_broker_url=f"amqp://guest:guest@127.0.0.1:{port}//",
    )
    assert set(probes) == {"kafka", "schema_registry", "broker"}
    results = await asyncio.gather(*(health._probe(p, timeout=8) for p in probes.values()))
    assert [r["status"] for r in results] == ["down"] * 3, results
    assert all(r["error"] for r in results), results


async def test_none_is_probed_where_none_is_configured_or_in_lambda(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _probes(settings, kafka_bootstrap_servers=None, schema_registry_url=None, celery_broker_url=None) == {}
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "smartcourse-health")
    assert _probes(settings, kafka_bootstrap_servers="127.0.0.1:9092", celery_broker_url="amqp://x//") == {}


async def test_the_stacks_kafka_registry_and_broker_are_up(settings: Any) -> None:
    probes = _probes(
        settings,
        kafka_bootstrap_servers=require_engine("kafka"),
        # The stack's registry serves the Confluent API under this path (`scripts/stack env`).
        schema_registry_url=require_engine("schema_registry") + "/apis/ccompat/v7",
        celery_broker_url=require_engine("rabbitmq"),
    )
    results = dict(zip(probes, await asyncio.gather(*(health._probe(p) for p in probes.values())), strict=True))
    assert all(r["status"] == "up" for r in results.values()), results
