"""Enrollment throughput and latency of SmartCourse beside a bare FastAPI + asyncpg INSERT (measures, asserts nothing).

    .venv/bin/python bench/enrollment.py [--engines embedded|stack|both] [--requests N] [--concurrency 16,64]
                                         [--sample 100] [--sample-mode separate|inline] [--json FILE]
                                         [--keep-data] [--run-timeout S] [--settle-timeout S]
                                         [--steady-rate 50] [--steady-seconds 120]

Issue #7's P1 is the closed-loop run at each concurrency beside the bare INSERT (the `P1 c=...` lines: throughput
ratio and p95); P2 is the open-loop run at --steady-rate for --steady-seconds (request -> active p95). The API runs
as `smartcourse run` runs it: `serve --workers N`, one process per usable core unless SMARTCOURSE_API_WORKERS says.

docs/benchmarks.md tells what the figures mean and what they were on the reference machine.

For each engines setting it brings the product up the way `smartcourse run` does, in a fresh temporary data dir:

* engines: the embedded ones (`EmbeddedEngines`), or the native stack of `scripts/stack` (skipped, with the reason,
  unless `scripts/stack status` says every engine is healthy; the run gets its own database, Mongo database,
  Kafka namespace, Celery queue and Temporal task queue there, removed at the end);
* migrations (`smartcourse.migrations.upgrade_head`);
* `python -m smartcourse.cli serve`, `python -m smartcourse.cli worker`, the Celery worker of `smartcourse run`
  (plus `relay` and `consumers` when the engines include Kafka), all with one environment;
* `bench/baseline_app.py` under uvicorn, on the same PostgreSQL.

Then, over loopback only:

1. an instructor registers and logs in, creates a course (no capacity limit), a module, a lesson, publishes it and
   waits for the publishing workflow; N students per concurrency level are inserted directly in the database
   (with their `user.registered` outbox events, as registration writes them) and the outbox is left to drain;
2. for each concurrency level C: N `POST /enrollments` (one distinct student each) from C concurrent closed-loop
   clients, each an httpx.AsyncClient with its own keep-alive connection; every request's latency is recorded.
   The database is then watched until the whole batch is active, welcomed and e-mailed and the outbox is empty;
   `activated_at` of every enrollment gives request -> active, without polling the API. Then --sample more
   students enroll, C at a time, each watching `GET /enrollments/{id}` every 50 ms until `workflow_status` is
   `completed` (request -> workflow completed, as a student sees it); with --sample-mode inline the watched
   enrollments are instead every N/sample-th of the batch itself, watched while the batch runs;
3. the same N requests at the same C against the baseline's `POST /enroll`.

CPU seconds of every process involved (API, worker, Celery, PostgreSQL, Temporal, ..., and this load generator) are
read from /proc before and after each run, so the report shows where the time goes.

Every phase has a time limit (see --run-timeout, --settle-timeout); everything started is stopped at the end, also on
Ctrl+C or SIGTERM. Figures go to stdout, progress to stderr, `--json FILE` saves them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import _tree  # noqa: F401  (before any smartcourse import: this tree's code, here and in every child)
import asyncpg
import httpx

REPO = Path(__file__).resolve().parents[1]
BENCH_DIR = Path(__file__).resolve().parent
LOCALHOST = "127.0.0.1"
POLL_INTERVAL = 0.05  # seconds between two GET /enrollments/{id} of a sampled enrollment
#: Engine variables a child must not inherit from the caller's shell when the run sets its own engines.
ENGINE_VARS = (
    "DATABASE_URL",
    "REDIS_URL",
    "TEMPORAL_ADDRESS",
    "SMTP_HOST",
    "SMTP_PORT",
    "MONGODB_URL",
    "MONGODB_DATABASE",
    "KAFKA_BOOTSTRAP_SERVERS",
    "SCHEMA_REGISTRY_URL",
    "EVENTS_NAMESPACE",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "S3_ENDPOINT_URL",
    "S3_BUCKET",
    "SMARTCOURSE_TEST_HOLD_DIR",
)


def say(message: str) -> None:
    """A progress line on stderr."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Skipped(Exception):
    """An engines setting that cannot be measured here (the reason is the message)."""


# --- figures ----------------------------------------------------------------------------------------------


