"""What one notification e-mail costs the Celery side, beside the bare SMTP floor, in the same run.

    .venv/bin/python bench/mail_task.py [--n 600] [--rounds 2] [--batch 4] [--json FILE]

Issue #7 item 2 counts the CPU of every process per enrollment; the Celery worker was 12-13 ms of the 74-76 ms
(docs/benchmarks.md, "Launch day, 2026-12-03"), one welcome e-mail each. This measures that part alone: in a fresh
temporary data dir, the embedded PostgreSQL, Redis and SMTP sink (`EmbeddedEngines`), migrated; per round, N students
with one pending welcome notification each (inserted directly, as the enrollment set-up leaves them); then

1. **product**: the Celery worker exactly as `smartcourse run` starts it (`smartcourse.cli.CELERY_WORKER`,
   `--concurrency 2 -B`); 20 e-mails to warm it up (each pool child's first task imports and connects); then N
   `notifications.send_email` tasks enqueued at once from here, and the clock and the CPU of the Celery process
   tree, PostgreSQL, Redis and the SMTP sink run until the N rows are `sent`;
   With `--batch N` (repeatable), also **batches of N**: the same worker on `notifications.send_emails` tasks of N
   e-mails each, as the enrollment worker's `EmailBatcher` enqueues the welcome e-mails of a burst;
2. **baseline**: the same N messages (built once by the product's `build_message`) sent by this process over one
   SMTP connection to the same sink: the floor of getting them out, with no queue, no database, no claim.

CPU per e-mail comes from /proc (bench/enrollment.py `tree_cpu`). Progress to stderr, the table to stdout,
`--json FILE` saves it. Measures, asserts nothing (but it checks that every e-mail was sent exactly once).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import smtplib
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import _tree  # noqa: F401  (before any smartcourse import: this tree's code, here and in every child)

#: E-mails sent before the measured ones (per round).
WARMUP = 20
BODY = "You are enrolled in Benchmarking 101.\n\nStart with the first lesson when you like."
BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from enrollment import (  # noqa: E402  bench/enrollment.py: process trees' CPU, children, students
    Children,
    cpu_delta,
    create_students,
    machine_facts,
    pid_from_file,
    say,
    tree_cpu,
)


async def pending_notifications(database_url: str, students: list[uuid.UUID]) -> list[uuid.UUID]:
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from smartcourse.db import UnitOfWork, make_engine
    from smartcourse.services.notifications import create_notification

    engine = make_engine(database_url, pool_size=1)
    ids: list[uuid.UUID] = []
    try:
        async with UnitOfWork(async_sessionmaker(engine, expire_on_commit=False)) as uow:
            for sid in students:
                ids.append(
                    await create_notification(
                        uow.session,
                        user_id=sid,
                        kind="enrollment.welcome",
                        title="Welcome to Benchmarking 101",
                        body=BODY,
                        dedupe_key=f"bench-email:{sid}",
                    )
                )
            await uow.commit()
    finally:
        await engine.dispose()
    return ids


async def count_sent(database_url: str, ids: list[uuid.UUID]) -> tuple[int, int]:
    """(rows sent, e-mail attempts over those rows)."""
    import asyncpg
    from enrollment import asyncpg_dsn

    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        row = await conn.fetchrow(
            "select count(*) filter (where email_status = 'sent') as sent, coalesce(sum(email_attempts), 0) as tries"
            " from notifications where id = any($1::uuid[])",
            ids,
        )
        return int(row["sent"]), int(row["tries"])
    finally:
        await conn.close()


def product_round(
    env: dict[str, str],
    data_dir: Path,
    roots: dict[str, list[int]],
    n: int,
    rnd: int,
    py_spy: str | None = None,
    extra: tuple[str, ...] = (),
    batch: int = 0,
) -> dict[str, Any]:
    from smartcourse.cli import CELERY_WORKER
    from smartcourse.config import get_settings
    from smartcourse.tasks import make_app

    database_url = env["DATABASE_URL"]
    students = asyncio.run(create_students(database_url, n + WARMUP))
    every = asyncio.run(pending_notifications(database_url, students))
    warmup, ids = every[:WARMUP], every[WARMUP:]
    queue = env["CELERY_QUEUE"]
    children = Children(data_dir / f"logs-{rnd}-{uuid.uuid4().hex[:6]}")
    argv = [*CELERY_WORKER, "--concurrency", "2", "-B", "-n", f"bench-{rnd}-{uuid.uuid4().hex[:6]}@%h", *extra]
    children.start("celery", argv, env, data_dir)
    try:
        deadline = time.monotonic() + 90
        while " ready." not in children.log("celery"):
            children.ensure_alive()
            if time.monotonic() > deadline:
                raise RuntimeError("the Celery worker did not start")
            time.sleep(0.2)
        update = {"redis_url": env["REDIS_URL"], "celery_queue": queue, "celery_broker_url": None}
        sender = make_app(get_settings().model_copy(update=update))
        # Warm-up, not measured: each pool child's first task imports and connects (once per process lifetime).
        for nid in warmup:
            sender.send_task("notifications.send_email", args=[str(nid)])
        while asyncio.run(count_sent(database_url, warmup))[0] < WARMUP:
            children.ensure_alive()
            time.sleep(0.1)
        time.sleep(1.0)  # let it settle (beat's first tick)
        all_roots = {**roots, "celery": [children.procs["celery"].pid]}
        spy = None
        if py_spy:  # sampled stacks of the Celery worker and its pool children, collapsed (flamegraph input)
            argv = ["py-spy", "record", "--subprocesses", "--format", "raw", "-r", "250", "--nonblocking"]
            argv += ["-o", f"{py_spy}.{rnd}.txt", "-p", str(children.procs["celery"].pid)]
            spy = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)
        before, t0 = tree_cpu(all_roots), time.monotonic()
        if batch:  # as the enrollment worker's EmailBatcher enqueues them: `batch` e-mails per send_emails task
            for i in range(0, len(ids), batch):
                emails = [{"id": str(nid), "trace": None} for nid in ids[i : i + batch]]
                sender.send_task("notifications.send_emails", args=[emails])
        else:
            for nid in ids:
                sender.send_task("notifications.send_email", args=[str(nid)])
        sent = tries = 0
        while time.monotonic() - t0 < 600:
            sent, tries = asyncio.run(count_sent(database_url, ids))
            if sent == n:
                break
            time.sleep(0.1)
        elapsed = time.monotonic() - t0
        cpu = cpu_delta(before, tree_cpu(all_roots))
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=30)
    finally:
        children.stop()
    return {"n": n, "sent": sent, "attempts": tries, "seconds": round(elapsed, 2), "cpu": cpu}


def baseline_round(host: str, port: int, roots: dict[str, list[int]], n: int) -> dict[str, Any]:
    from smartcourse.adapters.mail import build_message

    messages = [
        build_message(
            sender="SmartCourse <noreply@smartcourse.local>",
            to=f"Bench Student {i} <bench-{i}@example.com>",
            subject="Welcome to Benchmarking 101",
            text=BODY + "\n\n-- \nSmartCourse",
            html="<!doctype html><html><body><p>You are enrolled in Benchmarking 101.</p></body></html>",
            message_id=f"<bench-baseline-{uuid.uuid4()}@smartcourse.local>",
        )
        for i in range(n)
    ]
    before, t0 = tree_cpu(roots), time.monotonic()
    with smtplib.SMTP(host, port, timeout=30) as smtp:
        for msg in messages:
            smtp.send_message(msg)
    elapsed = time.monotonic() - t0
    return {"n": n, "sent": n, "seconds": round(elapsed, 2), "cpu": cpu_delta(before, tree_cpu(roots))}


def per_mail(cpu: dict[str, float], n: int, key: str) -> float:
    return 1000.0 * cpu.get(key, 0.0) / n


def render(rounds: list[dict[str, Any]], facts: dict[str, Any], n: int) -> str:
    lines = [
        f"Machine: {facts.get('cores')} cores, load average {facts.get('load_before')} before / "
        f"{facts.get('load_after')} after (1, 5, 15 min); {facts.get('date_utc')}, commit {facts.get('git')}.",
        "",
        f"{n} welcome e-mails per round (ms of CPU per e-mail; rate = e-mails per second):",
        "",
        "| round | target | e-mails/s | Celery | PostgreSQL | Redis | SMTP sink | this process | total"
        " | sent / attempts |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for i, r in enumerate(rounds, 1):
        for target, x in r.items():
            cpu = x["cpu"]
            parts = [per_mail(cpu, n, k) for k in ("celery", "postgres", "redis", "smtp sink", "load generator")]
            attempts = f"{x['sent']} / {x.get('attempts', x['sent'])}"
            lines.append(
                f"| {i} | {target} | {n / x['seconds']:.0f} | "
                + " | ".join(f"{v:.2f}" for v in parts)
                + f" | {sum(parts):.2f} | {attempts} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=600, help="e-mails per round (default 600)")
    ap.add_argument("--rounds", type=int, default=2, help="product/baseline rounds (default 2)")
    ap.add_argument("--json", help="also save the figures as JSON to this file")
    ap.add_argument(
        "--batch",
        type=int,
        action="append",
        default=[],
        metavar="N",
        help="also run the product's worker on notifications.send_emails tasks of N e-mails each (ABBA with the rest)",
    )
    ap.add_argument("--py-spy", help="sample the Celery worker with py-spy into FILE.<round>.txt (collapsed stacks)")
    ap.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="NAME=ARGS",
        help="also run the product's worker with these extra `celery worker` arguments, in ABBA order with the product "
        "(e.g. prefetch4='--prefetch-multiplier 4')",
    )
    args = ap.parse_args(argv)
    variants: dict[str, tuple[tuple[str, ...], int]] = {"product": ((), 0)}
    for spec in args.also:
        name, _, extra = spec.partition("=")
        variants[name] = (tuple(extra.split()), 0)
    for size in args.batch:
        variants[f"batches of {size}"] = ((), size)

    from smartcourse.engines import EmbeddedEngines
    from smartcourse.migrations import upgrade_head

    facts = machine_facts()
    facts["load_before"] = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="bench-email-") as tmp:
        data_dir = Path(tmp)
        eng = EmbeddedEngines(data_dir)
        try:
            db, redis = eng.postgres_url(), eng.redis_url()
            host, port = eng.smtp_address(data_dir / "mail")
            upgrade_head(db)
            roots = {
                "postgres": [pid_from_file(data_dir / "postgres" / "postmaster.pid")],
                "redis": [pid_from_file(data_dir / "redis" / "redis.pid")],
                "smtp sink": [pid_from_file(data_dir / "smtp" / "smtp.pid")],
            }
            roots = {k: [p for p in v if p] for k, v in roots.items()}
            env = {
                **{
                    k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "SMTP_", "CELERY_"))
                },
                "SMARTCOURSE_DATA_DIR": str(data_dir),
                "DATABASE_URL": db,
                "REDIS_URL": redis,
                "SMTP_HOST": host,
                "SMTP_PORT": str(port),
                "CELERY_QUEUE": f"bench-email-{uuid.uuid4().hex[:8]}",
                "PYTHONUNBUFFERED": "1",
            }
            rounds = []
            for rnd in range(1, args.rounds + 1):
                done: dict[str, Any] = {}
                order = list(variants) if rnd % 2 else list(reversed(variants))  # ABBA across rounds
                for name in order:
                    say(f"round {rnd}: {name}")
                    extra, size = variants[name]
                    done[name] = product_round(env, data_dir, roots, args.n, rnd, args.py_spy, extra, size)
                say(f"round {rnd}: baseline")
                done["baseline"] = baseline_round(host, port, roots, args.n)
                rounds.append(done)
        finally:
            eng.stop()
    facts["load_after"] = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    print(render(rounds, facts, args.n))
    if args.json:
        Path(args.json).write_text(json.dumps({"facts": facts, "n": args.n, "rounds": rounds}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
