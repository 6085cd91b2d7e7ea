"""Every Grafana panel's query returns data from the stack's Prometheus after a short scenario.

The scenario runs the real processes (API, worker, relay, consumers, Celery) on the stack's engines, with a database,
task queue, event namespace and Celery queue of their own; each process serves /metrics on a free port, which this
test lists in a file the stack's Prometheus discovers (var/stack/prometheus/targets/). The scenario registers,
publishes (once successfully, once failing at a step), enrolls (admitted, waitlisted, refused, repeated), asks the
assistant (whose model is unreachable), poisons one consumer and sends e-mails to a closed SMTP port; then every
panel's expression, narrowed to this run's targets, must return a non-empty result.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import secrets
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import REPO, migrate_cli
from tests.engines import ENGINES, require_engine

DASHBOARDS = REPO / "ops" / "grafana" / "dashboards"
KINDS = ("worker", "relay", "consumers", "celery")


def free_ports(n: int) -> list[int]:
    """`n` distinct free ports below the kernel's ephemeral range.

    Not `bind(0)`: the kernel hands a port just released to the next `bind(0)` now and then (6 groups of 7 in
    5,000 here), and any process's outgoing connection may take an ephemeral port between the choice and the
    process's own bind. Either way a process could not listen on its metrics port (it logs and goes on: metrics
    never stop a process) while another answered there: one CI run's relay panels stayed empty that way.
    """
    ephemeral = Path("/proc/sys/net/ipv4/ip_local_port_range")
    low = int(ephemeral.read_text().split()[0]) if ephemeral.exists() else 32768
    ports: list[int] = []
    rng = random.Random()
    while len(ports) < n:
        port = rng.randrange(10_000, low)
        if port in ports:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        ports.append(port)
    return ports


def scoped(expr: str, run: str) -> str:
    """The panel's expression over this run's targets only (every selector gains run="<run>")."""

    def add(match: re.Match[str]) -> str:
        name, brace = match.group(1), match.group(2)
        return f'{name}{{run="{run}",' if brace else f'{name}{{run="{run}"}}'

    return re.sub(r"\b(smartcourse_[a-z_]+|up)\b(\{)?", add, expr)


def panel_queries() -> list[tuple[str, str, str]]:
    out = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                out.append((path.stem, panel["title"], target["expr"]))
    return out


async def wait_for(check: Callable[[], Awaitable[bool]], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.5)


class Run:
    """This test's processes and their environment."""

    def __init__(self, tmp: Path, database_url: str) -> None:
        self.id = uuid.uuid4().hex[:10]
        self.tmp = tmp
        self.api_port, smtp_port, llm_port, *ports = free_ports(3 + len(KINDS))
        self.ports = dict(zip(KINDS, ports, strict=True))
        self.holds = tmp / "holds"
        self.holds.mkdir()
        self.env = {
            **os.environ,
            "SMARTCOURSE_ENV": "test",
            "SMARTCOURSE_DATA_DIR": str(tmp / "data"),
            "SMARTCOURSE_TEST_HOLD_DIR": str(self.holds),
            "SMARTCOURSE_LOG_LEVEL": "WARNING",
            "DATABASE_URL": database_url,
            "REDIS_URL": ENGINES["redis"].url,
            "TEMPORAL_ADDRESS": ENGINES["temporal"].url,
            "TEMPORAL_TASK_QUEUE": f"dash-{self.id}",
            "KAFKA_BOOTSTRAP_SERVERS": ENGINES["kafka"].url,
            "EVENTS_NAMESPACE": f"dash{self.id}.",
            "CELERY_QUEUE": f"dash-{self.id}",
            "CELERY_MAX_RETRIES": "1",
            "EMAIL_MAX_RETRIES": "1",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(smtp_port),  # nobody listens: every e-mail fails, is retried, then dead-lettered
            "LLM_BASE_URL": f"http://127.0.0.1:{llm_port}/v1",  # the model is unreachable too
            "JWT_SECRET": secrets.token_hex(32),
            **{f"SMARTCOURSE_METRICS_PORT_{kind.upper()}": str(port) for kind, port in self.ports.items()},
        }
        for var in ("SCHEMA_REGISTRY_URL", "CELERY_BROKER_URL", "PROMETHEUS_MULTIPROC_DIR", "MONGODB_URL", "S3_BUCKET"):
            self.env.pop(var, None)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> None:
        exe = [sys.executable, "-m", "smartcourse.cli"]
        celery = [sys.executable, "-m", "celery", "-A", "smartcourse.tasks", "worker", "-l", "warning"]
        argv = {
            "api": [*exe, "serve", "--port", str(self.api_port)],
            "worker": [*exe, "worker"],
            "relay": [*exe, "relay"],
            "consumers": [*exe, "consumers"],
            "celery": [*celery, "--concurrency", "1", "--without-gossip", "--without-mingle", "-n", f"{self.id}@%h"],
        }
        for name, args in argv.items():
            log = open(self.tmp / f"{name}.log", "wb")  # the process owns it
            self.procs[name] = subprocess.Popen(
                args, env=self.env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def targets(self) -> list[dict[str, Any]]:
        ports = {"api": self.api_port, **self.ports}
        return [
            {"targets": [f"127.0.0.1:{port}"], "labels": {"process": k, "run": self.id}} for k, port in ports.items()
        ]

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                tail = (self.tmp / f"{name}.log").read_text(errors="replace")[-3000:]
                raise AssertionError(f"{name} exited with {proc.returncode}:\n{tail}")

    def stop(self) -> None:
        import signal

        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture
async def database() -> AsyncIterator[str]:
    """A database of this test's own on the stack's PostgreSQL, migrated, dropped afterwards."""
    base = require_engine("postgres")
    name = f"dashboards_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(base, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    migrate = await migrate_cli(url)
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    yield url
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await admin.dispose()


@pytest.mark.engines
@pytest.mark.slow
@pytest.mark.timeout(480)
async def test_every_dashboard_panel_has_data_after_a_scenario(database: str, tmp_path: Path) -> None:
    for engine in ("kafka", "temporal", "redis"):
        require_engine(engine)
    prometheus = require_engine("prometheus")
    targets_dir = _targets_dir(prometheus)
    run = Run(tmp_path, database)
    targets_file = targets_dir / f"test-{run.id}.json"
    run.start()
    try:
        targets_file.write_text(json.dumps(run.targets()))
        started, phases = time.monotonic(), {}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{run.api_port}", timeout=30) as api:
            await _wait_until_up(run)
            phases["processes up"] = time.monotonic() - started
            asked = await _scenario(run, api)
            phases["scenario done"] = time.monotonic() - started
            async with httpx.AsyncClient(base_url=prometheus, timeout=10) as prom:
                missing = await _panels_without_data(prom, run)
                await _alerts_evaluate_and_dead_letters_fire(prom)
            phases["every panel has data"] = time.monotonic() - started
            answer = await asked
            phases["the assistant answered"] = time.monotonic() - started
            assert answer.json().get("code") or answer.status_code == 200, answer.text  # an error, but a clear one
        print("seconds since the processes started:", {k: round(v, 1) for k, v in phases.items()})
        logs = {name: (run.tmp / f"{name}.log").read_text(errors="replace")[-1200:] for name in run.procs}
        assert not missing, "panels without data:\n" + "\n".join(missing) + f"\nthe processes' logs' tails: {logs}"
    finally:
        targets_file.unlink(missing_ok=True)
        run.stop()


def _targets_dir(prometheus: str) -> Path:
    """The directory the running Prometheus discovers targets in, read from its own configuration (file_sd)."""
    config = httpx.get(f"{prometheus}/api/v1/status/config", timeout=10).json()["data"]["yaml"]
    # As Prometheus prints it: "- files:\n    - <glob>" (and not the "rule_files:" above it).
    found = re.search(r"(?<!\w)files:\s*-\s*['\"]?([^'\"\n]+)", config)
    assert found, f"this Prometheus discovers no file targets:\n{config}"
    directory = Path(found.group(1).strip()).parent
    assert directory.is_dir(), f"{directory} (from Prometheus's file_sd) is not a directory here"
    return directory


async def _wait_until_up(run: Run) -> None:
    ports = {"api": run.api_port, **run.ports}
    down: dict[str, str] = {}

    async def ready() -> bool:
        run.check_alive()
        down.clear()
        async with httpx.AsyncClient(timeout=2) as client:
            for kind, port in ports.items():
                try:
                    r = await client.get(f"http://127.0.0.1:{port}/metrics")
                    if r.status_code != 200:
                        down[kind] = f"answered {r.status_code}"
                    elif f'smartcourse_build_info{{kind="{kind}"' not in r.text:  # and not another process there
                        down[kind] = "its port answers with another process's metrics"
                except httpx.HTTPError as exc:
                    down[kind] = f"{type(exc).__name__}"
        return not down

    try:
        await wait_for(ready, timeout=90, what="every process to serve /metrics")
    except AssertionError as exc:
        logs = {kind: (run.tmp / f"{kind}.log").read_text(errors="replace")[-1500:] for kind in down}
        raise AssertionError(f"{exc}: {down}\n{logs}") from None


async def _user(api: httpx.AsyncClient, role: str) -> dict[str, str]:
    email, password = f"{role}-{uuid.uuid4().hex[:8]}@example.com", "a-long-password-1"
    body = {"email": email, "password": password, "full_name": f"A {role}", "role": role}
    r = await api.post("/auth/register", json=body)
    assert r.status_code == 201, r.text
    r = await api.post("/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def _course(api: httpx.AsyncClient, owner: dict[str, str], **fields: Any) -> str:
    body = {"title": "Observability", "description": "Metrics and traces", "category": "engineering", **fields}
    r = await api.post("/courses", json=body, headers=owner)
    assert r.status_code == 201, r.text
    course = r.json()["id"]
    r = await api.post(f"/courses/{course}/modules", json={"title": "Basics"}, headers=owner)
    assert r.status_code == 201, r.text
    lesson = {"title": "Why metrics", "type": "text", "content": "# Why\nAn operator sees every flow."}
    r = await api.post(f"/courses/{course}/modules/{r.json()['id']}/lessons", json=lesson, headers=owner)
    assert r.status_code == 201, r.text
    return str(course)


async def _publish(api: httpx.AsyncClient, owner: dict[str, str], course: str) -> str:
    r = await api.post(f"/courses/{course}/publish", headers=owner)
    assert r.status_code == 202, r.text
    workflow_id = r.json()["workflow_id"]
    result: dict[str, str] = {}

    async def finished() -> bool:
        r = await api.get(f"/workflows/{workflow_id}", headers=owner)
        result["status"] = r.json().get("status", "")
        return result["status"] not in ("running", "not_started", "")

    await wait_for(finished, timeout=90, what=f"workflow {workflow_id}")
    return result["status"]


async def _scenario(run: Run, api: httpx.AsyncClient) -> asyncio.Task[httpx.Response]:
    instructor = await _user(api, "instructor")
    good = await _course(api, instructor, capacity=1, waitlist_enabled=True)
    broken = await _course(api, instructor)
    (run.holds / f"publish.extract.{broken}.fail").touch()  # this course's publish fails at its extract step
    (run.holds / "consume.recommendations.fail").touch()  # a poisoned consumer: its records are dead-lettered
    statuses = await asyncio.gather(_publish(api, instructor, good), _publish(api, instructor, broken))
    assert statuses == ["completed", "failed"], statuses

    first, second = await _user(api, "student"), await _user(api, "student")
    r = await api.post("/enrollments", json={"course_id": good}, headers=first)
    assert r.status_code == 201, r.text  # admitted
    r = await api.post("/enrollments", json={"course_id": good}, headers=second)
    assert r.status_code == 202, r.text  # waitlisted
    r = await api.post("/enrollments", json={"course_id": good}, headers=first)
    assert r.status_code == 200, r.text  # a repeat
    r = await api.post("/enrollments", json={"course_id": broken}, headers=second)
    assert r.status_code == 404, r.text  # refused: never published, so not revealed (course_not_found)
    # The model is unreachable: the client's own retries make this slow, so it runs beside the panel checks.
    question = {"course_id": good, "question": "Why do operators need metrics?"}
    return asyncio.create_task(api.post("/ai/ask", json=question, headers=first, timeout=180))


async def _panels_without_data(prom: httpx.AsyncClient, run: Run) -> list[str]:
    queries = panel_queries()
    assert len(queries) >= 30
    pending = {(board, title, expr): scoped(expr, run.id) for board, title, expr in queries}

    async def all_have_data() -> bool:
        run.check_alive()
        for key, expr in list(pending.items()):
            r = await prom.get("/api/v1/query", params={"query": expr})
            body = r.json()
            assert body.get("status") == "success", (key, expr, body)
            if body["data"]["result"]:
                del pending[key]
        return not pending

    try:
        await wait_for(all_have_data, timeout=90, what="every panel to have data")
    except AssertionError:
        pass
    return [f"{board} / {title}: {expr}" for (board, title, _), expr in sorted(pending.items())]


async def _alerts_evaluate_and_dead_letters_fire(prom: httpx.AsyncClient) -> None:
    """Every rule of ops/prometheus/alerts.yml evaluates without error; this run's dead letters fire their alert."""
    firing: set[str] = set()

    async def dead_letters_alert() -> bool:
        groups = (await prom.get("/api/v1/rules")).json()["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        assert len(rules) >= 14, [r["name"] for r in rules]
        broken = [(r["name"], r.get("lastError")) for r in rules if r.get("health") == "err"]
        assert not broken, broken
        firing.update(r["name"] for r in rules if r.get("state") == "firing")
        return "SmartCourseDeadLetters" in firing

    await wait_for(dead_letters_alert, timeout=30, what="SmartCourseDeadLetters to fire")
