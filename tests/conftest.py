"""Shared fixtures: real engines (embedded by default, the stack's when configured), the app, a worker."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]
REQUIRE_ENGINES = os.environ.get("SMARTCOURSE_REQUIRE_ENGINES") == "1"
_exit_status = 0


# --- engines ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def data_dir(request: pytest.FixtureRequest) -> Iterator[Path]:
    """The engines' data directory, outside pytest's basetemp: a second pytest session of the same user, at its
    start, closes `/tmp/pytest-of-<user>` to 0700, and under root the embedded PostgreSQL (run as pgserver's own user)
    then lost its data directory and PANICked mid-suite ("could not open file .../pg_control: Permission denied";
    seen with two sessions at once: 178 failures). Removed after a suite that passed; kept, for its logs, otherwise."""
    path = Path(tempfile.mkdtemp(prefix="smartcourse-tests-"))
    yield path
    if not request.session.testsfailed:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def pg_tmp() -> Iterator[Path]:
    """A test's own directory for an embedded PostgreSQL, outside pytest's basetemp as `data_dir` is (and for the same
    reason: another pytest session starting meanwhile closes `/tmp/pytest-of-<user>` to 0700, and the server, run as
    pgserver's user, cannot start again in it: a CI run failed so, with `pg_ctl: could not access directory`)."""
    path = Path(tempfile.mkdtemp(prefix="smartcourse-pg-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def settings(data_dir: Path) -> Iterator[Any]:
    """Settings for the suite: embedded PostgreSQL and Temporal under a fresh data directory."""
    from smartcourse import config
    from smartcourse.bootstrap import embedded_engines

    os.environ["SMARTCOURSE_DATA_DIR"] = str(data_dir)
    os.environ["SMARTCOURSE_ENV"] = "test"
    # /health checks no background heartbeats here: the suite runs its worker in process, and its Celery workers
    # come and go (tests/e2e/test_health_liveness.py sets the list it checks).
    os.environ["SMARTCOURSE_BACKGROUND_PROCESSES"] = ""
    for var in ("DATABASE_URL", "TEMPORAL_ADDRESS", "MONGODB_URL", "S3_BUCKET", "KAFKA_BOOTSTRAP_SERVERS"):
        os.environ.pop(var, None)
    config.get_settings.cache_clear()
    base = config.get_settings()
    eng = embedded_engines(base)
    os.environ["DATABASE_URL"] = eng.postgres_url()
    os.environ["TEMPORAL_ADDRESS"] = eng.temporal_address()
    os.environ["TEMPORAL_TASK_QUEUE"] = f"tests-{uuid.uuid4().hex[:8]}"
    config.get_settings.cache_clear()
    s = config.get_settings()
    from smartcourse.migrations import upgrade_head

    upgrade_head(s.database_url or "")
    yield s
    eng.stop()
    eng.stop_orphans()  # one a test's subprocess started in this data dir and left by os._exit (a pool's child)


@pytest.fixture(scope="session")
async def container(settings: Any) -> AsyncIterator[Any]:
    from smartcourse.bootstrap import build_container, set_container

    global _suite_container
    c = build_container(settings)
    set_container(c)
    _suite_container = c
    yield c
    _suite_container = None
    set_container(None)
    await c.aclose()


_suite_container: Any = None


@pytest.fixture
def restore_starter(container: Any) -> Iterator[Any]:
    """The suite container's real WorkflowStarter (for a test that installs a fake of the port), put back after."""
    real = container.workflow_starter()
    try:
        yield real
    finally:
        container.use_workflow_starter(real)


@contextlib.asynccontextmanager
async def dispatchers_paused(container: Any) -> AsyncIterator[None]:
    """Hold the dispatchers' advisory lock: the session's dispatcher finds it taken and leaves the outbox's
    admissions alone. A test that starts an enrollment workflow itself needs it: the dispatcher would otherwise
    start the same workflow id first (WorkflowAlreadyStarted), or mark rows the test means to dispatch."""
    from sqlalchemy import func, select

    from smartcourse.services import dispatcher

    async with container.engine.connect() as conn:
        await conn.execute(select(func.pg_advisory_lock(dispatcher.LOCK_KEY)))
        await conn.commit()
        try:
            yield
        finally:
            await conn.execute(select(func.pg_advisory_unlock(dispatcher.LOCK_KEY)))
            await conn.commit()


@pytest.fixture
async def paused_dispatchers(container: Any) -> AsyncIterator[None]:
    """`dispatchers_paused` for the whole test."""
    async with dispatchers_paused(container):
        yield


@pytest.fixture(autouse=True)
def _the_suite_container_is_current() -> None:
    """Each test starts with the suite's container installed process-wide. Code that runs in another event loop
    (a Lambda handler, the fuzzer's app calls) makes `get_container()` build and install a container of its own,
    which would otherwise leak into later tests (their settings changes and scripted models would not apply)."""
    if _suite_container is not None:
        from smartcourse.bootstrap import set_container

        set_container(_suite_container)


@pytest.fixture(scope="session")
async def worker(container: Any) -> AsyncIterator[Any]:
    """The Temporal worker, the outbox relay and the enrollment workflow dispatcher, running in the test process."""
    from smartcourse.consumers import InProcessPublisher, registry
    from smartcourse.services.dispatcher import run_dispatcher
    from smartcourse.services.outbox import run_relay
    from workflows.worker import build_worker

    client = await container.temporal()
    w = build_worker(client, container)
    stop = asyncio.Event()
    relay = asyncio.create_task(
        run_relay(
            container.sessionmaker,
            InProcessPublisher(container.sessionmaker, registry()),
            stop=stop,
            idle_sleep=0.1,
        )
    )
    dispatch = asyncio.create_task(run_dispatcher(container, stop=stop, idle_sleep=0.05))
    async with w:
        yield w
    stop.set()
    with contextlib.suppress(asyncio.CancelledError):
        await relay
        await dispatch


@pytest.fixture(scope="session")
def app(container: Any) -> Any:
    from smartcourse.api.local import build_local_app

    return build_local_app()


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


# --- helpers ----------------------------------------------------------------------------------


class Api:
    """Small helpers over the HTTP API, used by the e2e tests."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def user(self, role: str = "student", *, password: str = "correct-horse-1") -> dict[str, Any]:
        email = f"{role}-{uuid.uuid4().hex[:10]}@example.com"
        r = await self.client.post(
            "/auth/register",
            json={"email": email, "password": password, "full_name": f"A {role}", "role": role},
        )
        assert r.status_code == 201, r.text
        user = r.json()
        r = await self.client.post("/auth/login", json={"email": email, "password": password})
        assert r.status_code == 200, r.text
        tokens = r.json()
        return {
            **user,
            **tokens,
            "password": password,
            "headers": {"Authorization": f"Bearer {tokens['access_token']}"},
        }

    async def admin(self, container: Any) -> dict[str, Any]:
        from smartcourse.services import accounts

        email, password = f"admin-{uuid.uuid4().hex[:10]}@example.com", "admin-pass-123"
        async with container.uow() as uow:
            await accounts.create_admin(uow=uow, email=email, password=password, full_name="Admin")
        r = await self.client.post("/auth/login", json={"email": email, "password": password})
        tokens = r.json()
        return {**tokens, "headers": {"Authorization": f"Bearer {tokens['access_token']}"}}

    async def course(self, owner: dict[str, Any], **fields: Any) -> dict[str, Any]:
        body = {
            "title": "Intro to Testing",
            "description": "Learn to test.",
            "category": "engineering",
            **fields,
        }
        r = await self.client.post("/courses", json=body, headers=owner["headers"])
        assert r.status_code == 201, r.text
        return r.json()

    async def module(self, owner: dict[str, Any], course_id: str, title: str = "Basics") -> dict[str, Any]:
        r = await self.client.post(f"/courses/{course_id}/modules", json={"title": title}, headers=owner["headers"])
        assert r.status_code == 201, r.text
        return r.json()

    async def lesson(self, owner: dict[str, Any], course_id: str, module_id: str, **body: Any) -> dict[str, Any]:
        body = body or {"title": "Why test", "type": "text", "content": "# Why\nBecause."}
        r = await self.client.post(
            f"/courses/{course_id}/modules/{module_id}/lessons", json=body, headers=owner["headers"]
        )
        assert r.status_code == 201, r.text
        return r.json()

    async def lesson_update(
        self, owner: dict[str, Any], course_id: str, lesson: dict[str, Any], **body: Any
    ) -> dict[str, Any]:
        r = await self.client.put(
            f"/courses/{course_id}/modules/{lesson['module_id']}/lessons/{lesson['id']}",
            json=body,
            headers=owner["headers"],
        )
        assert r.status_code == 200, r.text
        return r.json()

    async def wait_workflow(self, owner: dict[str, Any], workflow_id: str, timeout: float = 30) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            r = await self.client.get(f"/workflows/{workflow_id}", headers=owner["headers"])
            # A busy machine's Temporal answering too late is said as such (503): asked again until the deadline.
            busy = r.status_code == 503 and r.json().get("code") == "workflow_engine_unavailable"
            assert r.status_code == 200 or busy, r.text
            body = r.json() if not busy else {"status": "running", "answer": r.json()}
            if body["status"] not in {"running", "not_started"}:
                return body
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"workflow still {body['status']}: {body}")
            await asyncio.sleep(0.1)

    async def publish_failing_at_extract(self, owner: dict[str, Any], course_id: str, holds: Path) -> dict[str, Any]:
        """Publish with the extract step made to fail (a `holds` fault file, removed afterwards): the run's body."""
        fail = holds / f"publish.extract.{course_id}.fail"
        fail.touch()
        try:
            r = await self.client.post(f"/courses/{course_id}/publish", headers=owner["headers"])
            assert r.status_code == 202, r.text
            return await self.wait_workflow(owner, r.json()["workflow_id"], timeout=120)
        finally:
            fail.unlink()

    async def published_course(self, owner: dict[str, Any], **fields: Any) -> dict[str, Any]:
        course = await self.course(owner, **fields)
        module = await self.module(owner, course["id"])
        await self.lesson(owner, course["id"], module["id"])
        r = await self.client.post(f"/courses/{course['id']}/publish", headers=owner["headers"])
        assert r.status_code == 202, r.text
        wf = await self.wait_workflow(owner, r.json()["workflow_id"])
        assert wf["status"] == "completed", wf
        return course


@pytest.fixture
def api(client: httpx.AsyncClient) -> Api:
    return Api(client)


# --- celery and mail ---------------------------------------------------------------------------


class CeleryWorker:
    """A real `celery -A smartcourse.tasks worker` subprocess (own session, so kill() takes its pool too)."""

    def __init__(self, env: dict[str, str], log_path: Path, name: str) -> None:
        self.env, self.log_path, self.name = env, log_path, name
        self.proc: Any = None

    def start(self, timeout: float = 60) -> None:
        import subprocess
        import time

        from smartcourse.cli import CELERY_WORKER

        start = self.log_offset()
        argv = [*CELERY_WORKER, "--concurrency", "2", "-n", f"{self.name}-{uuid.uuid4().hex[:6]}@%h"]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                argv, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while " ready." not in self.log_since(start):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"celery worker did not start:\n{self.log_since(start)[-3000:]}")
            time.sleep(0.2)

    def log_offset(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def log_since(self, offset: int) -> str:
        if not self.log_path.exists():
            return ""
        with open(self.log_path, "rb") as fh:
            fh.seek(offset)
            return fh.read().decode("utf-8", "replace")

    def kill(self) -> None:
        """SIGKILL the worker and its pool children at once: no warm shutdown, no ack, no requeue."""
        import signal

        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        import signal
        import subprocess

        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()


def celery_worker_env(settings: Any, **overrides: str) -> dict[str, str]:
    """The environment of a test worker: the suite's database, fast retries, test-only fault injection."""
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url or "",
        "SMARTCOURSE_DATA_DIR": str(Path(settings.data_dir).resolve()),
        "SMARTCOURSE_ENV": "test",
        "SMARTCOURSE_TEST_HOLD_DIR": str(Path(settings.data_dir).resolve() / "holds"),
        "CELERY_MAX_RETRIES": "2",
        "EMAIL_MAX_RETRIES": "2",
        "CELERY_VISIBILITY_TIMEOUT": "8",
        **overrides,
    }
    (Path(settings.data_dir) / "holds").mkdir(parents=True, exist_ok=True)
    return env


@pytest.fixture(scope="module")
def celery_worker(session_celery_worker: CeleryWorker) -> CeleryWorker:
    """The session's Celery worker, started again when it has died since: a test that closes every Redis client
    (tests/integration/test_redis_reconnect.py: the broker's connection too) can leave Celery's prefork pool unable to
    register again ("Unrecoverable error: ValueError('file descriptor is None')", a Celery bug, worked around since
    by `smartcourse.celery_pool`), and every later test of that xdist lane that waited for an e-mail failed (CI,
    session 30). Kept for any other death: one test's crash must not fail the module's others."""
    worker = session_celery_worker
    if worker.proc is None or worker.proc.poll() is not None:
        worker.start()
    return worker


@pytest.fixture(scope="session")
def session_celery_worker(settings: Any) -> Iterator[CeleryWorker]:
    """A Celery worker on the session's embedded Redis broker, sending through the embedded SMTP sink."""
    from smartcourse import config
    from smartcourse.bootstrap import resolve_settings

    resolved = resolve_settings(settings, need=("redis", "smtp"))
    overrides = {
        "REDIS_URL": resolved.redis_url or "",
        "SMTP_HOST": resolved.smtp_host or "",
        "SMTP_PORT": str(resolved.smtp_port),
    }
    os.environ.update(overrides)  # this process's Celery app (enqueue_email) uses the same broker
    os.environ.pop("CELERY_BROKER_URL", None)
    config.get_settings.cache_clear()
    # ... even when a unit test read the app's lazy configuration before this session's settings existed (a task's
    # attribute does): it then held the default data directory's broker (var/), and every enqueue of the suite
    # went where no worker listens.
    from smartcourse import tasks

    tasks.app.conf.update(tasks.celery_config(config.get_settings()))
    tasks.app.close()  # its connection and producer pools, made for the old broker
    worker = CeleryWorker(celery_worker_env(resolved, **overrides), Path(settings.data_dir) / "celery.log", "embedded")
    worker.start()
    yield worker
    worker.stop()


def read_mail(mail_dir: Path, *, to: str | None = None) -> list[Any]:
    """The messages the SMTP sink stored in `mail_dir` (oldest first), optionally only those to `to`."""
    from email import policy
    from email.parser import BytesParser

    out = []
    for path in sorted(Path(mail_dir).glob("*.eml")):
        msg = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        if to is None or to.lower() in str(msg.get("X-Envelope-To", "")).lower():
            out.append(msg)
    return out


# --- event loop -------------------------------------------------------------------------------


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Any]:
    """Every async test and fixture runs on uvloop, the loop of the product's processes (`smartcourse.aio.run`, and
    uvicorn's): the in-process worker and API meet the loop they meet in production. On asyncio's loop the suite
    once passed while every material with over 64 KiB of text failed to publish under `smartcourse worker` (uvloop's
    `add_reader` leaves a pipe non-blocking; docs/benchmarks.md, twenty-third pass)."""
    import uvloop

    return {"uvloop": uvloop.new_event_loop}


# --- ordering ---------------------------------------------------------------------------------


#: Tests that start a product or a tool of their own and use none of the suite's engines. Under `make test` (`-n 2`)
#: they run on a second worker beside the rest, which stays on one worker in its order (`pytest_xdist_make_scheduler`):
#: together they are ~2 of the suite's ~11 minutes, mostly spent waiting for processes they kill and restart.
BESIDE = (
    "tests/integration/test_chaos.py::test_a_burst_under_kills",
    "tests/integration/test_run.py::test_run_starts_the_product",
    "tests/integration/test_temporal_core_logs.py::",
    "tests/integration/test_function_pack.py::test_template_passes_cfn_lint",
    "tests/integration/test_function_pack.py::test_the_expanded_template_passes_cfn_lint",
    "tests/integration/test_engine_revive.py::",
)


UNIT = "tests/unit/"
#: Whole files of the suite that need none of its order (they make their own accounts and courses, and count nothing
#: the suite's analytics checks read): under `make test` they run in the second lane, on a set of engines of its own,
#: which takes the suite's lane down by their length (the suite's lane set the pace: ~10 of its ~11 minutes; session
#: 38 measured the lanes' test time at 711 s and 282 s, and moved ~200 s of files that start processes of their own).
ON_THEIR_OWN = (
    "tests/e2e/test_content_search.py::",
    "tests/e2e/test_erasure.py::",
    "tests/e2e/test_fuzz.py::",
    "tests/integration/test_serve.py::",
    "tests/integration/test_worker_recovery.py::",
    "tests/integration/test_publish_recovery.py::",
)
#: ... but for this one, whose e-mail (sent through this process's Celery app to the session's worker) never arrived
#: in the second lane, twice, after that lane's unit tests had run in the same process (cause not found: session 37).
STAYS_IN_THE_SUITE = ("tests/e2e/test_content_search.py::test_unreadable_material_is_skipped_and_reported",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The unit tests first (under xdist: before the `BESIDE` tests of their lane, which lower its priority: the unit
    tests that bound a wait in seconds keep the CPU share they had in the suite's lane), and the tests marked `last`
    after everything else (the reconcile check must see all the suite did)."""
    items.sort(key=lambda item: (item.get_closest_marker("last") is not None, not item.nodeid.startswith(UNIT)))


def beside_the_suite(nodeid: str) -> bool:
    """The `BESIDE` tests, and the unit tests (none uses the suite's engines: a test that does belongs in
    tests/integration), which thus leave the suite's lane about a minute sooner; and the files `ON_THEIR_OWN`."""
    return nodeid.startswith((*BESIDE, UNIT, *ON_THEIR_OWN)) and not nodeid.startswith(STAYS_IN_THE_SUITE)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Two lanes under xdist: the tests `beside_the_suite`, and the suite (one worker, one set of engines, in its
    order; the analytics checks count what every earlier test did). `--dist loadgroup` would do it with markers, but
    pytest 9 ignores the node id xdist 3.8 rewrites for it."""
    from xdist.scheduler import LoadScopeScheduling

    class TwoLanes(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return "beside" if beside_the_suite(nodeid) else "suite"

    return TwoLanes(config, log)


# --- clean exit -------------------------------------------------------------------------------


#: The CPU priority drop of the `BESIDE` tests (and the processes they start), from the first of them on (the unit tests
#: run before): on two cores, the suite's lane keeps its pace and the lane beside it takes what the suite leaves.
BESIDE_NICE = 10


def pytest_runtest_setup(item: pytest.Item) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER") and item.nodeid.startswith(BESIDE):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, 0, max(BESIDE_NICE, os.getpriority(os.PRIO_PROCESS, 0)))


def pytest_configure(config: pytest.Config) -> None:
    """A data directory of the session's own for what reads the settings outside the `settings` fixture (a unit test
    that builds a Celery app starts an embedded Redis there, the development JWT secret is written there): not the
    checkout's `var/`, nor the one a developer's `make run` uses. Each xdist worker makes its own; the `settings`
    fixture replaces it with the engines' directory."""
    import atexit

    path = tempfile.mkdtemp(prefix="smartcourse-tests-default-")
    os.environ["SMARTCOURSE_DATA_DIR"] = path
    atexit.register(shutil.rmtree, path, True)  # first registered, last run: after the engines started there stop


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _exit_status
    _exit_status = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """temporalio's core can abort the interpreter at exit (sdk-python#300): leave with pytest's own status."""
    import atexit

    atexit._run_exitfuncs()  # stop the embedded engines we started
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_status)


@pytest.fixture(scope="module")
def holds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Fault-injection files for the in-process worker and consumers (`<step>.<subject>.fail`, see
    smartcourse.faults), one directory per test module, the previous setting restored afterwards."""
    directory = tmp_path_factory.mktemp("holds")
    before = os.environ.get("SMARTCOURSE_TEST_HOLD_DIR")
    os.environ["SMARTCOURSE_TEST_HOLD_DIR"] = str(directory)
    yield directory
    if before is None:
        os.environ.pop("SMARTCOURSE_TEST_HOLD_DIR", None)
    else:
        os.environ["SMARTCOURSE_TEST_HOLD_DIR"] = before


async def migrate_cli(database_url: str, *options: str) -> subprocess.CompletedProcess[str]:
    """`smartcourse migrate` run as an operator runs it, against `database_url`."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "smartcourse.cli", "migrate", *options],
        env={**os.environ, "DATABASE_URL": database_url},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


@contextlib.asynccontextmanager
async def scratch_database(
    settings: Any, prefix: str, *, revision: str | None = None
) -> AsyncIterator[tuple[str, Any]]:
    """A database of its own on the suite's server, dropped afterwards, migrated to `revision` when given (a migration
    test's starting point): (its URL, an engine on it)."""
    from alembic import command
    from sqlalchemy import make_url, text
    from sqlalchemy.ext.asyncio import create_async_engine

    from smartcourse.migrations import alembic_config

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    base = make_url(settings.database_url)
    admin = create_async_engine(base, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'create database "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    engine = create_async_engine(url)
    try:
        if revision is not None:
            await asyncio.to_thread(command.upgrade, alembic_config(url), revision)
        yield url, engine
    finally:
        await engine.dispose()
        async with admin.connect() as conn:
            await conn.execute(text(f'drop database if exists "{name}" with (force)'))
        await admin.dispose()
