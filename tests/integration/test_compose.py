"""docker-compose.yml is valid and runs the same engines as the native stack (checked when the docker CLI is here)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from tests.conftest import REPO

ENGINES = {
    "postgres",
    "redis",
    "rabbitmq",
    "kafka",
    "schema-registry",
    "temporal",
    "mongo",
    "jaeger",
    "prometheus",
    "grafana",
}
PROCESSES = {"api", "worker", "consumers", "celery", "celery-beat", "relay"}


def _compose() -> dict:  # type: ignore[type-arg]
    return dict(yaml.safe_load((REPO / "docker-compose.yml").read_text()))


def test_compose_declares_the_engines_and_the_smartcourse_processes() -> None:
    services = set(_compose()["services"])
    assert ENGINES <= services, ENGINES - services
    assert PROCESSES <= services, PROCESSES - services
    assert services & {"minio", "localstack"}


def test_compose_runs_exactly_one_celery_beat() -> None:
    """explore16 F1: no beat ran, so the e-mails only the sweeper sends (revocation, an admin's removal, a waitlist
    release) were never sent; two would run the schedule twice."""
    commands = [service.get("command", []) for service in _compose()["services"].values()]
    beats = [c for c in commands if "beat" in c or "-B" in c or "--beat" in c]
    assert len(beats) == 1, beats
    assert beats[0][:4] == ["celery", "-A", "smartcourse.tasks.app", "beat"]


def _has_compose() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30).returncode == 0


@pytest.mark.skipif(not _has_compose(), reason="the docker CLI with the compose plugin is not installed")
def test_docker_compose_config_is_valid() -> None:
    result = subprocess.run(
        ["docker", "compose", "-f", str(REPO / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
