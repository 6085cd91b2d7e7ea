"""What one EnrollmentWorkflow costs: CPU per process per enrollment and the drain rate, design beside design.

    .venv/bin/python bench/workflow_cost.py [--n 300] [--rounds 2] [--concurrency 64]
                                            [--variants four-activities,four-local,...,product,product-eager]
                                            [--servers before,product] [--json FILE]

It measures the workflow alone (issue #7 item 2), not the request: in a fresh temporary data dir it starts the
embedded PostgreSQL and Redis (`EmbeddedEngines`) and one Temporal dev server per --servers entry, migrates, makes
one published course (10 lessons in its version snapshot) and, per round and variant, N students with a pending
enrollment each, as an admission leaves them. Then:

1. a worker subprocess for the variant (this file with --serve-worker) on a task queue of its own;
2. N workflows started directly, `--concurrency` at a time, with deterministic ids (`REJECT_DUPLICATE`);
3. wait until Temporal has no running workflow on that queue; CPU seconds of the Temporal server, the worker and
   PostgreSQL (their whole process trees, from /proc) are read before the first start and after the last close;
4. the effects are counted in the database: per enrollment one set of progress rows, one analytics event, one
   `enrollment.activated`, one welcome notification, one `pending -> active` history row.

Variants (each a worker configuration; bench/workflow_variants.py holds the earlier workflow shapes):

* four-activities: the design before this change (0e938dc): four activities, four transactions, sandboxed;
* four-local: the same four as local activities;
* one-local-sandboxed: the one-transaction set-up as one local activity, still in the sandbox;
* one-local: the product's EnrollmentWorkflow (unsandboxed) with the old worker options;
* product: the product's EnrollmentWorkflow and worker (`workflows.worker.build_worker`).

Servers: `before` is `temporal server start-dev` with the flags engines.py used before (persistent SQLite file,
--log-level warn); `product` is what engines.py starts now (`smartcourse.engines.TEMPORAL_DEV_FLAGS`);
`product-gogcN` is `product` with GOGC=N in the server's environment; `product+key=value[+key=value]` is `product` with
those dynamic config values added (`--dynamic-config-value`), `product~pragma=value[~pragma=value]` with those SQLite
pragmas (`--sqlite-pragma`); `product-fullvis` is `product` with every index of
the visibility table the dev server makes (engines.py drops all but `TEMPORAL_VISIBILITY_INDEXES`); `product-notrig`
is `product` without the table's full-text triggers (a measurement only: lists by text attributes go stale). Every
variant runs on the first server; `four-activities` and `product` also on the others.

The Celery e-mail worker and the outbox relay are not run: both designs give them the same work (one e-mail, the
same two events per enrollment). The enqueue of the e-mail into Redis is in the worker's figure.
Progress goes to stderr, the table to stdout; `--json FILE` saves every run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "layers" / "common" / "python")]

LESSONS = 10
#: worker variant -> (workflow type started, worker configuration)
VARIANTS: dict[str, tuple[str, str]] = {
    "four-activities": ("BenchEnrollmentFourActivities", "old"),
    "four-local": ("BenchEnrollmentFourLocal", "old"),
    "one-local-sandboxed": ("BenchEnrollmentOneLocalSandboxed", "old"),
    "one-local-no-patch": ("BenchEnrollmentOneLocal", "old"),
    "one-local": ("EnrollmentWorkflow", "old"),
    "product": ("EnrollmentWorkflow", "product"),
    "product-eager": ("EnrollmentWorkflow", "product"),
    # The product's workflow started with the input of runs before `one_transaction` (it asks `workflow.patched`).
    "product-asks-patch": ("EnrollmentWorkflow", "product"),
    "batch": ("BenchEnrollmentBatch", "old"),
}
#: Enrollments per workflow of the `batch` variant (not a product design: a measured alternative).
BATCH = 25
#: Variants whose worker process starts the workflows itself, with eager start (the first workflow task comes
#: back in the start call's answer instead of through the task queue): a dispatcher inside the worker process.
EAGER = {"product-eager"}
ON_EVERY_SERVER = ("four-activities", "product")


def workflow_input(variant: str, eid: object) -> dict[str, Any]:
    """The input a variant's workflows start with: the product's own (`names.enrollment_input`) for the product's
    workflow, the bare enrollment id for the bench's variants and for `product-asks-patch`."""
    if VARIANTS[variant][0] == "EnrollmentWorkflow" and variant != "product-asks-patch":
        from smartcourse.domain import workflows as names

        return names.enrollment_input(eid)
    return {"enrollment_id": str(eid)}


