"""/health reports background liveness (services/heartbeats.py), the SMTP server where e-mail is configured, and the
outbox's unrelayed backlog, keeping its contract: 200 `ok` / 503 `degraded`, only the status in production."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select

from tests.conftest import Api, CeleryWorker, celery_worker_env


@pytest.fixture
def checked(container: Any) -> Iterator[Any]:
    """Settings under test, restored afterwards; the heartbeat rows this module writes, removed."""
    original = container.settings

    def use(**update: Any) -> None:
        container.settings = original.model_copy(update=update)

    yield use
    container.settings = original


async def _clear(container: Any, *processes: str) -> None:
    from smartcourse.models import ProcessHeartbeat

    async with container.sessionmaker() as session, session.begin():
        await session.execute(delete(ProcessHeartbeat).where(ProcessHeartbeat.process.in_(processes)))


async def test_a_worker_without_a_fresh_heartbeat_makes_health_degraded(api: Api, container: Any, checked: Any) -> None:
    from smartcourse.services import heartbeats

    await _clear(container, "worker")
    checked(background_processes="worker", heartbeat_stale_seconds=2.0)
    try:
        r = await api.client.get("/health")
        assert r.status_code == 503 and r.json()["status"] == "degraded"
        assert r.json()["processes"]["worker"]["status"] == "missing"

        # The worker's heartbeat, as worker.run_worker runs it beside the relay, dispatcher and sweeper.
        stop = asyncio.Event()
        beating = asyncio.create_task(heartbeats.run_heartbeat(container.sessionmaker, "worker", stop=stop, every=0.5))
        await asyncio.sleep(0.3)
        r = await api.client.get("/health")
        assert r.status_code == 200, r.text
        worker = r.json()["processes"]["worker"]
        assert worker["status"] == "up" and worker["instances"] == 1 and worker["age_seconds"] < 2

        # The worker stops (killed, SIGSTOPped, hung): its beat ages past the limit.
        stop.set()
        await beating
        await asyncio.sleep(2.5)
        r = await api.client.get("/health")
        assert r.status_code == 503 and r.json()["status"] == "degraded"
        worker = r.json()["processes"]["worker"]
        assert worker["status"] == "stale" and worker["age_seconds"] >= 2 and worker["instances"] == 0
        assert "no heartbeat for" in worker["error"]

        # Production: only the status, as before.
        checked(
            background_processes="worker",
            heartbeat_stale_seconds=2.0,
            environment="production",
            metrics_token="m" * 8 + "-token",
        )
        r = await api.client.get("/health")
        assert r.status_code == 503 and r.json() == {"status": "degraded"}
    finally:
        await _clear(container, "worker")


async def test_a_killed_and_restarted_process_counts_once(api: Api, container: Any, checked: Any) -> None:
    """explore30 F8: a worker killed and restarted by `smartcourse run` showed `instances: 2` for a minute (the dead
    one's last beat was still fresh). The new instance's beat removes the rows of this host's gone processes."""
    from sqlalchemy.dialects.postgresql import insert
    from sqlalchemy.sql import func

    from smartcourse.models import ProcessHeartbeat
    from smartcourse.services import heartbeats

    dead = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await dead.wait()
    await _clear(container, "worker")
    checked(background_processes="worker", heartbeat_stale_seconds=60.0)
    try:
        async with container.sessionmaker() as session, session.begin():
            for instance in (f"{socket.gethostname()}:{dead.pid}", "elsewhere:1"):  # killed here; another host's
                await session.execute(
                    insert(ProcessHeartbeat).values(process="worker", instance=instance, beat_at=func.now())
                )
        r = await api.client.get("/health")
        assert r.json()["processes"]["worker"]["instances"] == 2, r.text
        started = await heartbeats.beat(container.sessionmaker, "worker", heartbeats.instance_name())  # restarted
        r = await api.client.get("/health")
        assert r.json()["processes"]["worker"]["instances"] == 2, r.text  # itself and the other host's

        async def left() -> set[str]:
            async with container.sessionmaker() as session:
                return set(
                    await session.scalars(select(ProcessHeartbeat.instance).where(ProcessHeartbeat.process == "worker"))
                )

        assert await left() == {heartbeats.instance_name(), "elsewhere:1"}
        # A pid this host does not run, beating since: another PID namespace under the same host name (containers on
        # the host's network), alive; it stays.
        twin = f"{socket.gethostname()}:{dead.pid}"
        async with container.sessionmaker() as session, session.begin():
            await session.execute(insert(ProcessHeartbeat).values(process="worker", instance=twin, beat_at=func.now()))
        await heartbeats.beat(container.sessionmaker, "worker", heartbeats.instance_name(), started_at=started)
        assert twin in await left()
    finally:
        await _clear(container, "worker")


async def test_a_child_of_run_that_is_not_running_is_down_at_once(api: Api, container: Any, checked: Any) -> None:
    """explore70 F4: under `smartcourse run`, a killed worker read `up` for up to a minute (its last beat was fresh).
    A child its record names that is not running is `down` at once; once it runs again (restarted), `up`."""
    from smartcourse.services import heartbeats
    from smartcourse.supervise import CHILDREN_FILE

    data_dir = container.settings.data_dir
    record = data_dir / CHILDREN_FILE
    assert not record.exists()
    dead = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await dead.wait()
    alive = await asyncio.create_subprocess_exec(  # a child of this data directory's run, as `run` starts them
        "sleep", "60", env={**os.environ, "SMARTCOURSE_DATA_DIR": str(data_dir.resolve())}
    )
    await _clear(container, "worker")
    checked(background_processes="worker", heartbeat_stale_seconds=60.0)
    try:
        await heartbeats.beat(container.sessionmaker, "worker", heartbeats.instance_name())  # a fresh beat
        record.write_text(json.dumps({"worker": dead.pid}))
        r = await api.client.get("/health")
        assert r.status_code == 503 and r.json()["status"] == "degraded", r.text
        worker = r.json()["processes"]["worker"]
        assert worker["status"] == "down" and f"pid {dead.pid}" in worker["error"], worker
        record.write_text(json.dumps({"worker": alive.pid}))  # restarted
        r = await api.client.get("/health")
        assert r.json()["processes"]["worker"]["status"] == "up", r.text
    finally:
        record.unlink(missing_ok=True)
        alive.kill()
        await alive.wait()
        await _clear(container, "worker")


async def test_an_unreachable_smtp_server_makes_health_degraded(
    api: Api, container: Any, settings: Any, checked: Any
) -> None:
    from smartcourse.bootstrap import resolve_settings

    sink = resolve_settings(settings, need=("smtp",))
    checked(smtp_host=sink.smtp_host, smtp_port=sink.smtp_port)
    r = await api.client.get("/health")
    assert r.status_code == 200, r.text
    assert r.json()["engines"]["smtp"]["status"] == "up"

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = int(s.getsockname()[1])
    checked(smtp_host="127.0.0.1", smtp_port=closed)
    r = await api.client.get("/health")
    assert r.status_code == 503 and r.json()["status"] == "degraded"
    smtp = r.json()["engines"]["smtp"]
    assert smtp["status"] == "down" and ("Connect" in smtp["error"] or "refused" in smtp["error"]), smtp
    # A load balancer's check stays green: requests do not wait on the SMTP server (explore8 F10).
    r = await api.client.get("/health/ready")
    assert r.status_code == 200 and r.json()["status"] == "ok" and set(r.json()["engines"]) >= {"database"}, r.text


async def test_a_content_index_that_is_no_directory_is_down_in_health(
    api: Api, container: Any, checked: Any, tmp_path: Path
) -> None:
    """explore40 F3: with the index's directory replaced by a file every search answered 503 `index_unavailable`
    while /health said nothing of the index."""
    r = await api.client.get("/health")
    index = r.json()["engines"]["index"]
    if index["kind"] == "local":  # probed: a directory made and removed in it; S3 (the stack's) is listed unprobed
        assert index["status"] == "up" and "latency_ms" in index, index
    else:
        assert index == {"status": "up", "probed": False, "kind": "s3"}, index
    replaced = tmp_path / "index"
    replaced.write_text("x")  # a failed mount, or the path replaced
    checked(index_uri=str(replaced))
    r = await api.client.get("/health")
    index = r.json()["engines"]["index"]
    assert r.status_code == 503 and index["status"] == "down" and index["kind"] == "local", index
    assert "NotADirectoryError" in index["error"] and str(replaced) in index["error"], index
    checked(index_uri=str(tmp_path / "new" / "index"))  # missing: made, as a first publish would
    r = await api.client.get("/health")
    assert r.json()["engines"]["index"]["status"] == "up", r.text
    assert (tmp_path / "new" / "index").is_dir() and not list((tmp_path / "new" / "index").iterdir())


async def test_an_unwritable_file_store_is_down_in_health_and_in_the_engine_gauge(
    api: Api, container: Any, settings: Any, checked: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """explore18 F5: uploads answered "a backend is unreachable" while /health said `files: up` (never probed), and
    F4: no metric showed any engine down, so no alert could fire."""
    from smartcourse.bootstrap import resolve_settings
    from smartcourse.services import health

    sink = resolve_settings(settings, need=("smtp",))
    checked(smtp_host=sink.smtp_host, smtp_port=sink.smtp_port)
    real = container.files

    class ReadOnly:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        async def put(self, key: str, data: bytes, content_type: str) -> None:
            raise PermissionError(1, "Operation not permitted", key)

        async def probe(self) -> None:
            raise PermissionError(1, "Operation not permitted", "health/probe")

    teacher = await api.user("instructor")
    course = await api.course(teacher)
    r = await api.client.get("/health")
    files = r.json()["engines"]["files"]
    if files["kind"] == "local":  # probed with a write; S3 (the stack's) is listed unprobed
        assert files["status"] == "up" and "latency_ms" in files, files
    else:
        assert files == {"status": "up", "probed": False, "kind": "s3"}, files
    container.files = ReadOnly()
    try:
        # An upload says the storage refused it, not "a backend is unreachable; retry shortly".
        r = await api.client.post(
            f"/courses/{course['id']}/materials",
            files={"file": ("notes.md", b"# Notes\nTides.", "text/markdown")},
            headers=teacher["headers"],
        )
        assert r.status_code == 503 and r.json()["code"] == "storage_unavailable", r.text
        logged = [rec.getMessage() for rec in caplog.records if "storage refused" in rec.getMessage()]
        assert logged and "courses/" in logged[-1] and "notes.md" in logged[-1], logged  # the path (explore21 F2)
        # Any fault on a path the store names is the storage's (explore32 F3: a directory replaced by a file read
        # as a passing network blip, "retry shortly", logged without the path).
        broken = ReadOnly()
        container.files = broken

        async def not_a_directory(key: str, data: bytes, content_type: str) -> None:
            raise NotADirectoryError(20, "Not a directory", key)

        broken.put = not_a_directory  # type: ignore[method-assign]
        r = await api.client.post(
            f"/courses/{course['id']}/materials",
            files={"file": ("more.md", b"# More\nWaves.", "text/markdown")},
            headers=teacher["headers"],
        )
        assert r.status_code == 503 and r.json()["code"] == "storage_unavailable", r.text
        assert r.headers["retry-after"] == "60"
        logged = [rec.getMessage() for rec in caplog.records if "storage refused" in rec.getMessage()]
        assert "more.md" in logged[-1] and "NotADirectoryError" in logged[-1], logged
        r = await api.client.get("/health")
        files = r.json()["engines"]["files"]
        assert r.status_code == 503 and files["status"] == "down" and "PermissionError" in files["error"], files
        health._engines_read_at = float("-inf")  # the gauges are read at most every 10 s: now
        scraped = (await api.client.get("/metrics")).text
        assert 'smartcourse_engine_up{engine="files"} 0.0' in scraped
        assert 'smartcourse_engine_up{engine="database"} 1.0' in scraped
    finally:
        container.files = real
        health._engines_read_at = float("-inf")


async def test_readiness_fails_when_the_database_does_not_answer() -> None:
    from types import SimpleNamespace

    from smartcourse.services import health

    class Gone:
        def connect(self) -> Any:
            raise ConnectionRefusedError(111, "Connect call failed")

    c = SimpleNamespace(engine=Gone(), settings=SimpleNamespace(redis_url=None))
    report = await health.ready(c)
    assert report["status"] == "unavailable" and report["engines"]["database"]["status"] == "down", report


async def test_the_unrelayed_outbox_and_its_oldest_age_are_read_from_the_table(api: Api, container: Any) -> None:
    from smartcourse.models import OutboxEvent, utcnow
    from smartcourse.services import outbox

    async with container.sessionmaker() as session, session.begin():
        # Not committed: no relay sees it, the figures do (as they see an event a stopped relay left).
        session.add(
            OutboxEvent(
                topic="t",
                event_type="test.stuck",
                aggregate_id="x",
                payload={},
                occurred_at=utcnow() - timedelta(seconds=300),
            )
        )
        await session.flush()
        figures = await outbox.backlog_figures(session)
        assert figures["unpublished"] >= 1 and figures["oldest_age_seconds"] >= 300
        await session.rollback()
    r = await api.client.get("/health")
    assert {"unpublished", "oldest_age_seconds"} <= set(r.json()["outbox"])
    admin = await api.admin(container)
    issues = (await api.client.get("/analytics/dashboard", headers=admin["headers"])).json()["workflow_issues"]
    assert {"outbox_unpublished", "outbox_oldest_age_seconds"} <= set(issues)


async def test_a_celery_worker_beats_while_it_runs(api: Api, container: Any, settings: Any, checked: Any) -> None:
    from smartcourse.bootstrap import resolve_settings
    from smartcourse.models import ProcessHeartbeat

    resolved = resolve_settings(settings, need=("redis",))
    env = celery_worker_env(resolved, REDIS_URL=resolved.redis_url or "", CELERY_QUEUE=f"beat-{uuid.uuid4().hex[:8]}")
    env.pop("CELERY_BROKER_URL", None)
    worker = CeleryWorker(env, Path(settings.data_dir) / "celery-heartbeat.log", "heartbeat")
    worker.start()
    instance = f"{socket.gethostname()}:{worker.proc.pid}"

    async def row() -> Any:
        async with container.sessionmaker() as session:
            return await session.scalar(
                select(ProcessHeartbeat).where(
                    ProcessHeartbeat.process == "celery", ProcessHeartbeat.instance == instance
                )
            )

    try:
        deadline = time.monotonic() + 30
        while (beat := await row()) is None:
            assert time.monotonic() < deadline, worker.log_since(0)[-3000:]
            await asyncio.sleep(0.2)
        checked(background_processes="celery")
        r = await api.client.get("/health")
        assert r.json()["processes"]["celery"]["status"] == "up", r.text
    finally:
        worker.stop()
        async with container.sessionmaker() as session, session.begin():
            await session.execute(delete(ProcessHeartbeat).where(ProcessHeartbeat.instance == instance))
    assert beat.beat_at is not None and os.getpid() != worker.proc.pid


def _start_relay(settings: Any) -> tuple[subprocess.Popen[bytes], Path]:
    """`smartcourse relay` on the suite's database, without Kafka, its metrics server off."""
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url or "",
        "SMARTCOURSE_DATA_DIR": str(Path(settings.data_dir).resolve()),
        "SMARTCOURSE_METRICS_PORT": "off",
        "SMARTCOURSE_BACKGROUND_NICE": "0",
    }
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    log = Path(settings.data_dir) / "relay-heartbeat.log"
    with open(log, "ab") as out:
        argv = [sys.executable, "-m", "smartcourse.cli", "relay"]
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT), log


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:]


