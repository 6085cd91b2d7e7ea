"""Chaos rig: the product on engines of its own, a burst of enrollments while its processes are SIGKILLed at random
and PostgreSQL restarts, then every effect counted in the database and the mail sink (issue #7 item 5, P3).

Used by `bench/chaos.py` (long runs, the 10,000-student burst) and `tests/integration/test_chaos.py` (short run).
The invariants count rows and files, so they hold whatever starts the workflows or runs the steps:

* every student got a 2xx answer and has exactly one enrollment (0 errors, 0 lost, 0 duplicated);
* every admitted enrollment was activated exactly once (one `active` history row, one `enrollment.activated`
  event), has one progress row per lesson, one analytics record (one `analytics.enrollment_recorded` event,
  applied once by the analytics consumer), one welcome notification (e-mail `sent`) and one welcome e-mail in
  the mail sink (one distinct Message-ID; copies of it beyond `redelivered_mail_per_disruption` per disruption
  are a violation); a waitlisted one has none of these;
* decisions (read from each enrollment's first history row, written under the course lock) are in real-time
  order (a request answered before another was sent is decided before it), every seat was given before the
  first waitlisting, the waitlist's own order respects real time, and the seats freed by drops went to the head
  of the waitlist, in order;
* the outbox is drained, no dead letters, and `GET /analytics/reconcile` reports drift 0.

The processes killed are those `smartcourse run` starts (`smartcourse.cli.run_processes`), restarted by a small
supervisor after a random pause, as a process manager would.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from smartcourse.cli import CELERY_CONNECTIONS, pool_processes, run_processes, size_pools
from smartcourse.engines import EmbeddedEngines, free_port

LOCALHOST = "127.0.0.1"
#: Engine settings a child must not inherit from the caller (the rig sets its own).
ENGINE_VARS = (
    "DATABASE_URL",
    "REDIS_URL",
    "TEMPORAL_ADDRESS",
    "TEMPORAL_TASK_QUEUE",
    "SMTP_HOST",
    "SMTP_PORT",
    "MONGODB_URL",
    "MONGODB_DATABASE",
    "KAFKA_BOOTSTRAP_SERVERS",
    "SCHEMA_REGISTRY_URL",
    "EVENTS_NAMESPACE",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "CELERY_QUEUE",
    "S3_ENDPOINT_URL",
    "S3_BUCKET",
    "SMARTCOURSE_TEST_HOLD_DIR",
    "SMARTCOURSE_DATA_DIR",
    "SMARTCOURSE_ENV",
    "JWT_SECRET",
)
RETRY_STATUSES = {429, 500, 502, 503, 504}
WELCOME_SUBJECT = "Welcome to "


def say(message: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class ChaosConfig:
    """One run. Defaults: the short run of the test suite."""

    students: int = 200
    capacity: int = 170  # seats; the other students are waitlisted
    drops: int = 10  # active enrollments dropped after the burst: their seats go to the head of the waitlist
    lessons: int = 3
    concurrency: int = 16
    kills: int = 10
    postgres_restarts: int = 1
    chaos_seconds: float = 30.0  # kills and restarts are spread over this window, from the burst's start
    restart_delay: tuple[float, float] = (0.3, 1.5)  # a killed process is started again after this long
    settle_timeout: float = 600.0  # each phase (the burst, the drops, settling) may take this long
    # An e-mail SMTP accepted just before its worker died or PostgreSQL went away is sent again (same Message-ID:
    # notifications.deliver_email's residual window). 0: any such copy is a violation; n: allow n per disruption
    # (Celery SIGKILL or PostgreSQL restart), e.g. Celery's concurrency, the e-mails that can be in flight.
    redelivered_mail_per_disruption: int = 0
    quiet_seconds: float = 3.0  # once settled, wait this long and count again (a late duplicate would show)
    request_timeout: float = 30.0
    seed: int | None = None
    targets: tuple[str, ...] | None = None  # processes to kill; default every process of `smartcourse run`
    env: dict[str, str] = field(default_factory=dict)  # extra environment for every process
    log: Callable[[str], None] = say


@dataclass
class ChaosEvent:
    """One line of the kill log."""

    at_s: float  # seconds since the burst started
    kind: str  # "SIGKILL", "postgres restart", "restarted", "exited" (died without being killed)
    target: str
    detail: str = ""


@dataclass
class StudentRequest:
    """One student's POST /enrollments, retried until answered (same Idempotency-Key every time)."""

    student_id: uuid.UUID
    email: str
    headers: dict[str, str]
    first_sent: float | None = None  # time.monotonic()
    answered: float | None = None
    status_code: int | None = None
    enrollment_id: str | None = None
    enrollment_status: str | None = None
    error: str | None = None  # the final answer when it was not a 2xx
    tries: int = 0
    retried: Counter[str] = field(default_factory=Counter)  # failed tries by status or exception