def say(message: str) -> None:
    print(f"[workflow_cost {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- the worker subprocess ----------------------------------------------------------------------------------------


async def serve_worker(config: str, queue: str, eager_starts: str | None) -> None:
    """Run one worker configuration on `queue` until SIGTERM (started by the bench as a subprocess). With
    `eager_starts` (a JSON file of [workflow type, id, enrollment id] rows) it starts those workflows itself, eagerly,
    once it reads a line on stdin."""
    from temporalio import activity
    from temporalio.worker import Worker

    from bench import workflow_variants as v
    from smartcourse.bootstrap import build_container
    from smartcourse.config import get_settings
    from workflows.enrollment.activities import EnrollmentActivities
    from workflows.enrollment.workflow import EnrollmentInput, EnrollmentWorkflow
    from workflows.worker import build_worker

    c = build_container(get_settings())
    client = await c.temporal()
    worker = build_worker(client, c, task_queue=queue if config == "product" else f"{queue}-unused")
    if config == "old":
        # The product's worker (its interceptors too: both sides pay for them) with the workflow shapes measured
        # here and the options of before this change (no local-activity bound).
        settings = worker.config()
        settings.pop("max_concurrent_local_activities", None)
        settings.pop("max_concurrent_workflow_tasks", None)
        settings["workflows"] = [
            v.FourActivities, v.FourLocal, v.OneLocalSandboxed, v.OneLocal, v.Batch, EnrollmentWorkflow
        ]  # fmt: skip
        acts = EnrollmentActivities(c)

        @activity.defn(name="bench.set_up_batch")
        async def set_up_batch(inp: dict[str, Any]) -> int:  # a BatchInput, as plain data
            for eid in inp["enrollment_ids"]:
                await acts.set_up(EnrollmentInput(eid))
            return len(inp["enrollment_ids"])

        settings["activities"] = [*acts.all(), set_up_batch]
        settings["task_queue"] = queue
        worker = Worker(**settings)  # the template above is never run, so it never polls
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # A worker that fails (a poller's fatal error) must end this process loudly, not leave it waiting for SIGTERM.
    running = asyncio.create_task(worker.run())
    running.add_done_callback(lambda t: stop.set())
    print("ready", flush=True)
    if eager_starts:
        rows = json.loads(Path(eager_starts).read_text())  # noqa: ASYNC240
        await asyncio.to_thread(sys.stdin.readline)
        gate = asyncio.Semaphore(64)

        async def start(workflow_type: str, wid: str, eid: str) -> None:
            async with gate:
                await client.start_workflow(
                    workflow_type,
                    workflow_input("product-eager", eid),
                    id=wid,
                    task_queue=queue,
                    request_eager_start=True,
                )

        await asyncio.gather(*(start(*row) for row in rows))
    await stop.wait()
    if running.done():
        running.result()  # raises what stopped the worker
    await worker.shutdown()
    await c.aclose()


# --- engines ------------------------------------------------------------------------------------------------------

#: `temporal server start-dev` flags besides addresses and the db file, as engines.py had them before this change.
BEFORE_FLAGS = ["--headless", "--log-level", "warn"]


def server_flags(name: str) -> list[str]:
    if name == "before":
        return BEFORE_FLAGS
    if name == "wal":  # before + the SQLite pragmas only
        return [*BEFORE_FLAGS, "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"]
    if name == "product" or name.startswith(
        ("product-gogc", "product+", "product~", "product-fullvis", "product-notrig")
    ):
        from smartcourse.engines import TEMPORAL_DEV_FLAGS

        # `product+key=value...`: the product's flags with more dynamic config values; `product~pragma=value...`:
        # with more SQLite pragmas (a knob to measure).
        extra = [["--dynamic-config-value", kv] for kv in name.split("~")[0].split("+")[1:]]
        extra += [["--sqlite-pragma", kv] for kv in name.split("+")[0].split("~")[1:]]
        return list(TEMPORAL_DEV_FLAGS) + [flag for pair in extra for flag in pair]
    raise SystemExit(f"unknown server {name!r}")


def server_env(name: str) -> dict[str, str]:
    """`product-gogcN`: the product's flags with the Go collector's GOGC=N (Go's default: 100) in the server's env."""
    env = dict(os.environ)
    if name.startswith("product-gogc"):
        env["GOGC"] = name.removeprefix("product-gogc")
    return env


@dataclass
class Server:
    name: str
    address: str
    proc: subprocess.Popen[bytes]


def start_temporal(name: str, home: Path) -> Server:
    from smartcourse.engines import _bin, free_port, port_open

    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv = [_bin("temporal"), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(port)]
    argv += ["--ui-port", str(free_port()), "--http-port", str(free_port()), "--metrics-port", str(free_port())]
    argv += ["--db-filename", str(home / "temporal.db"), *server_flags(name)]
    with open(home / "server.log", "ab") as log:
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=server_env(name)
        )
    for _ in range(900):
        if port_open("127.0.0.1", port):
            time.sleep(2)  # the namespace is registered just after the port opens
            if name.startswith("product") and not name.startswith("product-fullvis"):
                from smartcourse.engines import settle_temporal_visibility

                settle_temporal_visibility(home / "temporal.db")  # as engines.py does after the start
            if name.startswith("product-notrig"):  # measurement only: full-text search of the lists goes stale
                import sqlite3

                with contextlib.closing(sqlite3.connect(home / "temporal.db", timeout=30)) as conn:
                    for trigger in ("executions_visibility_ai", "executions_visibility_ad", "executions_visibility_au"):
                        conn.execute(f"drop trigger if exists {trigger}")
                    conn.commit()
            return Server(name, f"127.0.0.1:{port}", proc)
        if proc.poll() is not None:
            raise RuntimeError(f"temporal ({name}) exited: {(home / 'server.log').read_text()[-2000:]}")
        time.sleep(0.1)
    raise RuntimeError(f"temporal ({name}) did not open its port")


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process and its live descendants."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
    return total


