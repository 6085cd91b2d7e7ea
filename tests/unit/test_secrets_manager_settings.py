"""SMARTCOURSE_SECRETS_ARN: the deployed functions read their secrets from Secrets Manager at cold start."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from smartcourse.adapters import secrets_manager
from smartcourse.config import Settings

REGION = "eu-west-1"


@pytest.fixture
def secret_arn(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, dict[str, str]]]:
    for var in ("JWT_SECRET", "DATABASE_URL", "REDIS_URL", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")  # not the secret's: its ARN names the region
    values = {
        "JWT_SECRET": secrets.token_hex(32),
        "DATABASE_URL": "postgresql+asyncpg://app:pw@db.internal/smartcourse",
        "REDIS_URL": "rediss://:pw@cache.internal:6379/0",
    }
    with mock_aws():
        client = boto3.client("secretsmanager", region_name=REGION)
        arn = client.create_secret(Name="smartcourse/production", SecretString=json.dumps(values))["ARN"]
        monkeypatch.setenv("SMARTCOURSE_SECRETS_ARN", arn)
        yield arn, values


def test_settings_read_the_secret_named_by_its_arn(secret_arn: tuple[str, dict[str, str]]) -> None:
    _, values = secret_arn
    s = Settings(SMARTCOURSE_ENV="production")  # type: ignore[call-arg]
    assert s.jwt_secret == values["JWT_SECRET"]
    assert s.database_url == values["DATABASE_URL"]
    assert s.redis_url == values["REDIS_URL"]


def test_the_environment_wins_over_the_secret(
    secret_arn: tuple[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://override:6379/0")
    assert Settings(SMARTCOURSE_ENV="production").redis_url == "redis://override:6379/0"  # type: ignore[call-arg]


def test_a_key_that_names_no_setting_is_refused(secret_arn: tuple[str, dict[str, str]]) -> None:
    arn, values = secret_arn
    boto3.client("secretsmanager", region_name=REGION).put_secret_value(
        SecretId=arn, SecretString=json.dumps({**values, "JWT_SECRETS": "typo"})
    )
    with pytest.raises(ValueError, match="JWT_SECRETS"):
        Settings(SMARTCOURSE_ENV="production")  # type: ignore[call-arg]


def test_a_secret_that_is_not_a_json_object_is_refused(secret_arn: tuple[str, dict[str, str]]) -> None:
    arn, _ = secret_arn
    boto3.client("secretsmanager", region_name=REGION).put_secret_value(SecretId=arn, SecretString="hunter2")
    with pytest.raises(ValueError, match="JSON object"):
        Settings(SMARTCOURSE_ENV="production")  # type: ignore[call-arg]


def test_without_the_arn_nothing_is_fetched(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(arn: str) -> dict[str, str]:
        raise AssertionError(f"fetched {arn}")

    monkeypatch.setattr(secrets_manager, "read_secret_values", refuse)
    monkeypatch.delenv("SMARTCOURSE_SECRETS_ARN", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("JWT_SECRET", secrets.token_hex(32))
    assert Settings(SMARTCOURSE_ENV="production", _env_file=None).database_url is None  # type: ignore[call-arg]


def test_an_endpoint_that_never_answers_fails_fast_naming_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """explore15 F6: botocore's defaults (60 s connect, 60 s read, retried) held a cold start 150 s against an endpoint
    that accepted and never answered (a VPC without NAT or endpoint), past Lambda's 10 s init, with no line naming
    Secrets Manager. The read is bounded and its error names the secret."""
    import socket
    import time

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts (the kernel does), never answers
    try:
        port = listener.getsockname()[1]
        monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        arn = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:smartcourse/production-AbCdEf"
        limits = {**secrets_manager.READ_LIMITS, "read_timeout": 0.5}  # the test's patience, not production's 3 s
        monkeypatch.setattr(secrets_manager, "READ_LIMITS", limits)
        started = time.monotonic()
        with pytest.raises(RuntimeError, match="could not read arn:aws:secretsmanager:eu-west-1"):
            secrets_manager.read_secret_values(arn)
        assert time.monotonic() - started < 5  # two attempts of 0.5 s (3 s deployed), not botocore's minutes
    finally:
        listener.close()