@dataclass
class Report:
    """What a run did and found. `violations` is empty when every invariant held."""

    config: dict[str, Any]
    counts: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float | None] = field(default_factory=dict)
    events: list[ChaosEvent] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    retried: dict[str, int] = field(default_factory=dict)
    reconcile: dict[str, Any] = field(default_factory=dict)
    logs: str = ""

    @property
    def kills(self) -> int:
        return sum(1 for e in self.events if e.kind == "SIGKILL")

    @property
    def postgres_restarts(self) -> int:
        return sum(1 for e in self.events if e.kind == "postgres restart")

    def render(self) -> str:
        lines = ["== chaos run ==", "config: " + ", ".join(f"{k}={v}" for k, v in self.config.items())]
        lines.append("-- counts")
        lines += [f"  {k:<40} {v}" for k, v in self.counts.items()]
        lines.append("-- timings (s)")
        lines += [f"  {k:<40} {'-' if v is None else f'{v:.1f}'}" for k, v in self.timings.items()]
        lines.append(f"-- failed tries, retried by the clients: {dict(self.retried) or 'none'}")
        lines.append(
            f"-- reconcile: total_drift={self.reconcile.get('total_drift')} "
            f"events_pending={self.reconcile.get('events_pending')}"
        )
        lines.append(f"-- kill log ({self.kills} SIGKILLs, {self.postgres_restarts} PostgreSQL restarts)")
        lines += [f"  +{e.at_s:6.1f}s  {e.kind:<17} {e.target:<10} {e.detail}" for e in self.events]
        lines.append(f"-- violations: {len(self.violations)}")
        lines += [f"  ! {v}" for v in self.violations[:50]]
        if len(self.violations) > 50:
            lines.append(f"  ... and {len(self.violations) - 50} more")
        lines.append(f"-- logs: {self.logs}")
        return "\n".join(lines)


# --- processes ----------------------------------------------------------------------------------------------