def machine_busy() -> float:
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


# --- data ---------------------------------------------------------------------------------------------------------


async def make_course(c: Any) -> uuid.UUID:
    from smartcourse.models import Course, User
    from smartcourse.services.courses import VERSIONS, version_doc_id

    teacher = User(
        id=uuid.uuid4(), email=f"t-{uuid.uuid4().hex[:8]}@bench.io", password_hash="x", full_name="T", role="instructor"
    )
    course = Course(
        id=uuid.uuid4(), instructor_id=teacher.id, title="Bench course", category="bench", status="published",
        content_version=1,
    )  # fmt: skip
    async with c.uow() as uow:
        uow.session.add(teacher)
        await uow.flush()
        uow.session.add(course)
        await uow.commit()
    lessons = [
        {"id": str(uuid.uuid4()), "title": f"Lesson {i}", "type": "text", "body": "x" * 2000} for i in range(LESSONS)
    ]
    modules = [{"id": str(uuid.uuid4()), "title": "Module", "lessons": lessons}]
    await c.documents.put(VERSIONS, version_doc_id(course.id, 1), {"version": 1, "modules": modules})
    return course.id


async def make_pending(c: Any, course_id: uuid.UUID, n: int) -> list[tuple[uuid.UUID, str]]:
    """N students with a pending enrollment each, as an admission leaves them: (enrollment id, workflow id)."""
    from smartcourse.domain.enrollment import enrollment_workflow_id
    from smartcourse.models import Enrollment, User, utcnow

    now = utcnow()
    users = [
        User(id=uuid.uuid4(), email=f"s-{uuid.uuid4().hex}@bench.io", password_hash="x", full_name="S", role="student")
        for _ in range(n)
    ]
    rows = [
        Enrollment(
            id=uuid.uuid4(), student_id=u.id, course_id=course_id, attempt=1, status="pending", admitted_at=now,
            workflow_id=enrollment_workflow_id(course_id, u.id, 1), created_at=now, updated_at=now,
        )
        for u in users
    ]  # fmt: skip
    async with c.uow() as uow:
        uow.session.add_all(users)
        await uow.flush()
        uow.session.add_all(rows)
        await uow.commit()
    return [(e.id, e.workflow_id or "") for e in rows]


