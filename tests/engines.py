"""Reaching the real engines of `make stack-up`: skip (or, with SMARTCOURSE_REQUIRE_ENGINES=1, fail) when absent."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import pytest

REQUIRE = os.environ.get("SMARTCOURSE_REQUIRE_ENGINES") == "1"


@dataclass(frozen=True)
class Engine:
    name: str
    port_env: str
    default_port: int
    url_template: str

    @property
    def port(self) -> int:
        return int(os.environ.get(self.port_env, self.default_port))

    @property
    def url(self) -> str:
        return self.url_template.format(port=self.port)


ENGINES = {
    "postgres": Engine(
        "postgres", "STACK_PG_PORT", 5432, "postgresql+asyncpg://smartcourse:smartcourse@127.0.0.1:{port}/smartcourse"
    ),
    "redis": Engine("redis", "STACK_REDIS_PORT", 6379, "redis://127.0.0.1:{port}/0"),
    "rabbitmq": Engine("rabbitmq", "STACK_RABBITMQ_PORT", 5672, "amqp://guest:guest@127.0.0.1:{port}//"),
    "kafka": Engine("kafka", "STACK_KAFKA_PORT", 9092, "127.0.0.1:{port}"),
    "schema_registry": Engine("schema_registry", "STACK_SCHEMA_REGISTRY_PORT", 8081, "http://127.0.0.1:{port}"),
    "temporal": Engine("temporal", "STACK_TEMPORAL_PORT", 7233, "127.0.0.1:{port}"),
    "mongo": Engine("mongo", "STACK_MONGO_PORT", 27017, "mongodb://127.0.0.1:{port}"),
    "s3": Engine("s3", "STACK_S3_PORT", 9000, "http://127.0.0.1:{port}"),
    "smtp": Engine("smtp", "STACK_SMTP_PORT", 1025, "127.0.0.1:{port}"),
    "jaeger": Engine("jaeger", "STACK_JAEGER_PORT", 16686, "http://127.0.0.1:{port}"),  # its query API
    "prometheus": Engine("prometheus", "STACK_PROMETHEUS_PORT", 9090, "http://127.0.0.1:{port}"),
}


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def require_engine(name: str) -> str:
    """The URL of a stack engine, or skip/fail the test with a message naming `make stack-up`."""
    engine = ENGINES[name]
    if not _reachable(engine.port):
        msg = f"{name} is not running on 127.0.0.1:{engine.port}: start the engines with `make stack-up`"
        if REQUIRE:
            pytest.fail(msg + " (SMARTCOURSE_REQUIRE_ENGINES=1)")
        pytest.skip(msg)
    if name == "s3":
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "smartcourse")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "smartcourse")
    return engine.url