class Supervisor:
    """Starts the product's processes (each in its own session, logging to a file), restarts any that dies after a
    random pause, and SIGKILLs one on request (its whole process group: a Celery pool or API workers too)."""

    def __init__(
        self,
        procs: dict[str, list[str]],
        env: dict[str, str],
        log_dir: Path,
        rng: random.Random,
        restart_delay: tuple[float, float],
        clock: Callable[[], float],
    ) -> None:
        self.argv, self.env, self.log_dir, self.rng = procs, env, log_dir, rng
        self.restart_delay, self.clock = restart_delay, clock
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.events: list[ChaosEvent] = []
        self._killed: set[str] = set()
        self._restart_at: dict[str, float] = {}
        self.restarts: Counter[str] = Counter()
        log_dir.mkdir(parents=True, exist_ok=True)

    def start(self, name: str) -> None:
        with open(self.log_dir / f"{name}.log", "ab") as log:
            self.procs[name] = subprocess.Popen(
                self.argv[name],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def start_all(self) -> None:
        for name in self.argv:
            self.start(name)

    def log(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def kill(self, name: str) -> ChaosEvent:
        proc = self.procs[name]
        group = _group_members(proc.pid)
        self._killed.add(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        event = ChaosEvent(self.clock(), "SIGKILL", name, f"pid {proc.pid}, group of {len(group)} processes")
        self.events.append(event)
        return event

    def tick(self) -> None:
        """Schedule a restart of every process that died; start those whose pause is over."""
        now = time.monotonic()
        for name, proc in self.procs.items():
            if proc.poll() is None or name in self._restart_at:
                continue
            if name not in self._killed:
                self.events.append(
                    ChaosEvent(self.clock(), "exited", name, f"exit code {proc.returncode} (not killed)")
                )
            self._killed.discard(name)
            # Its group may still hold a straggler (a Celery pool child orphaned by an exit): take it down too.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            self._restart_at[name] = now + self.rng.uniform(*self.restart_delay)
        for name, at in list(self._restart_at.items()):
            if now >= at:
                del self._restart_at[name]
                self.start(name)
                self.restarts[name] += 1
                self.events.append(ChaosEvent(self.clock(), "restarted", name, f"pid {self.procs[name].pid}"))

    async def watch(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.tick()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.1)

    def running(self, name: str) -> bool:
        return name not in self._killed and name not in self._restart_at and self.procs[name].poll() is None

    def all_running(self) -> bool:
        return not self._restart_at and all(p.poll() is None for p in self.procs.values())

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)


def _group_members(pgid: int) -> list[int]:
    """The live pids of process group `pgid` (from /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if fields[0] != "Z" and int(fields[2]) == pgid:  # a zombie is already dead
                out.append(int(entry.name))
    return out


def kill_plan(targets: list[str], kills: int, rng: random.Random) -> list[str]:
    """`kills` targets in random order, every target at least once when there are enough kills."""
    plan: list[str] = []
    while len(plan) < kills:
        batch = list(targets)
        rng.shuffle(batch)
        plan += batch
    plan = plan[:kills]
    rng.shuffle(plan)
    return plan


# --- the world: engines, product, course, students ---------------------------------------------------------


def asyncpg_dsn(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    return f"{scheme.split('+', 1)[0]}{sep}{rest}"


@dataclass
class World:
    engines: EmbeddedEngines
    env: dict[str, str]
    api: str
    data_dir: Path
    mail_dir: Path
    course_id: str = ""
    admin_headers: dict[str, str] = field(default_factory=dict)
    requests: list[StudentRequest] = field(default_factory=list)

    @property
    def dsn(self) -> str:
        return asyncpg_dsn(self.env["DATABASE_URL"])


def start_engines(data_dir: Path, cfg: ChaosConfig) -> World:
    """Embedded PostgreSQL, Redis, Temporal and SMTP sink under `data_dir`, as `smartcourse run` starts them."""
    from smartcourse.migrations import upgrade_head

    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    eng = EmbeddedEngines(data_dir)
    mail_dir = data_dir / "mail"
    try:
        db = eng.postgres_url()
        env = {k: v for k, v in os.environ.items() if k not in ENGINE_VARS}
        host, port = eng.smtp_address(mail_dir)
        run_id = uuid.uuid4().hex[:8]
        env.update(
            {
                "DATABASE_URL": db,
                "REDIS_URL": eng.redis_url(),
                "TEMPORAL_ADDRESS": eng.temporal_address(),
                "SMTP_HOST": host,
                "SMTP_PORT": str(port),
                "SMARTCOURSE_DATA_DIR": str(data_dir),
                "SMARTCOURSE_ENV": "development",
                "JWT_SECRET": secrets.token_urlsafe(32),
                "TEMPORAL_TASK_QUEUE": f"chaos-{run_id}",
                "CELERY_QUEUE": f"chaos-{run_id}",
                "ACCESS_TOKEN_MINUTES": "600",
                "SMARTCOURSE_LOG_LEVEL": "WARNING",
                "PYTHONUNBUFFERED": "1",
                **cfg.env,
            }
        )
        upgrade_head(db)
    except BaseException:
        eng.stop()
        raise
    return World(eng, env, "", data_dir, mail_dir)


def tokens(env: dict[str, str], users: Iterable[tuple[uuid.UUID, str]]) -> list[dict[str, str]]:
    """An access token per (user id, role), signed with the settings the API runs with."""
    from smartcourse.config import Settings
    from smartcourse.security import issue_access_token

    keys = ("JWT_SECRET", "JWT_ISSUER", "ACCESS_TOKEN_MINUTES", "SMARTCOURSE_ENV")
    settings = Settings(_env_file=None, **{k: env[k] for k in keys if k in env})  # type: ignore[call-arg]
    return [{"Authorization": f"Bearer {issue_access_token(settings, user_id=uid, role=role)}"} for uid, role in users]


async def create_users(
    database_url: str, students: int, chunk: int = 1000
) -> tuple[uuid.UUID, list[tuple[uuid.UUID, str]]]:
    """An admin and `students` students inserted directly, each with its `user.registered` event (as registration
    writes them). Returns (admin id, [(student id, email)])."""
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from smartcourse.db import UnitOfWork, make_engine
    from smartcourse.domain.events import DomainEvent
    from smartcourse.models import User
    from smartcourse.security import hash_password

    engine = make_engine(database_url, pool_size=1)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    pw = hash_password("chaos-unused-password")
    out: list[tuple[uuid.UUID, str]] = []
    admin = User(
        id=uuid.uuid4(),
        email=f"chaos-admin-{uuid.uuid4().hex[:8]}@example.com",
        password_hash=pw,
        full_name="Chaos Admin",
        role="admin",
    )
    try:
        async with UnitOfWork(sessions) as uow:
            uow.session.add(admin)
            await uow.commit()
        for start in range(0, students, chunk):
            users = [
                User(
                    id=uuid.uuid4(),
                    email=f"chaos-{start + i:05d}-{uuid.uuid4().hex[:6]}@example.com",
                    password_hash=pw,
                    full_name=f"Chaos Student {start + i}",
                    role="student",
                )
                for i in range(min(chunk, students - start))
            ]
            async with UnitOfWork(sessions) as uow:
                uow.session.add_all(users)
                for u in users:
                    uow.emit(DomainEvent("user.registered", str(u.id), {"user_id": str(u.id), "role": "student"}))
                await uow.commit()
            out += [(u.id, u.email) for u in users]
    finally:
        await engine.dispose()
    return admin.id, out


def _ok(r: httpx.Response, status: int) -> dict[str, Any]:
    if r.status_code != status:
        raise RuntimeError(f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text[:500]}")
    body: dict[str, Any] = r.json()
    return body


async def create_course(client: httpx.AsyncClient, *, capacity: int, lessons: int, timeout: float = 300) -> str:
    """An instructor (through the API) publishes a course with `lessons` lessons, `capacity` seats and a waitlist."""
    email, password = f"chaos-instructor-{uuid.uuid4().hex[:8]}@example.com", "chaos-password-1"
    user = {"email": email, "password": password, "full_name": "Chaos Instructor", "role": "instructor"}
    _ok(await client.post("/auth/register", json=user), 201)
    tok = _ok(await client.post("/auth/login", json={"email": email, "password": password}), 200)
    auth = {"Authorization": f"Bearer {tok['access_token']}"}
    body = {
        "title": "Launch Day",
        "description": "A burst, measured.",
        "category": "engineering",
        "capacity": capacity,
        "waitlist_enabled": True,
    }
    cid = _ok(await client.post("/courses", json=body, headers=auth), 201)["id"]
    module = _ok(await client.post(f"/courses/{cid}/modules", json={"title": "Basics"}, headers=auth), 201)
    for i in range(lessons):
        lesson = {"title": f"Lesson {i + 1}", "type": "text", "content": f"# Lesson {i + 1}\nText."}
        _ok(await client.post(f"/courses/{cid}/modules/{module['id']}/lessons", json=lesson, headers=auth), 201)
    started = _ok(await client.post(f"/courses/{cid}/publish", headers=auth), 202)
    deadline = time.monotonic() + timeout
    while True:
        wf = _ok(await client.get(f"/workflows/{started['workflow_id']}", headers=auth), 200)
        if wf["status"] == "completed":
            return str(cid)
        if wf["status"] not in {"running", "not_started"} or time.monotonic() > deadline:
            raise RuntimeError(f"publishing workflow ended {wf['status']}: {wf}")
        await asyncio.sleep(0.3)


async def wait_http(url: str, timeout: float, sup: Supervisor) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    return
            for name, proc in sup.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}:\n{sup.log(name)[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} not answering after {timeout:.0f}s")
            await asyncio.sleep(0.3)


# --- load: requests retried until answered ------------------------------------------------------------------


def _backoff(tries: int, r: httpx.Response | None, rng: random.Random) -> float:
    if r is not None and r.headers.get("retry-after", "").isdigit():
        return min(5.0, float(r.headers["retry-after"])) + rng.uniform(0, 0.2)
    return rng.uniform(0.05, min(2.0, 0.1 * 2**tries))


async def call_until_answered(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    headers: dict[str, str],
    json: Any,
    retried: Counter[str],
    rng: random.Random,
    deadline: float,
) -> httpx.Response | None:
    """Send until a non-retryable answer (2xx or a 4xx other than 429), or None past `deadline`."""
    tries = 0
    while time.monotonic() < deadline:
        tries += 1
        r: httpx.Response | None = None
        try:
            r = await client.request(method, url, headers=headers, json=json)
        except httpx.TransportError as exc:
            retried[type(exc).__name__] += 1
        else:
            if r.status_code not in RETRY_STATUSES:
                return r
            retried[str(r.status_code)] += 1
        await asyncio.sleep(_backoff(tries, r, rng))
    return None


async def burst(
    client: httpx.AsyncClient,
    course_id: str,
    requests: list[StudentRequest],
    *,
    concurrency: int,
    rng: random.Random,
    deadline: float,
    progress: dict[float, asyncio.Event] | None = None,
) -> None:
    """Every student POSTs /enrollments once (retried with its Idempotency-Key), `concurrency` at a time; each
    event of `progress` is set once that fraction of the requests is answered."""
    queue: asyncio.Queue[StudentRequest] = asyncio.Queue()
    for req in requests:
        queue.put_nowait(req)
    done = 0

    async def client_loop() -> None:
        nonlocal done
        while not queue.empty():
            req = queue.get_nowait()
            headers = {**req.headers, "Idempotency-Key": f"chaos-{req.student_id}"}
            req.first_sent = time.monotonic()
            r = await call_until_answered(
                client,
                "POST",
                "/enrollments",
                headers=headers,
                json={"course_id": course_id},
                retried=req.retried,
                rng=rng,
                deadline=deadline,
            )
            req.answered = time.monotonic()
            req.tries = 1 + sum(req.retried.values())
            done += 1
            for fraction, event in (progress or {}).items():
                if done >= fraction * len(requests):
                    event.set()
            if r is None:
                req.error = "no answer before the deadline"
                continue
            req.status_code = r.status_code
            if r.status_code in (200, 201, 202):
                body = r.json()
                req.enrollment_id, req.enrollment_status = str(body["id"]), str(body["status"])
            else:
                req.error = f"{r.status_code} {r.text[:200]}"

    await asyncio.gather(*(client_loop() for _ in range(concurrency)))


# --- the database -------------------------------------------------------------------------------------------


async def db_query(dsn: str, sql: str, *args: Any, timeout: float = 120) -> list[asyncpg.Record]:
    """One query on a fresh connection, retried while PostgreSQL is away (it may be restarting)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = await asyncpg.connect(dsn, timeout=10)
            try:
                return list(await conn.fetch(sql, *args))
            finally:
                await conn.close()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def progress(dsn: str, course_id: str) -> dict[str, int]:
    """Where the run is: enrollments by status, undelivered events, welcome e-mails not yet sent."""
    rows = await db_query(
        dsn,
        """SELECT 'status:' || status AS k, count(*) AS n FROM enrollments WHERE course_id = $1 GROUP BY status
           UNION ALL SELECT 'outbox_unpublished', count(*) FROM outbox WHERE published_at IS NULL
           UNION ALL SELECT 'welcome_unsent', count(*) FROM notifications
                     WHERE kind = 'enrollment.welcome' AND email_status <> 'sent'""",
        uuid.UUID(course_id),
    )
    return {r["k"]: int(r["n"]) for r in rows}


def count_mail(mail_dir: Path) -> int:
    return sum(1 for p in mail_dir.glob("*.eml")) if mail_dir.exists() else 0


def read_welcome_mail(mail_dir: Path) -> tuple[Counter[str], dict[str, set[str]]]:
    """(welcome e-mail files per recipient, their distinct Message-IDs per recipient) in the mail sink."""
    per_rcpt: Counter[str] = Counter()
    ids: dict[str, set[str]] = {}
    parser = BytesHeaderParser()
    for path in mail_dir.glob("*.eml"):
        with open(path, "rb") as fh:
            msg = parser.parse(fh)
        if not str(msg.get("Subject", "")).startswith(WELCOME_SUBJECT):
            continue
        for rcpt in str(msg.get("X-Envelope-To", "")).split(","):
            per_rcpt[rcpt.strip().lower()] += 1
            ids.setdefault(rcpt.strip().lower(), set()).add(str(msg.get("Message-ID", path.name)))
    return per_rcpt, ids


# --- invariants ---------------------------------------------------------------------------------------------


@dataclass
class Row:
    """An enrollment with what the run needs to judge it."""

    id: str
    student_id: str
    email: str
    status: str
    created_at: datetime
    waitlisted_at: datetime | None
    admitted_at: datetime | None
    activated_at: datetime | None


def realtime_order_violations(order: list[str], first_sent: dict[str, float], answered: dict[str, float]) -> list[str]:
    """Enrollments in the order the database decided them (`order`); a violation is a pair where B is ahead of A
    although A's request was answered before B's was first sent. O(n): scan from the back, keeping the earliest
    answer among those behind."""
    out: list[str] = []
    earliest_behind: tuple[float, str] | None = None
    for eid in reversed(order):
        if earliest_behind is not None and eid in first_sent and earliest_behind[0] < first_sent[eid]:
            out.append(f"order: {eid} is ahead of {earliest_behind[1]}, whose request was answered before it was sent")
        if eid in answered and (earliest_behind is None or answered[eid] < earliest_behind[0]):
            earliest_behind = (answered[eid], eid)
    return out


def promotion_violations(waitlist: list[Row]) -> list[str]:
    """`waitlist`: every enrollment that was ever waitlisted, in waitlist order (waitlisted_at, id). The promoted
    ones must be its head, promoted in that order."""
    out: list[str] = []
    promoted = [r for r in waitlist if r.admitted_at is not None]
    head = waitlist[: len(promoted)]
    if [r.id for r in promoted] != [r.id for r in head]:
        skipped = [r.id for r in head if r.admitted_at is None]
        out.append(f"promotions: not the head of the waitlist (passed over: {skipped[:5]})")
    times = [r.admitted_at for r in promoted if r.admitted_at is not None]
    if any(b < a for a, b in itertools.pairwise(times)):
        out.append("promotions: not in waitlist order")
    return out


async def check(world: World, cfg: ChaosConfig, dropped: set[str], report: Report) -> None:
    """Count every effect and record each broken invariant in `report.violations`."""
    dsn, cid = world.dsn, uuid.UUID(world.course_id)
    v = report.violations
    rows = [
        Row(
            str(r["id"]),
            str(r["student_id"]),
            r["email"].lower(),
            r["status"],
            r["created_at"],
            r["waitlisted_at"],
            r["admitted_at"],
            r["activated_at"],
        )
        for r in await db_query(
            dsn,
            """SELECT e.id, e.student_id, u.email, e.status, e.created_at, e.waitlisted_at, e.admitted_at,
                      e.activated_at
               FROM enrollments e JOIN users u ON u.id = e.student_id WHERE e.course_id = $1""",
            cid,
        )
    ]

    async def per_enrollment(sql: str) -> Counter[str]:
        return Counter({str(r["eid"]): int(r["n"]) for r in await db_query(dsn, sql, cid)})

    activations = await per_enrollment(
        """SELECT h.enrollment_id AS eid, count(*) AS n FROM enrollment_history h JOIN enrollments e
           ON e.id = h.enrollment_id WHERE e.course_id = $1 AND h.to_status = 'active' GROUP BY 1"""
    )
    progress_rows = await per_enrollment(
        """SELECT p.enrollment_id AS eid, count(*) AS n FROM lesson_progress p JOIN enrollments e
           ON e.id = p.enrollment_id WHERE e.course_id = $1 GROUP BY 1"""
    )
    events: dict[str, Counter[str]] = {}
    for r in await db_query(
        dsn,
        """SELECT event_type, payload->'data'->>'enrollment_id' AS eid, count(*) AS n FROM outbox
           WHERE event_type IN ('enrollment.activated', 'analytics.enrollment_recorded')
             AND payload->'data'->>'course_id' = $1::uuid::text GROUP BY 1, 2""",
        cid,
    ):
        events.setdefault(r["event_type"], Counter())[str(r["eid"])] = int(r["n"])
    applied = await per_enrollment(
        """SELECT o.payload->'data'->>'enrollment_id' AS eid, count(*) AS n FROM outbox o
           JOIN processed_events p ON p.event_id = o.id AND p.consumer = 'analytics'
           WHERE o.event_type = 'analytics.enrollment_recorded' AND o.payload->'data'->>'course_id' = $1::uuid::text
           GROUP BY 1"""
    )
    welcomes: dict[str, list[str]] = {}
    for r in await db_query(
        dsn,
        """SELECT substr(n.dedupe_key, 9) AS eid, n.email_status FROM notifications n
           WHERE n.kind = 'enrollment.welcome' AND n.data->>'course_id' = $1::uuid::text""",
        cid,
    ):
        welcomes.setdefault(str(r["eid"]), []).append(r["email_status"])
    mail_per_rcpt, mail_ids = read_welcome_mail(world.mail_dir)

    # Students: one answer and one enrollment each.
    by_student: dict[str, list[Row]] = {}
    for row in rows:
        by_student.setdefault(row.student_id, []).append(row)
    answered_ok = [q for q in world.requests if q.error is None and q.enrollment_id]
    for q in world.requests:
        if q.error is not None:
            v.append(f"request of student {q.student_id}: {q.error}")
        mine = by_student.get(str(q.student_id), [])
        if len(mine) != 1:
            v.append(f"student {q.student_id} has {len(mine)} enrollments (expected 1)")
        elif q.enrollment_id and mine[0].id != q.enrollment_id:
            v.append(f"student {q.student_id} was answered {q.enrollment_id} but has {mine[0].id}")
    strangers = set(by_student) - {str(q.student_id) for q in world.requests}
    if strangers:
        v.append(f"{len(strangers)} enrollments of students who never asked")

    admitted = [r for r in rows if r.admitted_at is not None]
    waiting = [r for r in rows if r.admitted_at is None]
    promoted = [r for r in admitted if r.waitlisted_at is not None]
    expected_admitted = min(cfg.students, cfg.capacity + len(dropped))
    if len(admitted) != expected_admitted:
        v.append(
            f"{len(admitted)} admitted, expected {expected_admitted} (capacity {cfg.capacity} + {len(dropped)} drops)"
        )
    for r in admitted:
        ok_status = "dropped" if r.id in dropped else "active"
        problems = []
        if r.status != ok_status:
            problems.append(f"status {r.status}")
        if r.activated_at is None:
            problems.append("never activated")
        for what, got, want in (
            ("activations", activations[r.id], 1),
            ("enrollment.activated events", events.get("enrollment.activated", Counter())[r.id], 1),
            ("progress rows", progress_rows[r.id], cfg.lessons),
            ("analytics records", events.get("analytics.enrollment_recorded", Counter())[r.id], 1),
            ("analytics records applied", applied[r.id], 1),
            ("welcome notifications", len(welcomes.get(r.id, [])), 1),
            ("welcome notifications e-mailed", welcomes.get(r.id, []).count("sent"), 1),
            ("welcome e-mails (distinct Message-IDs)", len(mail_ids.get(r.email, ())), 1),
        ):
            if got != want:
                problems.append(f"{what} {got} (expected {want})")
        if problems:
            v.append(f"admitted enrollment {r.id}: " + ", ".join(problems))
    for r in waiting:
        if r.status != "waitlisted":
            v.append(f"never-admitted enrollment {r.id} is {r.status}")
        effects = activations[r.id] + progress_rows[r.id] + len(welcomes.get(r.id, [])) + mail_per_rcpt[r.email]
        if effects:
            v.append(f"waitlisted enrollment {r.id} has effects of an admission ({effects})")
    # The same e-mail delivered again (same Message-ID): SMTP accepted it but the worker could not record it (killed,
    # or PostgreSQL gone before its commit). Each disruption can do that to at most the e-mails then in flight.
    redelivered = sum(mail_per_rcpt.values()) - sum(len(x) for x in mail_ids.values())
    disruptions = sum(
        1 for e in report.events if (e.kind, e.target) in {("SIGKILL", "celery"), ("postgres restart", "postgres")}
    )
    allowed = cfg.redelivered_mail_per_disruption * disruptions
    if redelivered > allowed:
        v.append(f"{redelivered} welcome e-mails delivered again with the same Message-ID (allowed: {allowed})")

    # Order. The decision (seat or waitlist) is taken under the course's row lock, and the enrollment's first history
    # row is written there, so its serial id is the order of decision whatever timestamps the code stores.
    decided = await per_enrollment(
        """SELECT h.enrollment_id AS eid, min(h.id) AS n FROM enrollment_history h JOIN enrollments e
           ON e.id = h.enrollment_id WHERE e.course_id = $1 GROUP BY 1"""
    )
    order = sorted(rows, key=lambda r: (decided.get(r.id, 0), r.id))
    first_sent: dict[str, float] = {}
    answered: dict[str, float] = {}
    for q in answered_ok:
        if q.enrollment_id and q.first_sent is not None and q.answered is not None:
            first_sent[q.enrollment_id], answered[q.enrollment_id] = q.first_sent, q.answered
    v += [f"decisions: {x}" for x in realtime_order_violations([r.id for r in order], first_sent, answered)]
    direct = [r for r in admitted if r.waitlisted_at is None]
    ever_waitlisted = sorted((r for r in rows if r.waitlisted_at is not None), key=lambda r: (r.waitlisted_at, r.id))
    if direct and ever_waitlisted and max(decided[r.id] for r in direct) > min(decided[r.id] for r in ever_waitlisted):
        v.append("a student was given a seat after another had been waitlisted (order of decision)")
    # The waitlist's own order (waitlisted_at, id: what promotion follows) must respect real time too.
    v += [f"waitlist: {x}" for x in realtime_order_violations([r.id for r in ever_waitlisted], first_sent, answered)]
    v += promotion_violations(ever_waitlisted)

    # The pipeline drained, nothing parked, analytics agree with the source.
    totals = {
        r["k"]: int(r["n"])
        for r in await db_query(
            dsn,
            """SELECT 'outbox_unpublished' AS k, count(*) AS n FROM outbox WHERE published_at IS NULL
               UNION ALL SELECT 'dead_letters', count(*) FROM dead_letters WHERE replayed_at IS NULL
               UNION ALL SELECT 'emails_failed', count(*) FROM notifications WHERE email_status = 'failed'
               UNION ALL SELECT 'seats_taken', seats_taken FROM courses WHERE id = $1
               UNION ALL SELECT 'recorded_by_workflow_counter', coalesce(sum(value), 0)::bigint
                         FROM analytics_counters WHERE metric = 'enrollments_recorded_by_workflow'""",
            cid,
        )
    }
    for k in ("outbox_unpublished", "dead_letters", "emails_failed"):
        if totals[k]:
            v.append(f"{k}: {totals[k]}")
    live = sum(1 for r in admitted if r.id not in dropped)
    if totals["seats_taken"] != live:
        v.append(f"seats_taken {totals['seats_taken']} but {live} live admitted enrollments")
    if totals["recorded_by_workflow_counter"] != len(admitted):
        v.append(
            f"analytics counted {totals['recorded_by_workflow_counter']} recorded enrollments, {len(admitted)} admitted"
        )
    async with httpx.AsyncClient(base_url=world.api, timeout=60) as client:
        r = await call_until_answered(
            client,
            "GET",
            "/analytics/reconcile",
            headers=world.admin_headers,
            json=None,
            retried=Counter(),
            rng=random.Random(),
            deadline=time.monotonic() + 60,
        )
    if r is None or r.status_code != 200:
        v.append(f"/analytics/reconcile answered {None if r is None else r.status_code}")
    else:
        report.reconcile = r.json()
        if report.reconcile.get("total_drift") != 0:
            drift = {k: d for k, d in report.reconcile.get("drift", {}).items() if d}
            v.append(f"analytics reconcile drift {report.reconcile.get('total_drift')}: {drift}")

    report.counts.update(
        {
            "students (requests)": len(world.requests),
            "answered 2xx": len(answered_ok),
            "errors (final non-2xx or no answer)": sum(1 for q in world.requests if q.error is not None),
            "enrollments (rows)": len(rows),
            "students with !=1 enrollment": sum(
                1 for q in world.requests if len(by_student.get(str(q.student_id), [])) != 1
            ),
            "admitted (ever)": len(admitted),
            "  admitted at request": len(direct),
            "  promoted from the waitlist": len(promoted),
            "  dropped by the run": len(dropped),
            "waitlisted (still)": len(waiting),
            "active": sum(1 for r in rows if r.status == "active"),
            "activation history rows": sum(activations.values()),
            "enrollment.activated events": sum(events.get("enrollment.activated", Counter()).values()),
            "lesson_progress rows": sum(progress_rows.values()),
            "analytics records (events)": sum(events.get("analytics.enrollment_recorded", Counter()).values()),
            "analytics records applied": sum(applied.values()),
            "welcome notifications": sum(len(x) for x in welcomes.values()),
            "welcome e-mails in the sink": sum(mail_per_rcpt.values()),
            "distinct welcome Message-IDs": sum(len(x) for x in mail_ids.values()),
            "welcome e-mails delivered twice (same Message-ID)": redelivered,
            **totals,
            "reconcile total_drift": report.reconcile.get("total_drift"),
        }
    )


# --- the run ------------------------------------------------------------------------------------------------


async def chaos_schedule(
    cfg: ChaosConfig,
    sup: Supervisor,
    world: World,
    rng: random.Random,
    t0: float,
    stop: asyncio.Event,
    burst_progress: dict[float, asyncio.Event],
) -> None:
    """SIGKILL `cfg.kills` processes and restart PostgreSQL `cfg.postgres_restarts` times. So that both surely hit
    requests in flight, one API kill comes when a quarter of the burst is answered and the first restart when half
    of it is; the other kills come at random moments of the first `cfg.chaos_seconds`, other restarts in its
    middle third."""
    targets = [t for t in (cfg.targets or tuple(sup.argv)) if t in sup.argv]
    plan = kill_plan(targets, cfg.kills, rng) if targets else []
    pg_lock = asyncio.Lock()

    async def wait(until: float | asyncio.Event) -> bool:
        with contextlib.suppress(TimeoutError):
            if isinstance(until, asyncio.Event):
                waits = [asyncio.ensure_future(until.wait()), asyncio.ensure_future(stop.wait())]
                _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                for task in pending:
                    task.cancel()
            elif (delay := t0 + until - time.monotonic()) > 0:
                await asyncio.wait_for(stop.wait(), delay)
        return not stop.is_set()

    async def act(what: str) -> None:
        if what != "postgres":
            for _ in range(600):  # a kill of a process already down would not count: wait (≤ 60 s) for it
                if sup.running(what) or stop.is_set():
                    break
                await asyncio.sleep(0.1)
            event = sup.kill(what)
            cfg.log(f"+{event.at_s:.1f}s SIGKILL {event.target} ({event.detail})")
            return
        async with pg_lock:
            at_s = time.monotonic() - t0
            took = await asyncio.to_thread(world.engines.restart_postgres)
            sup.events.append(ChaosEvent(at_s, "postgres restart", "postgres", f"immediate mode, back in {took:.1f}s"))
            cfg.log(f"+{at_s:.1f}s PostgreSQL restarted (immediate mode) in {took:.1f}s")

    triggered: list[tuple[asyncio.Event, str]] = []
    if "api" in plan and 0.25 in burst_progress:
        plan.remove("api")
        triggered.append((burst_progress[0.25], "api"))
    restarts = cfg.postgres_restarts
    if restarts and 0.5 in burst_progress:
        restarts -= 1
        triggered.append((burst_progress[0.5], "postgres"))
    window = cfg.chaos_seconds
    timed = sorted(
        [(rng.uniform(0.03, 0.97) * window, target) for target in plan]
        + [(rng.uniform(1 / 3, 2 / 3) * window, "postgres") for _ in range(restarts)]
    )

    async def one(until: float | asyncio.Event, what: str) -> None:
        if await wait(until):
            await act(what)

    async def in_turn() -> None:
        for at, what in timed:
            await one(at, what)

    await asyncio.gather(in_turn(), *(one(ev, what) for ev, what in triggered))


async def burst_ticker(cfg: ChaosConfig, requests: list[StudentRequest], t0: float, every: float = 10.0) -> None:
    """A progress line every `every` seconds while the burst runs."""
    while True:
        await asyncio.sleep(every)
        answered = sum(1 for q in requests if q.answered is not None)
        retried = sum(sum(q.retried.values()) for q in requests)
        cfg.log(f"+{time.monotonic() - t0:.0f}s burst: {answered}/{len(requests)} answered, {retried} tries retried")


async def drop_some(world: World, cfg: ChaosConfig, rng: random.Random, deadline: float) -> set[str]:
    """Drop `cfg.drops` enrollments once they are active (through the API, retried): their seats go to the
    head of the waitlist. Returns the dropped enrollment ids."""
    if not cfg.drops:
        return set()
    by_id = {q.enrollment_id: q for q in world.requests if q.enrollment_id}
    while True:
        active = [
            str(r["id"])
            for r in await db_query(
                world.dsn,
                "SELECT id FROM enrollments WHERE course_id = $1 AND status = 'active'",
                uuid.UUID(world.course_id),
            )
        ]
        if len(active) >= cfg.drops or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    chosen = rng.sample(sorted(active), min(cfg.drops, len(active)))
    dropped: set[str] = set()
    async with httpx.AsyncClient(base_url=world.api, timeout=cfg.request_timeout) as client:
        for eid in chosen:
            q = by_id.get(eid)
            if q is None:
                continue
            r = await call_until_answered(
                client,
                "DELETE",
                f"/enrollments/{eid}",
                headers=q.headers,
                json=None,
                retried=q.retried,
                rng=rng,
                deadline=deadline,
            )
            if r is not None and r.status_code == 200:
                dropped.add(eid)
            else:
                cfg.log(f"drop of {eid} answered {None if r is None else r.status_code}")
    return dropped


async def settle(world: World, cfg: ChaosConfig, sup: Supervisor, t0: float, expect_admitted: int) -> float | None:
    """Wait until nothing is pending, the outbox is empty and every welcome e-mail reached the sink."""
    deadline = time.monotonic() + cfg.settle_timeout
    last = ""
    while time.monotonic() < deadline:
        p = await progress(world.dsn, world.course_id)
        mail = count_mail(world.mail_dir)
        active = p.get("status:active", 0) + p.get("status:dropped", 0)
        done = (
            p.get("status:pending", 0) == 0
            and active >= expect_admitted
            and p.get("outbox_unpublished", 0) == 0
            and p.get("welcome_unsent", 0) == 0
            and mail >= active
            and sup.all_running()
        )
        line = f"{p} mail={mail}"
        if line != last:
            cfg.log(f"+{time.monotonic() - t0:.0f}s {line}")
            last = line
        if done:
            return time.monotonic() - t0
        await asyncio.sleep(1.0)
    return None


async def run_chaos(cfg: ChaosConfig, data_dir: Path) -> Report:
    """Bring the product up under `data_dir`, run the burst with its chaos, let it settle, check every invariant."""
    rng = random.Random(cfg.seed)
    report = Report({k: v for k, v in vars(cfg).items() if k not in {"log", "env"}} | {"env": dict(cfg.env)})
    t_setup = time.monotonic()
    cfg.log(f"starting engines under {data_dir}")
    world = await asyncio.to_thread(start_engines, data_dir, cfg)
    t0 = time.monotonic()
    sup = Supervisor({}, world.env, world.data_dir / "logs", rng, cfg.restart_delay, lambda: time.monotonic() - t0)
    report.logs = str(sup.log_dir)
    stop = asyncio.Event()
    watcher: asyncio.Task[None] | None = None
    try:
        port = free_port()
        sup.argv = run_processes(LOCALHOST, port, kafka=bool(world.env.get("KAFKA_BOOTSTRAP_SERVERS")))
        # The pools as `smartcourse run` sizes them (the supervisor starts every process with this environment).
        line = await asyncio.to_thread(size_pools, sup.env, pool_processes(sup.argv), others=CELERY_CONNECTIONS)
        if line:
            cfg.log(line)
        world.api = f"http://{LOCALHOST}:{port}"
        sup.start_all()
        await wait_http(f"{world.api}/health", 120, sup)
        cfg.log(f"processes {sorted(sup.argv)} up; API {world.api}; logs {sup.log_dir}")
        limits = httpx.Limits(max_connections=cfg.concurrency, max_keepalive_connections=cfg.concurrency)
        async with httpx.AsyncClient(base_url=world.api, timeout=cfg.request_timeout, limits=limits) as client:
            world.course_id = await create_course(client, capacity=cfg.capacity, lessons=cfg.lessons)
            admin_id, students = await create_users(world.env["DATABASE_URL"], cfg.students)
            world.admin_headers = tokens(world.env, [(admin_id, "admin")])[0]
            heads = tokens(world.env, [(sid, "student") for sid, _ in students])
            world.requests = [StudentRequest(sid, email, h) for (sid, email), h in zip(students, heads, strict=True)]
            report.timings["setup"] = time.monotonic() - t_setup
            cfg.log(f"course {world.course_id} published, {cfg.students} students; the burst starts")

            t0 = time.monotonic()
            wall0 = time.time()
            watcher = asyncio.create_task(sup.watch(stop))
            marks = {0.25: asyncio.Event(), 0.5: asyncio.Event()}
            chaos = asyncio.create_task(chaos_schedule(cfg, sup, world, rng, t0, stop, marks))
            deadline = t0 + cfg.settle_timeout
            ticker = asyncio.create_task(burst_ticker(cfg, world.requests, t0))
            await burst(
                client,
                world.course_id,
                world.requests,
                concurrency=cfg.concurrency,
                rng=rng,
                deadline=deadline,
                progress=marks,
            )
            ticker.cancel()
            t_burst = time.monotonic() - t0
            report.timings["admission phase (first request to last answer)"] = t_burst
            report.counts["admission rate (answers/s)"] = round(len(world.requests) / t_burst, 1) if t_burst else None
            cfg.log(f"burst answered in {t_burst:.1f}s ({len(world.requests) / max(t_burst, 1e-9):.0f}/s)")
        dropped = await drop_some(world, cfg, rng, time.monotonic() + cfg.settle_timeout)
        await chaos
        expect = min(cfg.students, cfg.capacity + len(dropped))
        settled = await settle(world, cfg, sup, t0, expect)
        report.timings["settled (from first request)"] = settled
        if settled is None:
            report.violations.append(f"did not settle within {cfg.settle_timeout:.0f}s")
        else:
            await asyncio.sleep(cfg.quiet_seconds)
        last_active = await db_query(
            world.dsn,
            """SELECT extract(epoch FROM max(activated_at)) AS t, count(*) AS n FROM enrollments
               WHERE course_id = $1 AND admitted_at IS NOT NULL AND waitlisted_at IS NULL""",
            uuid.UUID(world.course_id),
        )
        if last_active and last_active[0]["t"] is not None:
            all_active = float(last_active[0]["t"]) - wall0
            report.timings["all admitted-at-request active (from first request)"] = all_active
            report.counts["drain rate (admitted at request / s until all active)"] = round(
                int(last_active[0]["n"]) / all_active, 1
            )
        report.events = sorted(sup.events, key=lambda e: e.at_s)
        await check(world, cfg, dropped, report)
        for q in world.requests:
            for k, n in q.retried.items():
                report.retried[k] = report.retried.get(k, 0) + n
        if report.retried.get("500"):  # a crash or a restart under a request is a 503 to retry, never a 500
            report.violations.append(f"answered 500 (internal_error) {report.retried['500']} time(s); see the API log")
        report.counts["restarts by the supervisor"] = dict(sup.restarts)
        return report
    finally:
        stop.set()
        if watcher is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        sup.stop_all()
        await asyncio.to_thread(world.engines.stop)