async def _wait_for_beat(
    container: Any, process: str, proc: subprocess.Popen[bytes], log: Path, *, logged: str = ""
) -> None:
    """Until the child `proc` has beaten as `process` (and its log holds `logged`), within 60 s and while it runs."""
    from smartcourse.models import ProcessHeartbeat

    instance = f"{socket.gethostname()}:{proc.pid}"
    deadline = time.monotonic() + 60
    while True:
        async with container.sessionmaker() as session:
            beat = await session.get(ProcessHeartbeat, (process, instance))
        if beat is not None and logged in await asyncio.to_thread(_tail, log):
            return
        assert time.monotonic() < deadline and proc.poll() is None, await asyncio.to_thread(_tail, log)
        await asyncio.sleep(0.3)


async def test_the_relay_process_beats_while_it_runs(container: Any, settings: Any) -> None:
    """`smartcourse relay` (here without Kafka: to the in-process consumers; it claims rows with SKIP LOCKED, so it
    may run beside the suite's worker) renews its row while it runs."""
    from smartcourse.models import ProcessHeartbeat

    proc, log = await asyncio.to_thread(_start_relay, settings)
    instance = f"{socket.gethostname()}:{proc.pid}"
    try:
        await _wait_for_beat(container, "relay", proc, log)
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 30)
        async with container.sessionmaker() as session, session.begin():
            await session.execute(delete(ProcessHeartbeat).where(ProcessHeartbeat.instance == instance))