async def count_effects(c: Any, ids: list[uuid.UUID]) -> dict[str, int]:
    from sqlalchemy import func, select

    from smartcourse.models import Enrollment, EnrollmentHistory, LessonProgress, Notification, OutboxEvent

    keys = [str(i) for i in ids]
    async with c.uow() as uow:
        s = uow.session

        async def scalar(q: Any) -> int:
            return int(await s.scalar(q) or 0)

        events = dict(
            (
                await s.execute(
                    select(OutboxEvent.event_type, func.count())
                    .where(OutboxEvent.payload["data"]["enrollment_id"].astext.in_(keys))
                    .group_by(OutboxEvent.event_type)
                )
            ).all()
        )
        return {
            "active": await scalar(
                select(func.count())
                .select_from(Enrollment)
                .where(Enrollment.id.in_(ids), Enrollment.status == "active")
            ),
            "progress_rows": await scalar(
                select(func.count()).select_from(LessonProgress).where(LessonProgress.enrollment_id.in_(ids))
            ),
            "activations": await scalar(
                select(func.count())
                .select_from(EnrollmentHistory)
                .where(EnrollmentHistory.enrollment_id.in_(ids), EnrollmentHistory.to_status == "active")
            ),
            "welcomes": await scalar(
                select(func.count())
                .select_from(Notification)
                .where(Notification.dedupe_key.in_([f"welcome:{k}" for k in keys]))
            ),
            "analytics_events": int(events.get("analytics.enrollment_recorded", 0)),
            "activated_events": int(events.get("enrollment.activated", 0)),
        }


# --- one measured run ---------------------------------------------------------------------------------------------


@dataclass
class Run:
    server: str
    variant: str
    round: int
    n: int
    wall_s: float
    drain_per_s: float
    cpu_ms_per_enrollment: dict[str, float]
    net_ms_per_enrollment: dict[str, float]  # less what the process burns idle over the same time
    idle_ms_per_s: dict[str, float]
    effects: dict[str, int]
    effects_ok: bool
    history_events: int  # of one workflow
    history: list[str]  # its event types
    other_processes_cores: float  # what the rest of the machine used meanwhile, in cores
    errors: list[str] = field(default_factory=list)