def percentile(sorted_values: list[float], q: float) -> float:
    """The q-th percentile (0..100) of already sorted values, linearly interpolated."""
    if not sorted_values:
        return float("nan")
    pos = (len(sorted_values) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


@dataclass
class Summary:
    """Distribution of durations, in milliseconds."""

    n: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float

    @classmethod
    def of(cls, seconds: Iterable[float]) -> Summary:
        values = sorted(s * 1000 for s in seconds)
        if not values:
            nan = float("nan")
            return cls(0, nan, nan, nan, nan, nan)
        return cls(
            n=len(values),
            p50_ms=round(percentile(values, 50), 1),
            p95_ms=round(percentile(values, 95), 1),
            p99_ms=round(percentile(values, 99), 1),
            mean_ms=round(sum(values) / len(values), 1),
            max_ms=round(values[-1], 1),
        )


@dataclass
class LoadFigures:
    """One closed-loop run: `requests` POSTs from `concurrency` clients."""

    system: str  # "smartcourse" or "baseline"
    concurrency: int
    requests: int
    sent: int
    ok: int  # 2xx answers
    statuses: dict[str, int]  # every answer by HTTP status, or by exception name when there was no answer
    elapsed_s: float
    per_second: float  # 2xx answers per second of the run
    latency: Summary
    cpu_s: dict[str, float] = field(default_factory=dict)  # CPU seconds per process group, during the run
    pg_waits: dict[str, float] = field(default_factory=dict)  # mean busy database sessions, by what they wait on


@dataclass
class Milestones:
    """Seconds from the first request of a batch until the whole batch reached each state (None: never did)."""

    all_active_s: float | None = None
    all_welcomed_s: float | None = None  # the welcome notification row (last workflow step) exists
    all_emailed_s: float | None = None  # Celery sent the welcome e-mail
    outbox_empty_s: float | None = None
    counts_at_end: dict[str, int] = field(default_factory=dict)


@dataclass
class WorkflowFigures:
    """What happens after the 201 of a SmartCourse batch."""

    concurrency: int
    sample_mode: str  # "separate": own closed-loop run after the batch; "inline": sampled from the batch; "none"
    sample: int
    sample_completed: int
    sample_timed_out: int
    sample_wall_s: float
    sample_posts: dict[str, int]  # statuses of the separate sample run's POSTs
    request_to_completed: Summary  # POST sent -> GET /enrollments/{id} shows workflow_status completed
    polls: int
    poll_statuses: dict[str, int]
    poll_latency: Summary  # of the GET /enrollments/{id} themselves
    request_to_active: Summary  # POST sent -> activated_at in the database, every enrollment of the batch
    milestones: Milestones
    settle_cpu_s: dict[str, float] = field(default_factory=dict)  # CPU from the first request until settled
    settle_wall_s: float = 0.0


@dataclass
class SettingResult:
    """Everything measured with one engines setting."""

    engines: str
    skipped: str | None = None
    error: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    setup_s: dict[str, float] = field(default_factory=dict)
    loads: list[LoadFigures] = field(default_factory=list)
    workflows: list[WorkflowFigures] = field(default_factory=list)
    log_findings: dict[str, dict[str, int]] = field(default_factory=dict)
    exits: dict[str, int | None] = field(default_factory=dict)
    steady: list[SteadyFigures] = field(default_factory=list)


@dataclass
class SteadyFigures:
    """P2: an open-loop run at a fixed rate (requests sent on schedule, whatever the answers' latency)."""

    rate: float
    seconds: float
    sent: int
    ok: int
    statuses: dict[str, int]
    achieved_per_second: float  # 2xx answers per second of the sending phase
    post_latency: Summary
    request_to_active: Summary  # POST sent -> activated_at in the database
    active: int
    all_active_after_last_s: float | None  # from the last request until every admitted one was active
    backlog_max: int  # most admitted-not-active enrollments seen (sampled every 0.5 s), all of the database
    late_sends: int  # requests the load generator sent more than 100 ms behind schedule


# --- processes and their CPU ----------------------------------------------------------------------------------


CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_table() -> dict[int, tuple[int, float]]:
    """pid -> (ppid, CPU seconds of the process and of its reaped children) for every process in /proc."""
    table: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        # after the name: state ppid ... utime(14) stime(15) cutime(16) cstime(17), numbered from `state` = 3
        ppid = int(fields[1])
        ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
        table[int(entry.name)] = (ppid, ticks / CLK_TCK)
    return table


def tree_cpu(roots: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds used so far by each group of process trees (a root and all its live descendants)."""
    if not Path("/proc/self/stat").exists():
        return {}
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    out: dict[str, float] = {}
    for name, pids in roots.items():
        total, stack, seen = 0.0, list(pids), set()
        while stack:
            pid = stack.pop()
            if pid in seen or pid not in table:
                continue
            seen.add(pid)
            total += table[pid][1]
            stack.extend(children.get(pid, []))
        out[name] = total
    times = os.times()
    out["load generator"] = times.user + times.system
    with contextlib.suppress(OSError, ValueError):
        # the whole machine (first line of /proc/stat: user nice system idle iowait irq softirq steal ...)
        ticks = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
        out[MACHINE_BUSY] = (sum(ticks) - ticks[3] - ticks[4]) / CLK_TCK
        out[IOWAIT] = ticks[4] / CLK_TCK
    return out


#: Keys of `tree_cpu` that are not processes of ours: what the whole machine did, and the CPUs' idle wait on I/O.
MACHINE_BUSY, IOWAIT, OTHERS = "(machine busy)", "(iowait)", "other processes"


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds used between two `tree_cpu` readings; `other processes` is the machine's busy time not ours."""
    delta = {k: after[k] - before[k] for k in after if k in before}
    busy = delta.pop(MACHINE_BUSY, None)
    if busy is not None:
        ours = sum(v for k, v in delta.items() if not k.startswith("("))
        delta[OTHERS] = max(0.0, busy - ours)
    return {k: round(v, 2) for k, v in delta.items()}


def listening_pid(port: int) -> int | None:
    """The pid of the process listening on TCP `port` (from /proc/net/tcp* and the fd tables)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                cols = line.split()
                if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(cols[9])
    if not inodes:
        return None
    targets = {f"socket:[{i}]" for i in inodes}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in targets:
                        return int(entry.name)
    return None


def pid_from_file(path: Path) -> int | None:
    """The pid on the first line of a pid file (ManagedProcess, postmaster.pid)."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


class Children:
    """The subprocesses this script started: each in its own session, logging to a file, stopped in reverse order."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        log_dir.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
        with open(self.log_dir / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(
                argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def dead(self) -> dict[str, int]:
        return {name: p.returncode for name, p in self.procs.items() if p.poll() is not None}

    def ensure_alive(self) -> None:
        dead = self.dead()
        if dead:
            name, code = next(iter(dead.items()))
            raise RuntimeError(f"{name} exited with {code}; end of its log:\n{self.log(name)[-3000:]}")

    def stop(self) -> dict[str, int | None]:
        """SIGTERM every process group, wait, SIGKILL what is left; returns each exit code."""
        for proc in reversed(self.procs.values()):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the group: also a Celery pool child left behind
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        return {name: p.returncode for name, p in self.procs.items()}

    def findings(self) -> dict[str, dict[str, int]]:
        """Per log: tracebacks, and the error/warning lines by message (JSON logs and Celery's)."""
        out: dict[str, dict[str, int]] = {}
        for name in self.procs:
            counts: Counter[str] = Counter()
            for line in self.log(name).splitlines():
                if line.startswith("Traceback"):
                    counts["Traceback"] += 1
                    continue
                level, msg = _log_level(line)
                if level in {"error", "critical", "warning"}:
                    counts[f"{level}: {UUID_RE.sub('{id}', msg)[:360]}"] += 1
            if counts:
                out[name] = dict(counts.most_common(8))
        return out


UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _log_level(line: str) -> tuple[str, str]:
    """(level, message) of a log line: SmartCourse's JSON lines, or Celery's `[... ERROR/...] message`."""
    if line.startswith("{"):
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            message = f"{record.get('logger', '')}: {record.get('msg', '')}"
            if record.get("exc"):  # the exception's last line says what it was (type and message)
                message += " <- " + str(record["exc"]).strip().splitlines()[-1][:200]
            return str(record.get("level", "")), message
    for level in ("CRITICAL", "ERROR", "WARNING"):
        if f" {level}/" in line[:80] or line.startswith(f"{level}:"):
            return level.lower(), line.split("] ", 1)[-1]
    return "", line


# --- engines ------------------------------------------------------------------------------------------------


@dataclass
class Engines:
    """The engines of one setting: the children's engine variables and how to find the engines' processes."""

    name: str
    env: dict[str, str]
    cpu_roots: dict[str, list[int]]
    cleanup: list[Callable[[], None]] = field(default_factory=list)

    @property
    def database_url(self) -> str:
        return self.env["DATABASE_URL"]


def asyncpg_dsn(url: str) -> str:
    """`postgresql+asyncpg://...` -> `postgresql://...` (asyncpg's own connect takes libpq URLs)."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.split('+', 1)[0]}{sep}{rest}"


def embedded_engines(data_dir: Path) -> Engines:
    """Start PostgreSQL, Redis, Temporal and the SMTP sink under `data_dir`, as `smartcourse run` does."""
    from smartcourse.engines import EmbeddedEngines

    eng = EmbeddedEngines(data_dir)
    cleanup: list[Callable[[], None]] = [eng.stop]
    try:
        db = eng.postgres_url()
        redis = eng.redis_url()
        temporal = eng.temporal_address()
        smtp_host, smtp_port = eng.smtp_address(data_dir / "mail")
    except BaseException:
        eng.stop()
        raise
    roots = {
        "postgres": [pid_from_file(data_dir / "postgres" / "postmaster.pid")],
        "temporal": [pid_from_file(data_dir / "temporal" / "temporal.pid")],
        "redis": [pid_from_file(data_dir / "redis" / "redis.pid")],
        "smtp sink": [pid_from_file(data_dir / "smtp" / "smtp.pid")],
    }
    env = {
        "DATABASE_URL": db,
        "REDIS_URL": redis,
        "TEMPORAL_ADDRESS": temporal,
        "SMTP_HOST": smtp_host,
        "SMTP_PORT": str(smtp_port),
    }
    return Engines("embedded", env, {k: [p for p in v if p] for k, v in roots.items()}, cleanup)


def _stack(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / "scripts" / "stack"), *args], capture_output=True, text=True, timeout=timeout, cwd=REPO
    )


def _port(url: str, default: int) -> int:
    if "://" not in url:
        url = f"x://{url}"
    return urlsplit(url).port or default


def stack_engines(run_id: str) -> Engines:
    """The engines of `scripts/stack`, if all healthy, with this run's own database, namespace and queues."""
    status = _stack("status")
    if status.returncode != 0:
        raise Skipped(
            "`scripts/stack status` is not all healthy (start it with `scripts/stack up`):\n"
            + (status.stdout + status.stderr).rstrip()
        )
    env: dict[str, str] = {}
    for line in _stack("env").stdout.splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            key, value = words[1].split("=", 1)
            env[key] = value
    if "DATABASE_URL" not in env:
        raise Skipped("`scripts/stack env` printed no DATABASE_URL")
    cleanup: list[Callable[[], None]] = []
    # A database of our own on the stack's PostgreSQL: the relay and the sweeper see only this run's rows.
    shared = env["DATABASE_URL"]
    database = f"smartcourse_bench_{run_id}"
    asyncio.run(_pg_admin(shared, f'CREATE DATABASE "{database}"'))
    cleanup.append(lambda: asyncio.run(_pg_admin(shared, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')))
    parts = urlsplit(shared)
    env["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{database}"))
    namespace = f"bench{run_id}."
    env["EVENTS_NAMESPACE"] = namespace
    if env.get("MONGODB_URL"):
        env["MONGODB_DATABASE"] = database
        cleanup.append(lambda: _drop_mongo(env["MONGODB_URL"], database))
    if env.get("KAFKA_BOOTSTRAP_SERVERS"):
        cleanup.append(lambda: asyncio.run(_drop_kafka_namespace(env["KAFKA_BOOTSTRAP_SERVERS"], namespace)))
    if env.get("SCHEMA_REGISTRY_URL"):
        cleanup.append(lambda: _drop_subjects(env["SCHEMA_REGISTRY_URL"], namespace))
    ports = {
        "postgres": _port(shared, 5432),
        "redis": _port(env.get("REDIS_URL", ""), 6379),
        "rabbitmq": _port(env.get("CELERY_BROKER_URL", ""), 5672),
        "kafka": _port(env.get("KAFKA_BOOTSTRAP_SERVERS", ""), 9092),
        "schema registry": _port(env.get("SCHEMA_REGISTRY_URL", ""), 8081),
        "temporal": _port(env.get("TEMPORAL_ADDRESS", ""), 7233),
        "mongo (ferretdb)": _port(env.get("MONGODB_URL", ""), 27017),
        "s3 (moto)": _port(env.get("S3_ENDPOINT_URL", ""), 9000),
        "smtp sink": int(env.get("SMTP_PORT", "1025")),
    }
    roots = {name: [pid] for name, port in ports.items() if (pid := listening_pid(port))}
    return Engines("stack", env, roots, cleanup)


async def _pg_admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _drop_mongo(url: str, database: str) -> None:
    import pymongo

    client: Any = pymongo.MongoClient(url, serverSelectionTimeoutMS=5000)
    try:
        client.drop_database(database)
    finally:
        client.close()


async def _drop_kafka_namespace(bootstrap: str, namespace: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = [t for t in await admin.list_topics() if t.startswith(namespace)]
        if topics:
            await admin.delete_topics(topics)
    finally:
        await admin.close()


def _drop_subjects(registry_url: str, prefix: str) -> None:
    with httpx.Client(base_url=registry_url.rstrip("/") + "/", timeout=10) as client:
        for subject in client.get("subjects").json():
            if isinstance(subject, str) and subject.startswith(prefix):
                client.delete(f"subjects/{subject}")
                client.delete(f"subjects/{subject}", params={"permanent": "true"})


def _delete_celery_queue(broker_url: str, queue: str) -> None:
    from kombu import Connection

    with Connection(broker_url, connect_timeout=5) as conn:
        channel = conn.default_channel
        for name in (queue, f"{queue}.dlq"):
            with contextlib.suppress(Exception):
                channel.queue_delete(name)


# --- the product -----------------------------------------------------------------------------------------------


@dataclass
class Deployment:
    """The running product and baseline of one engines setting."""

    engines: Engines
    data_dir: Path
    env: dict[str, str]
    api: str
    baseline: str
    children: Children

    def cpu_roots(self) -> dict[str, list[int]]:
        roots = {name: [p.pid] for name, p in self.children.procs.items()}
        return {**roots, **self.engines.cpu_roots}


def product_env(engines: Engines, data_dir: Path, run_id: str) -> dict[str, str]:
    """One environment for every process of the product (the caller's, minus its engine settings, plus ours)."""
    env = {k: v for k, v in os.environ.items() if k not in ENGINE_VARS}
    env.update(engines.env)
    env.update(
        {
            "SMARTCOURSE_DATA_DIR": str(data_dir),
            "TEMPORAL_TASK_QUEUE": f"bench-{run_id}",
            "CELERY_QUEUE": f"bench-{run_id}",
            # Tokens are minted by this script right before each level; a long level must not outlive them.
            "ACCESS_TOKEN_MINUTES": "240",
            # One signing secret for the product and this script's tokens (as `smartcourse run` passes its own).
            "JWT_SECRET": os.environ.get("JWT_SECRET") or secrets.token_urlsafe(48),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def wait_for(check: Callable[[], bool], timeout: float, what: str, children: Children) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        children.ensure_alive()
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {timeout:.0f}s (logs: {children.log_dir})")
        time.sleep(0.2)


def http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def start_product(engines: Engines, data_dir: Path, run_id: str, children: Children) -> Deployment:
    """Migrate, then start API, worker, Celery (and relay + consumers with Kafka) and the baseline."""
    from baseline_app import POOL_MAX as BASELINE_CONNECTIONS

    from smartcourse.cli import (
        CELERY_CONCURRENCY,
        CELERY_CONNECTIONS,
        CELERY_WORKER,
        api_workers,
        pool_processes,
        run_processes,
        size_pools,
    )
    from smartcourse.engines import free_port
    from smartcourse.migrations import upgrade_head

    env = product_env(engines, data_dir, run_id)
    t0 = time.monotonic()
    upgrade_head(engines.database_url)
    say(f"migrated in {time.monotonic() - t0:.1f}s")
    api_port, baseline_port = free_port(), free_port()
    exe = [sys.executable, "-m", "smartcourse.cli"]
    workers = ["--workers", str(env.get("SMARTCOURSE_API_WORKERS") or api_workers())]  # as `smartcourse run`
    # The pools as `smartcourse run` sizes them, with the baseline's pool beside the product's.
    kafka = bool(env.get("KAFKA_BOOTSTRAP_SERVERS"))
    processes = pool_processes(run_processes(LOCALHOST, api_port, kafka=kafka))  # those started below
    line = size_pools(env, processes, others=CELERY_CONNECTIONS + BASELINE_CONNECTIONS)
    if line:
        say(line)
    children.start("api", [*exe, "serve", "--host", LOCALHOST, "--port", str(api_port), *workers], env, data_dir)
    children.start("worker", [*exe, "worker"], env, data_dir)
    celery = [*CELERY_WORKER, "--concurrency", str(CELERY_CONCURRENCY), "-B", "-n", f"bench-{run_id}@%h"]
    children.start("celery", celery, env, data_dir)
    if kafka:  # as `smartcourse run`: the worker relays in-process only without Kafka
        children.start("relay", [*exe, "relay"], env, data_dir)
        children.start("consumers", [*exe, "consumers"], env, data_dir)
    baseline_env = {**env, "BASELINE_DATABASE_URL": engines.database_url}
    uvicorn = [sys.executable, "-m", "uvicorn", "baseline_app:app", "--app-dir", str(BENCH_DIR)]
    uvicorn += ["--host", LOCALHOST, "--port", str(baseline_port), "--log-level", "warning"]
    children.start("baseline", uvicorn, baseline_env, data_dir)
    api, baseline = f"http://{LOCALHOST}:{api_port}", f"http://{LOCALHOST}:{baseline_port}"
    wait_for(lambda: http_ok(f"{api}/health"), 90, "the API", children)
    wait_for(lambda: http_ok(f"{baseline}/health"), 60, "the baseline", children)
    wait_for(lambda: " ready." in children.log("celery"), 90, "the Celery worker", children)
    say(f"product up in {time.monotonic() - t0:.1f}s: API {api}, baseline {baseline}, logs {children.log_dir}")
    return Deployment(engines, data_dir, env, api, baseline, children)


# --- setup through the API and the database ---------------------------------------------------------------------


async def create_course(client: httpx.AsyncClient, timeout: float = 180) -> str:
    """Instructor registers and logs in; a course with one module and lesson is published. Returns its id."""

    def check(r: httpx.Response, status: int) -> dict[str, Any]:
        if r.status_code != status:
            raise RuntimeError(f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text[:500]}")
        body: dict[str, Any] = r.json()
        return body

    email, password = f"bench-instructor-{uuid.uuid4().hex[:10]}@example.com", "bench-password-1"
    user = {"email": email, "password": password, "full_name": "Bench Instructor", "role": "instructor"}
    check(await client.post("/auth/register", json=user), 201)
    tokens = check(await client.post("/auth/login", json={"email": email, "password": password}), 200)
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    course_in = {"title": "Benchmarking 101", "description": "Measured, not asserted.", "category": "engineering"}
    course = check(await client.post("/courses", json=course_in, headers=auth), 201)
    cid = course["id"]
    module = check(await client.post(f"/courses/{cid}/modules", json={"title": "Basics"}, headers=auth), 201)
    lesson = {"title": "Why measure", "type": "text", "content": "# Why\nBecause."}
    check(await client.post(f"/courses/{cid}/modules/{module['id']}/lessons", json=lesson, headers=auth), 201)
    started = check(await client.post(f"/courses/{cid}/publish", headers=auth), 202)
    deadline = time.monotonic() + timeout
    while True:
        wf = check(await client.get(f"/workflows/{started['workflow_id']}", headers=auth), 200)
        if wf["status"] == "completed":
            return str(cid)
        if wf["status"] not in {"running", "not_started"} or time.monotonic() > deadline:
            raise RuntimeError(f"publishing workflow ended {wf['status']}: {wf}")
        await asyncio.sleep(0.2)


async def create_students(database_url: str, count: int, chunk: int = 500) -> list[uuid.UUID]:
    """Students inserted directly (as tests/e2e's `fast_students`), each with its `user.registered` outbox event."""
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from smartcourse.db import UnitOfWork, make_engine
    from smartcourse.domain.events import DomainEvent
    from smartcourse.models import User
    from smartcourse.security import hash_password

    engine = make_engine(database_url, pool_size=1)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    pw = hash_password("unused-password")
    ids: list[uuid.UUID] = []
    try:
        for start in range(0, count, chunk):
            users = [
                User(
                    id=uuid.uuid4(),
                    email=f"bench-{uuid.uuid4().hex}@example.com",
                    password_hash=pw,
                    full_name=f"Bench Student {start + i}",
                    role="student",
                )
                for i in range(min(chunk, count - start))
            ]
            async with UnitOfWork(sessions) as uow:
                uow.session.add_all(users)
                for u in users:  # as registration does: analytics counts students from this event
                    uow.emit(DomainEvent("user.registered", str(u.id), {"user_id": str(u.id), "role": "student"}))
                await uow.commit()
            ids.extend(u.id for u in users)
    finally:
        await engine.dispose()
    return ids


def student_headers(env: dict[str, str], student_ids: list[uuid.UUID]) -> list[dict[str, str]]:
    """A fresh access token per student, signed with the settings the API runs with."""
    from smartcourse.config import Settings
    from smartcourse.security import issue_access_token

    keys = ("JWT_SECRET", "JWT_ISSUER", "ACCESS_TOKEN_MINUTES", "SMARTCOURSE_ENV")
    settings = Settings(_env_file=None, **{k: env[k] for k in keys if k in env})  # type: ignore[call-arg]
    return [
        {"Authorization": f"Bearer {issue_access_token(settings, user_id=sid, role='student')}"} for sid in student_ids
    ]


async def outbox_left(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"))


async def wait_outbox_empty(conn: asyncpg.Connection, timeout: float) -> float | None:
    t0 = time.monotonic()
    while await outbox_left(conn):
        if time.monotonic() - t0 > timeout:
            return None
        await asyncio.sleep(0.25)
    return time.monotonic() - t0


# --- the load generator --------------------------------------------------------------------------------------


@dataclass
class Call:
    """One request of a run."""

    path: str
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class Answer:
    """What one request got: its status (or exception name), when it was sent, how long it took, its body."""

    status: str
    sent_wall: float
    sent_perf: float
    latency: float
    body: dict[str, Any] | None


OnAnswer = Callable[[int, Answer], None]


async def drive(
    clients: list[httpx.AsyncClient],
    calls: list[Call],
    *,
    run_timeout: float,
    on_answer: OnAnswer | None = None,
) -> tuple[list[Answer | None], float]:
    """POST every call from closed-loop clients, one request at a time each; returns the answers (None: not sent)
    and the wall time. After `run_timeout` seconds no new request starts (those in flight finish or time out).
    """
    answers: list[Answer | None] = [None] * len(calls)
    todo: Iterator[tuple[int, Call]] = iter(enumerate(calls))
    deadline = time.monotonic() + run_timeout

    async def client_loop(client: httpx.AsyncClient) -> None:
        for index, call in todo:
            if time.monotonic() > deadline:
                return
            wall, t0 = time.time(), time.perf_counter()
            body: dict[str, Any] | None = None
            try:
                r = await client.post(call.path, json=call.body, headers=call.headers)
                status = str(r.status_code)
                with contextlib.suppress(ValueError):
                    body = r.json()
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            answer = Answer(status, wall, t0, time.perf_counter() - t0, body)
            answers[index] = answer
            if on_answer is not None:
                on_answer(index, answer)

    t0 = time.perf_counter()
    await asyncio.gather(*(client_loop(c) for c in clients))
    return answers, time.perf_counter() - t0


def load_figures(
    system: str, concurrency: int, answers: list[Answer | None], elapsed: float, cpu: dict[str, float]
) -> LoadFigures:
    done = [a for a in answers if a is not None]
    ok = [a for a in done if a.status.startswith("2")]
    return LoadFigures(
        system=system,
        concurrency=concurrency,
        requests=len(answers),
        sent=len(done),
        ok=len(ok),
        statuses=dict(sorted(Counter(a.status for a in done).items())),
        elapsed_s=round(elapsed, 2),
        per_second=round(len(ok) / elapsed, 1) if elapsed else 0.0,
        latency=Summary.of(a.latency for a in ok),
        cpu_s=cpu,
    )


class PgWaits:
    """Samples pg_stat_activity every 100 ms during a run: how many sessions are busy, and on what they wait."""

    QUERY = """
        SELECT CASE
                 WHEN state LIKE 'idle in transaction%' THEN 'in transaction, waiting for the app'
                 WHEN wait_event IS NULL THEN 'running (CPU)'
                 ELSE wait_event_type || ':' || wait_event
               END AS what, count(*) AS n
        FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid()
          AND backend_type = 'client backend' AND state <> 'idle'
        GROUP BY 1
    """

    def __init__(self, database_url: str) -> None:
        self.dsn = asyncpg_dsn(database_url)
        self.counts: Counter[str] = Counter()
        self.samples = 0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._conn: asyncpg.Connection | None = None

    async def __aenter__(self) -> PgWaits:
        self._conn = await asyncpg.connect(self.dsn)
        self._task = asyncio.create_task(self._loop(self._conn))
        return self

    async def __aexit__(self, *_: object) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
        if self._conn is not None:
            await self._conn.close()

    async def _loop(self, conn: asyncpg.Connection) -> None:
        while not self._stop.is_set():
            for row in await conn.fetch(self.QUERY):
                self.counts[row["what"]] += row["n"]
            self.samples += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 0.1)

    def averages(self) -> dict[str, float]:
        """Mean number of busy sessions per kind of wait, over the samples."""
        n = max(self.samples, 1)
        return {k: round(v / n, 2) for k, v in self.counts.most_common()}


def http_client(base_url: str, connections: int = 1) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=base_url, limits=limits, timeout=httpx.Timeout(60.0))


@contextlib.asynccontextmanager
async def http_clients(base_url: str, count: int) -> AsyncIterator[list[httpx.AsyncClient]]:
    """`count` clients, each with its own pool of one keep-alive connection, opened (GET /health) before the run.

    One pool per client, not one shared pool of `count` connections: httpx's pool does work proportional to its
    size on every request, which made this load generator, not the server, the bottleneck at 64 connections.
    """
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(http_client(base_url)) for _ in range(count)]
        await asyncio.gather(*(c.get("/health") for c in clients), return_exceptions=True)
        yield clients


# --- one level ------------------------------------------------------------------------------------------------


class Sampler:
    """Watches sampled enrollments through the API until their workflow completed (request -> completed)."""

    def __init__(self, base_url: str, every: int, timeout: float) -> None:
        self.base_url, self.every, self.timeout = base_url, every, timeout
        self.tasks: list[asyncio.Task[float | None]] = []
        self.polls: Counter[str] = Counter()
        self.posts: Counter[str] = Counter()  # the POSTs of the separate sample run
        self.poll_latencies: list[float] = []

    def on_answer(self, index: int, answer: Answer, headers: dict[str, str]) -> None:
        if self.every and index % self.every == 0 and answer.status == "201" and answer.body:
            self.tasks.append(asyncio.create_task(self.watch(str(answer.body["id"]), headers, answer.sent_perf)))

    async def watch(
        self, enrollment_id: str, headers: dict[str, str], sent: float, client: httpx.AsyncClient | None = None
    ) -> float | None:
        """Seconds from sending the POST until a GET shows the workflow completed (None: gave up)."""
        if client is None:
            async with http_client(self.base_url) as own:  # the student's own page, polling
                return await self.watch(enrollment_id, headers, sent, own)
        while True:
            t0 = time.perf_counter()
            try:
                r = await client.get(f"/enrollments/{enrollment_id}", headers=headers)
                self.polls[str(r.status_code)] += 1
                self.poll_latencies.append(time.perf_counter() - t0)
                if r.status_code == 200 and r.json().get("workflow_status") == "completed":
                    return time.perf_counter() - sent
            except httpx.HTTPError as exc:
                self.polls[type(exc).__name__] += 1
            if time.perf_counter() - sent > self.timeout:
                return None
            await asyncio.sleep(POLL_INTERVAL)


async def watch_batch(conn: asyncpg.Connection, ids: list[uuid.UUID], t0_wall: float, timeout: float) -> Milestones:
    """Poll the database until the batch is active, welcomed, e-mailed and the outbox is empty (or timeout)."""
    keys = [f"welcome:{i}" for i in ids]
    m = Milestones()
    counts: dict[str, int] = {}
    deadline = time.monotonic() + timeout
    while True:
        counts = {
            "active": await conn.fetchval(
                "SELECT count(*) FROM enrollments WHERE id = ANY($1::uuid[]) AND status = 'active'", ids
            ),
            "welcomed": await conn.fetchval("SELECT count(*) FROM notifications WHERE dedupe_key = ANY($1)", keys),
            "emailed": await conn.fetchval(
                "SELECT count(*) FROM notifications WHERE dedupe_key = ANY($1) AND email_status = 'sent'", keys
            ),
            "outbox_unpublished": await outbox_left(conn),
        }
        now = round(time.time() - t0_wall, 2)
        if m.all_active_s is None and counts["active"] >= len(ids):
            m.all_active_s = now
        if m.all_welcomed_s is None and counts["welcomed"] >= len(ids):
            m.all_welcomed_s = now
        if m.all_emailed_s is None and counts["emailed"] >= len(ids):
            m.all_emailed_s = now
        if m.outbox_empty_s is None and m.all_welcomed_s is not None and counts["outbox_unpublished"] == 0:
            m.outbox_empty_s = now
        if None not in (m.all_active_s, m.all_welcomed_s, m.all_emailed_s, m.outbox_empty_s):
            break
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.25)
    # Celery tasks that carried those e-mails (one each, or fewer when the worker coalesced them: EmailBatcher)
    counts["email_tasks"] = await conn.fetchval(
        "SELECT count(*) FROM task_runs WHERE task LIKE 'notifications.send_email%' AND created_at >= to_timestamp($1)",
        t0_wall,
    )
    m.counts_at_end = {k: int(v) for k, v in counts.items()}
    return m


async def request_to_active(conn: asyncpg.Connection, sent_wall: dict[uuid.UUID, float]) -> list[float]:
    rows = await conn.fetch(
        "SELECT id, activated_at FROM enrollments WHERE id = ANY($1::uuid[]) AND activated_at IS NOT NULL",
        list(sent_wall),
    )
    return [r["activated_at"].timestamp() - sent_wall[r["id"]] for r in rows]


async def sample_run(
    dep: Deployment, course_id: str, students: list[uuid.UUID], concurrency: int, sampler: Sampler
) -> list[float | None]:
    """Closed loop of min(C, n) students: each enrolls, watches its enrollment until completed, then the next one."""
    headers = iter(student_headers(dep.env, students))
    results: list[float | None] = []

    async def student(client: httpx.AsyncClient) -> None:
        for h in headers:
            sent = time.perf_counter()
            r: httpx.Response | None = None
            try:
                r = await client.post("/enrollments", json={"course_id": course_id}, headers=h)
                sampler.posts[str(r.status_code)] += 1
            except httpx.HTTPError as exc:
                sampler.posts[type(exc).__name__] += 1
            if r is not None and r.status_code == 201:  # a failed POST is counted in `posts`, not watched
                results.append(await sampler.watch(str(r.json()["id"]), h, sent, client))

    async with http_clients(dep.api, min(concurrency, len(students))) as clients:
        await asyncio.gather(*(student(c) for c in clients))
    return results


async def measure_level(
    dep: Deployment,
    conn: asyncpg.Connection,
    course_id: str,
    students: list[uuid.UUID],
    sample_students: list[uuid.UUID],
    concurrency: int,
    args: argparse.Namespace,
) -> tuple[LoadFigures, WorkflowFigures, LoadFigures]:
    """SmartCourse at one concurrency (with its workflow follow-up), then the baseline with the same load."""
    roots = dep.cpu_roots()
    headers = student_headers(dep.env, students)
    calls = [Call("/enrollments", {"course_id": course_id}, h) for h in headers]
    inline = args.sample_mode == "inline"
    every = max(1, len(calls) // args.sample) if args.sample and inline else 0
    sampler = Sampler(dep.api, every, args.settle_timeout)
    async with http_clients(dep.api, concurrency) as clients:
        say(f"smartcourse: {len(calls)} POST /enrollments from {concurrency} clients")
        async with PgWaits(dep.engines.database_url) as waits:
            cpu0 = tree_cpu(roots)
            t0_wall = time.time()
            answers, elapsed = await drive(
                clients,
                calls,
                run_timeout=args.run_timeout,
                on_answer=(lambda i, a: sampler.on_answer(i, a, calls[i].headers)) if inline else None,
            )
            cpu1 = tree_cpu(roots)
        load = load_figures("smartcourse", concurrency, answers, elapsed, cpu_delta(cpu0, cpu1))
        load.pg_waits = waits.averages()
        say(f"smartcourse c={concurrency}: {load.per_second}/s, p50 {load.latency.p50_ms} ms, {load.statuses}")
        sent_wall = {
            uuid.UUID(str(a.body["id"])): a.sent_wall
            for a in answers
            if a is not None and a.status == "201" and a.body and a.body.get("status") == "pending"
        }
        milestones = await watch_batch(conn, list(sent_wall), t0_wall, args.settle_timeout)
        sampled = list(await asyncio.gather(*sampler.tasks))
        cpu2 = tree_cpu(roots)
        settle_wall = time.time() - t0_wall
    say(f"smartcourse c={concurrency}: batch settled {asdict(milestones)}")
    sample_wall = 0.0
    if sample_students:
        say(f"smartcourse: {len(sample_students)} students enroll and watch, {concurrency} at a time")
        t0 = time.perf_counter()
        sampled = await sample_run(dep, course_id, sample_students, concurrency, sampler)
        sample_wall = time.perf_counter() - t0
        await wait_outbox_empty(conn, 120)
    completed = [s for s in sampled if s is not None]
    workflow = WorkflowFigures(
        concurrency=concurrency,
        sample_mode=args.sample_mode if args.sample else "none",
        sample=len(sampled),
        sample_completed=len(completed),
        sample_timed_out=len(sampled) - len(completed),
        sample_wall_s=round(sample_wall, 2),
        sample_posts=dict(sampler.posts),
        request_to_completed=Summary.of(completed),
        polls=sum(sampler.polls.values()),
        poll_statuses=dict(sampler.polls),
        poll_latency=Summary.of(sampler.poll_latencies),
        request_to_active=Summary.of(await request_to_active(conn, sent_wall)),
        milestones=milestones,
        settle_cpu_s=cpu_delta(cpu0, cpu2),
        settle_wall_s=round(settle_wall, 2),
    )
    dep.children.ensure_alive()

    base_calls = [Call("/enroll", {"student_id": str(s), "course_id": course_id}, {}) for s in students]
    async with http_clients(dep.baseline, concurrency) as clients:
        say(f"baseline: {len(base_calls)} POST /enroll from {concurrency} clients")
        async with PgWaits(dep.engines.database_url) as waits:
            cpu0 = tree_cpu(roots)
            answers, elapsed = await drive(clients, base_calls, run_timeout=args.run_timeout)
            cpu1 = tree_cpu(roots)
    base = load_figures("baseline", concurrency, answers, elapsed, cpu_delta(cpu0, cpu1))
    base.pg_waits = waits.averages()
    say(f"baseline c={concurrency}: {base.per_second}/s, p50 {base.latency.p50_ms} ms, {base.statuses}")
    return load, workflow, base


async def steady_run(
    dep: Deployment, conn: asyncpg.Connection, course_id: str, students: list[uuid.UUID], args: argparse.Namespace
) -> SteadyFigures:
    """P2: POST /enrollments at `--steady-rate` per second for `--steady-seconds` (open loop: each request leaves on
    schedule in its own task), then wait until every admitted one is active; request -> active from activated_at."""
    rate, seconds = args.steady_rate, args.steady_seconds
    headers = student_headers(dep.env, students)
    answers: list[Answer | None] = [None] * len(headers)
    late = 0
    backlog_max = 0
    stop = asyncio.Event()
    one_at_a_time = asyncio.Lock()  # the sampler and the settle loop share `conn`: asyncpg allows one query at once

    async def sample_backlog() -> None:
        nonlocal backlog_max
        while not stop.is_set():
            async with one_at_a_time:
                pending = await conn.fetchval("SELECT count(*) FROM enrollments WHERE status = 'pending'")
            backlog_max = max(backlog_max, int(pending))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)

    say(f"steady: {len(headers)} POST /enrollments at {rate}/s for {seconds:.0f} s (open loop)")
    async with http_clients(dep.api, 64) as clients:
        free: asyncio.Queue[httpx.AsyncClient] = asyncio.Queue()
        for c in clients:
            free.put_nowait(c)

        async def one(index: int) -> None:
            client = await free.get()
            wall, t0 = time.time(), time.perf_counter()
            body: dict[str, Any] | None = None
            try:
                r = await client.post("/enrollments", json={"course_id": course_id}, headers=headers[index])
                status = str(r.status_code)
                with contextlib.suppress(ValueError):
                    body = r.json()
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            finally:
                free.put_nowait(client)
            answers[index] = Answer(status, wall, t0, time.perf_counter() - t0, body)

        sampler = asyncio.create_task(sample_backlog())
        tasks: list[asyncio.Task[None]] = []
        start = time.perf_counter()
        for i in range(len(headers)):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.1:
                late += 1
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        sending = time.perf_counter() - start
    last_sent = max((a.sent_wall for a in answers if a is not None), default=time.time())
    sent_wall = {
        uuid.UUID(str(a.body["id"])): a.sent_wall
        for a in answers
        if a is not None and a.status == "201" and a.body and a.body.get("status") == "pending"
    }
    deadline = time.monotonic() + args.settle_timeout
    all_active: float | None = None
    while time.monotonic() < deadline:
        async with one_at_a_time:
            left = await conn.fetchval(
                "SELECT count(*) FROM enrollments WHERE id = ANY($1::uuid[]) AND status <> 'active'", list(sent_wall)
            )
        if left == 0:
            all_active = round(time.time() - last_sent, 2)
            break
        await asyncio.sleep(0.25)
    stop.set()
    await sampler
    done = [a for a in answers if a is not None]
    ok = [a for a in done if a.status.startswith("2")]
    figures = SteadyFigures(
        rate=rate,
        seconds=seconds,
        sent=len(done),
        ok=len(ok),
        statuses=dict(sorted(Counter(a.status for a in done).items())),
        achieved_per_second=round(len(ok) / sending, 1) if sending else 0.0,
        post_latency=Summary.of(a.latency for a in ok),
        request_to_active=Summary.of(await request_to_active(conn, sent_wall)),
        active=len(await request_to_active(conn, sent_wall)),
        all_active_after_last_s=all_active,
        backlog_max=backlog_max,
        late_sends=late,
    )
    say(f"steady: {asdict(figures)}")
    return figures


async def measure(dep: Deployment, args: argparse.Namespace, result: SettingResult) -> None:
    """Setup through the API and the database, then every concurrency level."""
    conn = await asyncpg.connect(asyncpg_dsn(dep.engines.database_url))
    try:
        result.facts.update(await postgres_facts(conn))
        t0 = time.monotonic()
        async with http_client(dep.api, 4) as client:
            course_id = await create_course(client)
        result.setup_s["course_published"] = round(time.monotonic() - t0, 2)
        t0 = time.monotonic()
        n, levels = args.requests, args.concurrency
        extra = args.sample if args.sample_mode == "separate" else 0
        steady_n = int(args.steady_rate * args.steady_seconds)
        students = await create_students(dep.engines.database_url, (n + extra) * len(levels) + steady_n)
        result.setup_s["students_inserted"] = round(time.monotonic() - t0, 2)
        drained = await wait_outbox_empty(conn, args.settle_timeout)
        result.setup_s["students_outbox_drained"] = round(drained, 2) if drained is not None else -1
        say(f"course {course_id} published; {len(students)} students ready ({result.setup_s})")
        for i, concurrency in enumerate(levels):
            mine = students[i * (n + extra) : (i + 1) * (n + extra)]
            load, workflow, base = await measure_level(dep, conn, course_id, mine[:n], mine[n:], concurrency, args)
            result.loads += [load, base]
            result.workflows.append(workflow)
        if steady_n:
            mine = students[len(levels) * (n + extra) :]
            result.steady.append(await steady_run(dep, conn, course_id, mine, args))
    finally:
        await conn.close()


async def postgres_facts(conn: asyncpg.Connection) -> dict[str, Any]:
    facts: dict[str, Any] = {"postgres": await conn.fetchval("SHOW server_version")}
    for name in ("max_connections", "shared_buffers", "fsync", "synchronous_commit"):
        facts[f"pg_{name}"] = await conn.fetchval(f"SHOW {name}")
    return facts


def run_setting(result: SettingResult, args: argparse.Namespace) -> None:
    """Bring up one engines setting, measure into `result`, and stop everything it started, whatever happens."""
    name = result.engines
    run_id = uuid.uuid4().hex[:8]
    data_dir = Path(tempfile.mkdtemp(prefix=f"smartcourse-bench-{name}-")).resolve()
    children = Children(data_dir / "logs")
    engines: Engines | None = None
    failed = False
    t0 = time.monotonic()
    try:
        say(f"{name}: starting engines in {data_dir}")
        engines = embedded_engines(data_dir) if name == "embedded" else stack_engines(run_id)
        result.setup_s["engines_up"] = round(time.monotonic() - t0, 2)
        dep = start_product(engines, data_dir, run_id, children)
        if engines.env.get("CELERY_BROKER_URL"):
            broker, queue = engines.env["CELERY_BROKER_URL"], dep.env["CELERY_QUEUE"]
            engines.cleanup.append(lambda: _delete_celery_queue(broker, queue))
        result.setup_s["product_up"] = round(time.monotonic() - t0, 2)
        result.facts["processes"] = {k: v for k, v in dep.cpu_roots().items() if v}
        run_async(measure(dep, args, result))
    except Skipped as exc:
        result.skipped = str(exc)
        say(f"{name}: skipped: {exc}")
    except Exception as exc:
        failed = True
        result.error = f"{type(exc).__name__}: {exc}"
        say(f"{name}: failed: {result.error}")
    except KeyboardInterrupt:
        result.error = "interrupted (figures below are those measured before)"
        raise
    finally:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl+C must not cut the cleanup short
        try:
            say(f"{name}: stopping what was started")
            result.exits = children.stop()
            result.log_findings = children.findings()
            for cleanup in reversed(engines.cleanup if engines else []):
                try:
                    cleanup()
                except Exception as exc:
                    say(f"cleanup step failed: {type(exc).__name__}: {exc}")
            if args.keep_data or failed:
                say(f"{name}: data and logs kept in {data_dir}")
            else:
                shutil.rmtree(data_dir, ignore_errors=True)
        finally:
            signal.signal(signal.SIGINT, previous)


def run_async(coro: Any) -> Any:
    """Run a coroutine on uvloop when available (the product's servers use it too, through uvicorn)."""
    try:
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)


# --- report ---------------------------------------------------------------------------------------------------


def machine_facts() -> dict[str, Any]:
    facts: dict[str, Any] = {
        "date_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                facts["cpu"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError):
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
        facts["memory_gb"] = round(mem_kb / 1024 / 1024, 1)
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO)
        dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, cwd=REPO)
        facts["git"] = head.stdout.strip() + (" (uncommitted changes)" if dirty.stdout.strip() else "")
    with contextlib.suppress(Exception):
        from smartcourse.engines import _bin

        out = subprocess.run([_bin("temporal"), "--version"], capture_output=True, text=True, timeout=20)
        facts["temporal_cli"] = out.stdout.strip()
    return facts


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None or value != value:  # None or NaN
        return "-"
    return f"{value:.{digits}f}"


def _errors(statuses: dict[str, int]) -> str:
    bad = {k: v for k, v in statuses.items() if not k.startswith("2")}
    return ", ".join(f"{k}:{v}" for k, v in bad.items()) or "0"


def render(results: list[SettingResult], facts: dict[str, Any], args: argparse.Namespace) -> str:
    out: list[str] = []
    w = out.append
    w(f"SmartCourse enrollment benchmark - {facts['date_utc']}")
    w(
        f"machine: {facts.get('cores')} cores ({facts.get('cpu', '?')}), {facts.get('memory_gb', '?')} GB, "
        f"Python {facts['python']}, {facts['platform']}"
    )
    w(f"load average before: {facts.get('loadavg_before', '?')}   after: {facts.get('loadavg_after', '?')}")
    w(
        f"git {facts.get('git', '?')}; {args.requests} requests per level; "
        f"sample {args.sample} per level ({args.sample_mode})"
    )
    for res in results:
        w("")
        w(f"=== engines: {res.engines} " + "=" * 60)
        if res.skipped:
            w(f"skipped: {res.skipped}")
            continue
        if res.error:
            w(f"{'STOPPED' if res.error.startswith('interrupted') else 'FAILED'}: {res.error}")
        pg = res.facts
        if "postgres" in pg:
            w(
                f"PostgreSQL {pg['postgres']} (max_connections {pg['pg_max_connections']}, fsync {pg['pg_fsync']}, "
                f"synchronous_commit {pg['pg_synchronous_commit']}, shared_buffers {pg['pg_shared_buffers']})"
            )
        w("setup: " + ", ".join(f"{k} {v}s" for k, v in res.setup_s.items()))
        w("")
        w(f"{'system':<12} {'conc':>4} {'ok':>6} {'errors':<24} {'enroll/s':>9} {'p50 ms':>8} {'p95 ms':>8} "
          f"{'p99 ms':>8} {'max ms':>8} {'wall s':>7}")  # fmt: skip
        for load in sorted(res.loads, key=lambda x: (x.concurrency, x.system != "smartcourse")):
            lat = load.latency
            w(
                f"{load.system:<12} {load.concurrency:>4} {load.ok:>6} {_errors(load.statuses):<24} "
                f"{load.per_second:>9.1f} {_fmt(lat.p50_ms):>8} {_fmt(lat.p95_ms):>8} {_fmt(lat.p99_ms):>8} "
                f"{_fmt(lat.max_ms):>8} {load.elapsed_s:>7.1f}"
            )
        pairs = {(x.concurrency, x.system): x for x in res.loads}
        for conc in sorted({x.concurrency for x in res.loads}):
            sc, base = pairs.get((conc, "smartcourse")), pairs.get((conc, "baseline"))
            if sc and base and base.per_second:
                w(
                    f"P1 c={conc}: POST /enrollments {sc.per_second:.1f}/s = {sc.per_second / base.per_second:.2f}x "
                    f"the bare INSERT ({base.per_second:.1f}/s); p95 {_fmt(sc.latency.p95_ms)} ms "
                    f"(baseline {_fmt(base.latency.p95_ms)} ms)"
                )
        for st in res.steady:
            w("")
            w(
                f"P2 steady {st.rate:g}/s for {st.seconds:g} s (open loop): {st.ok}/{st.sent} ok "
                f"(errors {_errors(st.statuses)}), {st.achieved_per_second}/s answered, POST p50 "
                f"{_fmt(st.post_latency.p50_ms)} / p95 {_fmt(st.post_latency.p95_ms)} ms, {st.late_sends} sent late"
            )
            ra = st.request_to_active
            w(
                f"   request -> active: p50 {_fmt(ra.p50_ms, 0)} / p95 {_fmt(ra.p95_ms, 0)} / "
                f"p99 {_fmt(ra.p99_ms, 0)} / max {_fmt(ra.max_ms, 0)} ms over {st.active} enrollments; all active "
                f"{_fmt(st.all_active_after_last_s)} s after the last request; backlog (admitted, not active) at most "
                f"{st.backlog_max}"
            )
        if res.workflows:
            w("")
            w("after the 201 (SmartCourse batch): request -> activated_at in the database, every enrollment of the")
            w("batch (ms); seconds from the batch's first request until all of it was active / welcomed (last")
            w("workflow step) / e-mailed (Celery) and the outbox was empty")
            w(f"{'conc':>4} {'act p50':>9} {'act p95':>9} {'act p99':>9} {'active s':>9} {'welcomed s':>11} "
              f"{'e-mailed s':>11} {'outbox s':>9}")  # fmt: skip
            for wf in res.workflows:
                ra, m = wf.request_to_active, wf.milestones
                w(
                    f"{wf.concurrency:>4} {_fmt(ra.p50_ms, 0):>9} {_fmt(ra.p95_ms, 0):>9} {_fmt(ra.p99_ms, 0):>9} "
                    f"{_fmt(m.all_active_s):>9} {_fmt(m.all_welcomed_s):>11} {_fmt(m.all_emailed_s):>11} "
                    f"{_fmt(m.outbox_empty_s):>9}"
                )
                if None in (m.all_active_s, m.all_welcomed_s, m.all_emailed_s, m.outbox_empty_s):
                    w(f"     !! not settled within --settle-timeout; at the end: {m.counts_at_end}")
            w("")
            w("request -> workflow completed as a student sees it: POST, then GET /enrollments/{id} every 50 ms until")
            w("workflow_status is completed (ms); separate = own closed-loop run of --sample students after the batch,")
            w("C at a time; inline = every N/sample-th enrollment of the batch, watched while the batch runs")
            w(f"{'conc':>4} {'mode':>9} {'done':>8} {'wf p50':>8} {'wf p95':>8} {'wf p99':>8} {'polls':>6} "
              f"{'GET p50':>8} {'GET p95':>8}  errors")  # fmt: skip
            for wf in res.workflows:
                rc, pl = wf.request_to_completed, wf.poll_latency
                done = f"{wf.sample_completed}/{wf.sample}"
                bad = {f"GET {k}": v for k, v in wf.poll_statuses.items() if k != "200"}
                bad.update({f"POST {k}": v for k, v in wf.sample_posts.items() if k != "201"})
                if wf.sample_timed_out:
                    bad["watch timed out"] = wf.sample_timed_out
                errors = ", ".join(f"{k}:{v}" for k, v in bad.items()) or "0"
                w(
                    f"{wf.concurrency:>4} {wf.sample_mode:>9} {done:>8} {_fmt(rc.p50_ms, 0):>8} "
                    f"{_fmt(rc.p95_ms, 0):>8} {_fmt(rc.p99_ms, 0):>8} {wf.polls:>6} {_fmt(pl.p50_ms, 0):>8} "
                    f"{_fmt(pl.p95_ms, 0):>8}  {errors}"
                )
            w("")
            w(render_cpu(res, int(facts.get("usable_cores") or 1)))
        if res.log_findings:
            w("")
            w("log lines at warning or above, by process (first 8 kinds):")
            for proc, counts in res.log_findings.items():
                for what, count in counts.items():
                    w(f"  {proc:<10} {count:>6}  {what}")
        odd_exits = {k: v for k, v in res.exits.items() if v not in (0, -signal.SIGTERM, None)}
        if odd_exits:
            w(f"exit codes at stop (0 or -15 expected): {odd_exits}")
    return "\n".join(out)


def _cpu_table(title: str, columns: list[tuple[str, dict[str, float], float]], digits: int) -> list[str]:
    """Rows of processes, one column per run: CPU seconds divided by the column's divisor."""
    names = {k for _, cpu, _ in columns for k, v in cpu.items() if v > 0.05 and not k.startswith("(")}
    order = sorted(names, key=lambda n: -max(cpu.get(n, 0.0) / div for _, cpu, div in columns))
    lines = [title, f"{'process':<18}" + "".join(f"{head:>13}" for head, _, _ in columns)]
    totals = [0.0] * len(columns)
    for name in order:
        row = f"{name:<18}"
        for i, (_, cpu, div) in enumerate(columns):
            value = cpu.get(name, 0.0) / div
            totals[i] += value
            row += f"{value:>13.{digits}f}"
        lines.append(row)
    lines.append(f"{'total':<18}" + "".join(f"{t:>13.{digits}f}" for t in totals))
    iowait = [cpu.get(IOWAIT, 0.0) / div for _, cpu, div in columns]
    lines.append(f"{IOWAIT:<18}" + "".join(f"{v:>13.{digits}f}" for v in iowait))
    return lines


def render_cpu(res: SettingResult, cores: int) -> str:
    """Where the CPU goes: per enrollment (SmartCourse until its batch settled), and in cores during each run."""
    per_enrollment: list[tuple[str, dict[str, float], float]] = []
    walls: list[float] = []
    for wf in res.workflows:
        ok = next((x.ok for x in res.loads if x.system == "smartcourse" and x.concurrency == wf.concurrency), 0)
        per_enrollment.append((f"SC c={wf.concurrency}", wf.settle_cpu_s, max(ok, 1) / 1000))
        walls.append(wf.settle_wall_s)
    for load in res.loads:
        if load.system == "baseline":
            per_enrollment.append((f"base c={load.concurrency}", load.cpu_s, max(load.ok, 1) / 1000))
            walls.append(load.elapsed_s)
    lines = _cpu_table(
        "CPU ms per enrollment, by process (SmartCourse: first request until its batch settled; baseline: its run)",
        per_enrollment,
        2,
    )
    busy = [
        sum(v for k, v in cpu.items() if not k.startswith("(")) / max(wall * cores, 1e-9) * 100
        for (_, cpu, _), wall in zip(per_enrollment, walls, strict=True)
    ]
    lines.append(f"{'(wall s)':<18}" + "".join(f"{w:>13.1f}" for w in walls))
    lines.append(f"{'(machine busy %)':<18}" + "".join(f"{b:>13.0f}" for b in busy))
    during = [
        (f"{'SC' if x.system == 'smartcourse' else 'base'} c={x.concurrency}", x.cpu_s, max(x.elapsed_s, 1e-9))
        for x in sorted(res.loads, key=lambda x: (x.concurrency, x.system != "smartcourse"))
    ]
    lines.append("")
    lines += _cpu_table(f"cores busy during the POST run, by process (the machine has {cores})", during, 2)
    lines.append("")
    lines += _waits_table(res)
    return "\n".join(lines)


def _waits_table(res: SettingResult) -> list[str]:
    """Mean busy database sessions during each POST run, by what they wait on (pg_stat_activity, every 100 ms)."""
    loads = sorted(res.loads, key=lambda x: (x.concurrency, x.system != "smartcourse"))
    kinds = sorted({k for x in loads for k, v in x.pg_waits.items() if v >= 0.05})
    kinds.sort(key=lambda k: -max(x.pg_waits.get(k, 0.0) for x in loads))
    heads = [f"{'SC' if x.system == 'smartcourse' else 'base'} c={x.concurrency}" for x in loads]
    lines = ["database sessions busy during the POST run (mean over 100 ms samples of pg_stat_activity), by wait"]
    lines.append(f"{'waiting on':<36}" + "".join(f"{h:>11}" for h in heads))
    for kind in kinds:
        lines.append(f"{kind[:36]:<36}" + "".join(f"{x.pg_waits.get(kind, 0.0):>11.2f}" for x in loads))
    lines.append(f"{'total':<36}" + "".join(f"{sum(x.pg_waits.values()):>11.2f}" for x in loads))
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Measure SmartCourse's POST /enrollments (and what follows it) beside a bare INSERT endpoint."
    )
    parser.add_argument(
        "--engines",
        choices=("embedded", "stack", "both"),
        default="embedded",
        help="embedded engines (default), the running `scripts/stack` (skipped unless healthy), or both in turn",
    )
    parser.add_argument("--requests", type=int, default=2000, help="enrollments per concurrency level (2000)")
    parser.add_argument(
        "--concurrency",
        type=lambda s: [int(x) for x in s.split(",") if x.strip()],
        default=[16, 64],
        help="comma-separated client counts (16,64)",
    )
    parser.add_argument("--sample", type=int, default=100, help="enrollments per level watched until completed (100)")
    parser.add_argument(
        "--sample-mode",
        choices=("separate", "inline"),
        default="separate",
        help="separate (default): after the batch settled, --sample more students enroll and watch, C at a time; "
        "inline: watch every N/sample-th enrollment of the batch itself, while it runs (the watchers' GETs then "
        "compete with the POSTs: see docs/benchmarks.md)",
    )
    parser.add_argument(
        "--run-timeout", type=float, default=600, help="no new request of a run starts after this many seconds (600)"
    )
    parser.add_argument(
        "--settle-timeout", type=float, default=900, help="longest wait for a batch's workflows / the outbox (900)"
    )
    parser.add_argument(
        "--steady-rate", type=float, default=50, help="P2: enrollments per second of the open-loop run (50)"
    )
    parser.add_argument(
        "--steady-seconds", type=float, default=120, help="P2: how long the open-loop run sends (120; 0 skips it)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--keep-data", action="store_true", help="keep the temporary data dir (logs) at the end")
    args = parser.parse_args(argv)
    if args.requests < 1 or not args.concurrency or min(args.concurrency) < 1:
        parser.error("--requests and every --concurrency must be positive")
    return args


def _terminate(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)  # SIGTERM cleans up like Ctrl+C
    facts = machine_facts()
    facts["loadavg_before"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    settings = ["embedded", "stack"] if args.engines == "both" else [args.engines]
    results: list[SettingResult] = []
    interrupted = False
    try:
        for name in settings:
            results.append(SettingResult(engines=name))
            run_setting(results[-1], args)
    except KeyboardInterrupt:
        interrupted = True
        say("interrupted: everything started has been stopped")
    facts["loadavg_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(render(results, facts, args), flush=True)
    if args.json:
        payload: dict[str, Any] = {
            "machine": facts,
            "args": {k: str(v) for k, v in vars(args).items()},
            "results": [asdict(r) for r in results],
        }
        args.json.write_text(json.dumps(payload, indent=2, default=str) + "\n")
        say(f"figures written to {args.json}")
    if interrupted:
        return 130
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # temporalio's core can abort the interpreter at exit (sdk-python#300), as `smartcourse` notes: leave directly.
    os._exit(code)