def _start_worker_without_temporal(settings: Any) -> tuple[subprocess.Popen[bytes], Path]:
    """`smartcourse worker` on the suite's database, its Temporal address a port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = int(s.getsockname()[1])
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url or "",
        "REDIS_URL": settings.redis_url or "",
        "TEMPORAL_ADDRESS": f"127.0.0.1:{closed}",
        "SMARTCOURSE_DATA_DIR": str(Path(settings.data_dir).resolve()),
        "SMARTCOURSE_METRICS_PORT": "off",
        "SMARTCOURSE_BACKGROUND_NICE": "0",
    }
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    log = Path(settings.data_dir) / f"worker-wait-{uuid.uuid4().hex[:6]}.log"
    with open(log, "ab") as out:
        argv = [sys.executable, "-m", "smartcourse.cli", "worker"]
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT), log


async def test_a_worker_started_without_temporal_waits_for_it_and_beats_meanwhile(
    container: Any, settings: Any
) -> None:
    """explore18 F2: a worker started while Temporal was down exited, five times in ~52 s, and `run` then stopped the
    whole product; explore21 F6: waiting, it also held back its relay and heartbeat, which need no Temporal."""
    from smartcourse.models import ProcessHeartbeat

    proc, log = await asyncio.to_thread(_start_worker_without_temporal, settings)
    instance = f"{socket.gethostname()}:{proc.pid}"
    try:
        await _wait_for_beat(container, "worker", proc, log, logged="the worker waits for it")
        await asyncio.sleep(3)
        assert proc.poll() is None, await asyncio.to_thread(_tail, log)  # still waiting, not exited
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 30)
        async with container.sessionmaker() as session, session.begin():
            await session.execute(delete(ProcessHeartbeat).where(ProcessHeartbeat.instance == instance))
    assert code == 0, await asyncio.to_thread(_tail, log)