async def measure(
    c: Any, client: Any, server: Server, pg_pid: int, course_id: uuid.UUID, variant: str, rnd: int, args: Any,
    env: dict[str, str], log_dir: Path,
) -> Run:  # fmt: skip
    from temporalio.api.enums.v1 import EventType
    from temporalio.common import WorkflowIDReusePolicy

    workflow_type, config = VARIANTS[variant]
    queue = f"bench-{variant}-{uuid.uuid4().hex[:6]}"
    batch = await make_pending(c, course_id, args.n)
    argv = [sys.executable, __file__, "--serve-worker", config, "--queue", queue]
    if variant in EAGER:
        starts = log_dir / f"starts-{queue}.json"
        rows = [[workflow_type, f"{wid}-{variant}-{rnd}", str(eid)] for eid, wid in batch]
        starts.write_text(json.dumps(rows))
        argv += ["--eager-starts", str(starts)]
    with open(log_dir / f"worker-{server.name}-{variant}-{rnd}.log", "ab") as log:  # noqa: ASYNC230
        worker = subprocess.Popen(  # noqa: ASYNC220
            argv, env={**env, "TEMPORAL_ADDRESS": server.address}, stdout=subprocess.PIPE, stderr=log,
            stdin=subprocess.PIPE, start_new_session=True, cwd=REPO,
        )  # fmt: skip
    try:
        assert worker.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(worker.stdout.readline), 180)
        if b"ready" not in line:
            raise RuntimeError(f"worker {variant} did not start (see {log_dir})")
        await asyncio.sleep(1)
        pids = {"temporal": server.proc.pid, "worker": worker.pid, "postgres": pg_pid}
        # What each process burns idle (pollers, the server's own housekeeping), to tell work from waiting: on a
        # busy machine a slow drain would otherwise charge more idle time to each enrollment.
        idle0, t_idle = {k: tree_cpu(p) for k, p in pids.items()}, time.monotonic()
        await asyncio.sleep(args.idle)
        idle_rate = {k: (tree_cpu(p) - idle0[k]) / (time.monotonic() - t_idle) for k, p in pids.items()}
        before = {k: tree_cpu(p) for k, p in pids.items()}
        busy0, own0 = machine_busy(), sum(os.times()[:2])
        t0 = time.monotonic()
        gate = asyncio.Semaphore(args.concurrency)

        async def start(eid: uuid.UUID, wid: str) -> None:
            async with gate:
                await client.start_workflow(
                    workflow_type, workflow_input(variant, eid), id=f"{wid}-{variant}-{rnd}", task_queue=queue,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                )  # fmt: skip

        if variant in EAGER:
            assert worker.stdin is not None
            worker.stdin.write(b"go\n")
            worker.stdin.flush()
        elif variant == "batch":

            async def start_batch(i: int) -> None:
                ids = [str(eid) for eid, _ in batch[i : i + BATCH]]
                async with gate:
                    await client.start_workflow(
                        workflow_type, {"enrollment_ids": ids}, id=f"bench-batch-{rnd}-{batch[i][0]}", task_queue=queue
                    )

            await asyncio.gather(*(start_batch(i) for i in range(0, len(batch), BATCH)))
        else:
            await asyncio.gather(*(start(eid, wid) for eid, wid in batch))
        started_s = time.monotonic() - t0
        deadline = t0 + args.timeout
        while time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            running = await client.count_workflows(f"TaskQueue = '{queue}' AND ExecutionStatus = 'Running'")
            if running.count == 0:
                break
        wall = time.monotonic() - t0
        after = {k: tree_cpu(p) for k, p in pids.items()}
        busy = machine_busy() - busy0
        own = sum(os.times()[:2]) - own0
        cpu = {k: round((after[k] - before[k]) * 1000 / args.n, 2) for k in pids}
        cpu["total"] = round(sum(cpu.values()), 2)
        net = {k: round(max(0.0, after[k] - before[k] - idle_rate[k] * wall) * 1000 / args.n, 2) for k in pids}
        net["total"] = round(sum(net.values()), 2)
        cpu["load generator"] = round(own * 1000 / args.n, 2)
        others = max(0.0, busy - sum(after[k] - before[k] for k in pids) - own) / wall
        effects = await count_effects(c, [eid for eid, _ in batch])
        n = args.n
        ok = effects == {
            "active": n, "progress_rows": n * LESSONS, "activations": n, "welcomes": n, "analytics_events": n,
            "activated_events": n,
        }  # fmt: skip
        first = f"bench-batch-{rnd}-{batch[0][0]}" if variant == "batch" else f"{batch[0][1]}-{variant}-{rnd}"
        history = await client.get_workflow_handle(first).fetch_history()
        run = Run(
            server=server.name, variant=variant, round=rnd, n=n, wall_s=round(wall, 2),
            drain_per_s=round(n / wall, 1), cpu_ms_per_enrollment=cpu,
            net_ms_per_enrollment=net, idle_ms_per_s={k: round(v * 1000, 1) for k, v in idle_rate.items()},
            effects=effects, effects_ok=ok,
            history_events=len(history.events),
            history=[EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in history.events],
            other_processes_cores=round(others, 2),
        )  # fmt: skip
        if wall >= args.timeout:
            run.errors.append(f"not drained in {args.timeout} s")
        say(
            f"{server.name}/{variant} round {rnd}: {n} in {wall:.1f} s (starts {started_s:.1f} s) -> "
            f"{run.drain_per_s}/s; CPU ms/enrollment {cpu}, net of idle {net}; effects ok={ok}; "
            f"others {run.other_processes_cores} cores"
        )
        return run
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=5)


# --- the report ---------------------------------------------------------------------------------------------------


