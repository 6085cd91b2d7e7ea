"""`smartcourse run` (what `make run` starts) on a fresh data directory: engines, migrations, every process, and
pools sized to the embedded PostgreSQL's max_connections."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from smartcourse.engines import free_port
from tests.conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def _start_run(tmp_path: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
    """`smartcourse run` on a fresh data directory under `tmp_path`, answering /health: (its process, port, log)."""
    port = free_port()
    engines = {"DATABASE", "REDIS", "TEMPORAL", "KAFKA", "SCHEMA", "CELERY", "MONGODB", "S3", "SMTP"}
    env = {
        k: v
        for k, v in os.environ.items()
        if k.split("_")[0] not in engines
        and k not in {"JWT_SECRET", "DB_POOL_SIZE", "DB_MAX_OVERFLOW", "PROMETHEUS_MULTIPROC_DIR"}
    }
    env.update(
        {
            "SMARTCOURSE_DATA_DIR": str(tmp_path / "data"),
            "SMARTCOURSE_ENV": "development",
            "SMARTCOURSE_API_WORKERS": "2",
            "PYTHONUNBUFFERED": "1",
            # Metrics ports of their own: another run (or the suite's processes) may hold the defaults.
            **{f"SMARTCOURSE_METRICS_PORT_{k}": "0" for k in ("WORKER", "RELAY", "CONSUMERS", "CELERY")},
        }
    )
    out = tmp_path / "run.log"
    with open(out, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "smartcourse.cli", "run", "--port", str(port)],
            env=env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 180
        while not _healthy(port):
            assert proc.poll() is None, out.read_text()[-3000:]
            assert time.monotonic() < deadline, out.read_text()[-3000:]
            time.sleep(0.5)
    except BaseException:
        _stop_run(proc)
        raise
    return proc, port, out


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _stop_run(proc: subprocess.Popen[bytes]) -> int:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        return proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise


def test_run_starts_the_product_with_pools_that_fit_the_server_and_restarts_a_dead_child_or_engine(
    tmp_path: Path,
) -> None:
    proc, port, out = _start_run(tmp_path)
    try:
        text = out.read_text()
        # Two API processes and the worker, each a main pool and its document store's, plus Celery's children:
        # at most what the embedded server (max_connections 100, 3 for superusers) leaves after the spare ten.
        found = re.search(r"database connections: at most (\d+) of the server's (\d+) \(3 processes", text)
        assert found, text[-3000:]
        most, limit = int(found.group(1)), int(found.group(2))
        assert limit == 97 and most <= limit - 10, found.group(0)
        # The data directory stays private while it runs: as root, pgserver opens it (and every directory above
        # it) to all for its `pgserver` user; only passing through is left of that.
        mode = (tmp_path / "data").stat().st_mode & 0o777
        assert mode == (0o711 if os.geteuid() == 0 else 0o700), oct(mode)
        # The banner says how to reach the database, and `smartcourse psql` (with the same data dir) gets there.
        banner = re.search(r"  psql       (\S+) '([^']+)'", text)
        assert banner, text[-3000:]
        query = ["-At", "-c", "select count(*) > 0 from alembic_version"]
        assert _out([banner.group(1), banner.group(2), *query]) == "t"
        data_env = {**os.environ, "SMARTCOURSE_DATA_DIR": str(tmp_path / "data")}
        data_env.pop("DATABASE_URL", None)
        assert _out([sys.executable, "-m", "smartcourse.cli", "psql", *query], env=data_env) == "t"
        # psql's -d names another database of that server, the socket kept (it lost the host: explore25 F5).
        other = ["-d", "template1", "-At", "-c", "select current_database()"]
        assert _out([sys.executable, "-m", "smartcourse.cli", "psql", *other], env=data_env) == "template1"
        # With DATABASE_URL (the product's asyncpg form), there.
        url_env = {**data_env, "SMARTCOURSE_DATA_DIR": str(tmp_path / "elsewhere")}
        url_env["DATABASE_URL"] = banner.group(2).replace("postgresql://", "postgresql+asyncpg://", 1)
        assert _out([sys.executable, "-m", "smartcourse.cli", "psql", "--", *query], env=url_env) == "t"

        # A background child that dies is restarted, and the API answers all along (one product start serves both
        # checks: each start costs the suite ~15 s).
        def child(name: str) -> psutil.Process:
            (found,) = [p for p in psutil.Process(proc.pid).children() if p.cmdline()[-1:] == [name]]
            return found

        worker = child("worker")
        os.kill(worker.pid, signal.SIGKILL)  # as the OOM killer would
        deadline = time.monotonic() + 60
        while "worker restarted" not in out.read_text():
            assert proc.poll() is None, out.read_text()[-3000:]  # `run` did not stop everything
            assert _healthy(port), out.read_text()[-3000:]  # and the API answered all along
            assert time.monotonic() < deadline, out.read_text()[-3000:]
            time.sleep(0.2)
        assert "worker exited with -9 (SIGKILL); restarting it in 1 s" in out.read_text()
        restarted = child("worker")
        assert restarted.pid != worker.pid and restarted.is_running()
        assert _healthy(port)
        # An embedded engine that dies is started again at its address, and said (explore18 F12).
        smtp = int((tmp_path / "data" / "smtp" / "smtp.pid").read_text())
        os.killpg(smtp, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while f"the embedded smtp (pid {smtp}) exited; started again at" not in out.read_text():
            assert time.monotonic() < deadline, out.read_text()[-3000:]
            time.sleep(0.2)
        assert int((tmp_path / "data" / "smtp" / "smtp.pid").read_text()) != smtp
    finally:
        code = _stop_run(proc)
    assert code == 0, out.read_text()[-3000:]
    # Nothing it started is left: each child is stopped with its own children (a Celery beat started while the
    # worker was shutting down once outlived it, retrying the gone Redis for good).
    assert not _left_behind(str(tmp_path / "data")), out.read_text()[-3000:]
    # PostgreSQL was stopped, not killed: its pg_ctl (as the `pgserver` user, under root) could reach the data.
    assert "Permission denied" not in out.read_text(), out.read_text()[-3000:]


def _out(argv: list[str], env: dict[str, str] | None = None) -> str:
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=True).stdout.strip()


def test_psql_without_a_running_server_says_so_and_starts_none(tmp_path: Path) -> None:
    env = {**os.environ, "SMARTCOURSE_DATA_DIR": str(tmp_path / "data")}
    env.pop("DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "smartcourse.cli", "psql", "-c", "select 1"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 1 and "no embedded PostgreSQL is running under" in done.stderr, done.stderr
    assert not (tmp_path / "data" / "postgres").exists()


def _left_behind(data_dir: str) -> list[str]:
    left = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            if p.environ().get("SMARTCOURSE_DATA_DIR") == data_dir or data_dir in " ".join(p.info["cmdline"] or []):
                left.append(f"{p.info['pid']}: {' '.join(p.info['cmdline'] or [])}")
        except psutil.Error:
            continue
    return left


def test_the_server_limit_is_read_from_the_server(settings: Any) -> None:
    from smartcourse.cli import server_connection_limit

    # The suite's server: embedded (100 less 3 for superusers) or the stack's (200 less 3).
    assert server_connection_limit(settings.database_url) in (97, 197)
    # Nobody listens there: the pools stay as configured, and nothing raises.
    assert server_connection_limit(f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/none") is None


async def test_every_process_builds_its_pools_from_the_settings(settings: Any) -> None:
    from smartcourse.bootstrap import build_container

    c = build_container(settings.model_copy(update={"db_pool_size": 3, "db_max_overflow": 1}))
    try:
        pool: Any = c.engine.pool
        assert (pool.size(), pool._max_overflow) == (3, 1)
        async with c.engine.connect() as conn:  # and it connects
            assert (await conn.exec_driver_sql("select 1")).scalar_one() == 1
    finally:
        await c.aclose()


def test_lambda_functions_use_one_connection_at_a_time() -> None:
    text = (REPO / "template.yaml").read_text()
    assert "DB_POOL_SIZE: '1'" in text and "DB_MAX_OVERFLOW: '1'" in text
