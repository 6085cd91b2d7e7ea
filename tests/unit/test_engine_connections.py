"""How the processes outside Lambda reach a managed Kafka (MSK's SASL/SCRAM or TLS listener) and Temporal Cloud
(TLS, an API key): they spoke plaintext only, so they could not reach the template's default cluster (explore15 F11)."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest

from smartcourse.config import Settings
from smartcourse.entrypoints.kafka import connection_options


def settings(**env: Any) -> Settings:
    return Settings(**env)  # type: ignore[arg-type]


def test_plaintext_adds_nothing() -> None:
    assert connection_options(settings()) == {}


def test_msk_scram_is_sasl_over_tls_with_the_systems_cas() -> None:
    options = connection_options(
        settings(KAFKA_SECURITY_PROTOCOL="SASL_SSL", KAFKA_SASL_USERNAME="relay", KAFKA_SASL_PASSWORD="pw")
    )
    assert options["security_protocol"] == "SASL_SSL" and isinstance(options["ssl_context"], ssl.SSLContext)
    assert (options["sasl_mechanism"], options["sasl_plain_username"], options["sasl_plain_password"]) == (
        "SCRAM-SHA-512",
        "relay",
        "pw",
    )
    tls = connection_options(settings(KAFKA_SECURITY_PROTOCOL="SSL"))
    assert set(tls) == {"security_protocol", "ssl_context"}


def test_sasl_without_credentials_is_refused_and_secrets_stay_out_of_reprs() -> None:
    with pytest.raises(ValueError, match="KAFKA_SASL_USERNAME"):
        connection_options(settings(KAFKA_SECURITY_PROTOCOL="SASL_SSL"))
    with pytest.raises(ValueError):
        settings(KAFKA_SECURITY_PROTOCOL="SASL_SCRAM")  # not a protocol
    s = settings(KAFKA_SASL_PASSWORD="kafka-secret", TEMPORAL_API_KEY="temporal-secret")
    assert "kafka-secret" not in repr(s) and "temporal-secret" not in repr(s)


async def test_the_temporal_client_is_asked_for_tls_and_the_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from temporalio.client import Client

    from smartcourse import bootstrap

    seen: dict[str, Any] = {}

    async def connect(address: str, **kwargs: Any) -> object:
        seen.update(kwargs, address=address)
        return object()

    monkeypatch.setattr(Client, "connect", connect)
    cloud = settings(TEMPORAL_ADDRESS="ns.acct.tmprl.cloud:7233", TEMPORAL_NAMESPACE="ns.acct", TEMPORAL_API_KEY="key")
    container = bootstrap.build_container(cloud)
    await container.temporal()
    assert (seen["address"], seen["namespace"], seen["tls"], seen["api_key"]) == (
        "ns.acct.tmprl.cloud:7233",
        "ns.acct",
        True,
        "key",
    )
    seen.clear()
    await bootstrap.build_container(settings(TEMPORAL_ADDRESS="localhost:7233")).temporal()
    assert (seen["tls"], seen["api_key"]) == (False, None)


def test_the_embedded_redis_is_ready_when_it_answers_not_when_its_socket_exists(tmp_path: Path) -> None:
    """A socket file exists from the server's `bind`, before its `listen`: a test's first command once met
    "Connection refused" in that gap (the readiness looked at the file)."""
    import socket
    import threading

    from smartcourse.engines import _redis_answers

    path = tmp_path / "redis.sock"
    assert not _redis_answers(path)
    bound = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    bound.bind(str(path))  # bound, not listening
    assert path.exists() and not _redis_answers(path)
    bound.listen(1)

    def pong() -> None:
        conn, _ = bound.accept()
        with conn:
            conn.recv(16)
            conn.sendall(b"+PONG\r\n")

    server = threading.Thread(target=pong)
    server.start()
    try:
        assert _redis_answers(path)
    finally:
        server.join(5)
        bound.close()