def report(runs: list[Run], figure: str = "cpu_ms_per_enrollment") -> str:
    keys = ["temporal", "worker", "postgres", "total"]
    groups: dict[tuple[str, str], list[Run]] = {}
    for r in runs:
        groups.setdefault((r.server, r.variant), []).append(r)
    base = groups.get((runs[0].server, "four-activities"))
    base_total = statistics.median(getattr(r, figure)["total"] for r in base) if base else None
    base_drain = statistics.median(r.drain_per_s for r in base) if base else None
    lines = [
        "| server | variant | runs | temporal | worker | postgres | **total** ms/enrollment | \u00d7 less CPU "
        "| drain /s | \u00d7 drain | history events | effects | others (cores) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (server, variant), rs in groups.items():
        med = {k: statistics.median(getattr(r, figure)[k] for r in rs) for k in keys}
        drain = statistics.median(r.drain_per_s for r in rs)
        x_cpu = f"{base_total / med['total']:.1f}" if base_total else "—"
        x_drain = f"{drain / base_drain:.1f}" if base_drain else "—"
        effects = "all once" if all(r.effects_ok for r in rs) else "MISMATCH"
        lines.append(
            f"| {server} | {variant} | {len(rs)} | {med['temporal']:.1f} | {med['worker']:.1f} | {med['postgres']:.1f} "
            f"| **{med['total']:.1f}** | {x_cpu} | {drain:.1f} | {x_drain} | {rs[0].history_events} | {effects} "
            f"| {max(r.other_processes_cores for r in rs):.2f} |"
        )
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> int:
    from smartcourse.bootstrap import build_container
    from smartcourse.config import get_settings
    from smartcourse.engines import EmbeddedEngines
    from smartcourse.migrations import upgrade_head

    data_dir = Path(tempfile.mkdtemp(prefix="workflow-cost-"))
    eng = EmbeddedEngines(data_dir)
    servers: list[Server] = []
    runs: list[Run] = []
    try:
        db, redis = eng.postgres_url(), eng.redis_url()
        await asyncio.to_thread(upgrade_head, db)
        pg_pid = int((data_dir / "postgres" / "postmaster.pid").read_text().split()[0])
        env = {
            **{k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "TEMPORAL_ADDRESS"}},
            "DATABASE_URL": db, "REDIS_URL": redis, "SMARTCOURSE_DATA_DIR": str(data_dir),
            "SMARTCOURSE_LOG_LEVEL": "WARNING", "PYTHONPATH": f"{REPO}:{REPO / 'layers' / 'common' / 'python'}",
        }  # fmt: skip
        os.environ.update({"DATABASE_URL": db, "REDIS_URL": redis, "SMARTCOURSE_DATA_DIR": str(data_dir)})
        get_settings.cache_clear()
        for name in args.servers.split(","):
            servers.append(await asyncio.to_thread(start_temporal, name, data_dir / f"temporal-{name}"))
        c = build_container(get_settings())
        course_id = await make_course(c)
        from temporalio.client import Client
        from temporalio.contrib.pydantic import pydantic_data_converter

        variants = args.variants.split(",")
        for rnd in range(1, args.rounds + 1):
            order = list(enumerate(servers))
            # ABBA across servers too: the second round starts with the last server.
            for i, server in order if rnd % 2 else reversed(order):
                client = await Client.connect(server.address, data_converter=pydantic_data_converter)
                todo = variants if i == 0 else [v for v in variants if v in ON_EVERY_SERVER]
                if rnd % 2 == 0:
                    todo = list(reversed(todo))  # ABBA: drift on a shared machine falls on both ends
                for variant in todo:
                    runs.append(await measure(c, client, server, pg_pid, course_id, variant, rnd, args, env, data_dir))
                    if args.json:  # after every run: a long run stopped early keeps what it measured
                        Path(args.json).write_text(json.dumps({"runs": [asdict(r) for r in runs]}, indent=2))  # noqa: ASYNC240
        await c.aclose()
    finally:
        for s in servers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(s.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                s.proc.wait(timeout=20)
        eng.stop()
    facts = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "n": args.n, "rounds": args.rounds,
        "concurrency": args.concurrency, "cpus": os.cpu_count(), "loadavg_at_end": os.getloadavg(),
    }  # fmt: skip
    print(f"Enrollment workflow cost: {facts}\n")
    print("CPU per enrollment, as measured (ms; medians over the runs):\n")
    print(report(runs))
    print("\nThe same, net of what each process burned idle over the run's time (ms):\n")
    print(report(runs, "net_ms_per_enrollment"))
    if args.json:
        Path(args.json).write_text(  # noqa: ASYNC240
            json.dumps({"facts": facts, "runs": [asdict(r) for r in runs]}, indent=2)
        )
    return 0 if all(r.effects_ok and not r.errors for r in runs) else 1


def cli() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=300, help="enrollments per run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=64, help="workflow starts in flight")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--servers", default="before,product")
    parser.add_argument("--idle", type=float, default=4, help="seconds of idle CPU sampled before each run")
    parser.add_argument("--timeout", type=float, default=600, help="seconds for one run to drain")
    parser.add_argument("--json")
    parser.add_argument("--serve-worker", help=argparse.SUPPRESS)
    parser.add_argument("--queue", help=argparse.SUPPRESS)
    parser.add_argument("--eager-starts", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_worker:
        from smartcourse import aio

        aio.run(serve_worker(args.serve_worker, args.queue, args.eager_starts))  # the loop `smartcourse worker` runs
        return 0
    return asyncio.run(main(args))


if __name__ == "__main__":
    raise SystemExit(cli())
