"""Chaos run and the launch-day burst (issue #7 item 5 and P3): counts every effect, prints the kill log.

    .venv/bin/python bench/chaos.py [--students N] [--capacity C] [--drops D] [--lessons L] [--concurrency K]
                                    [--kills N] [--postgres-restarts N] [--duration S] [--seed N]
                                    [--settle-timeout S] [--celery-visibility-timeout S] [--email-sweep-seconds S]
                                    [--data-dir DIR] [--json FILE]
    .venv/bin/python bench/chaos.py --burst-p3        # 10,000 students, 8,000 seats, no chaos

It brings the product up as `smartcourse run` does (embedded PostgreSQL, Redis, Temporal dev server and SMTP sink
in a fresh data directory; the processes of `smartcourse.cli.run_processes`), publishes a course with C seats and a
waitlist, inserts N students, then every student POSTs /enrollments once (retried with its Idempotency-Key until
answered) while the run SIGKILLs the product's processes at random moments of the first --duration seconds (each
restarted by a supervisor after a short pause) and restarts PostgreSQL in immediate mode (a crash as clients see
it). After the burst D active enrollments are dropped (their seats go to the head of the waitlist). Once everything
settled it counts, in the database and in the mail sink, every effect of every enrollment and prints the counts,
the timings and every broken invariant (devtools/chaos.py lists them). Exit status 1 when an invariant broke.

`--burst-p3` is P3 of issue #7: a burst of 10,000 students into one course with 8,000 seats and a waitlist, without
kills: exactly 8,000 admitted and 2,000 waitlisted in order, 0 errors, 0 lost, 0 duplicated; it prints the admission
phase's rate and the time until all 8,000 are active (drain goal >= 50/s).

Progress goes to stderr, the report to stdout; --json FILE saves it. docs/benchmarks.md has the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import _tree  # noqa: F401  (before any smartcourse import: this tree's code, here and in every child)

from smartcourse.devtools.chaos import ChaosConfig, Report, run_chaos


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--burst-p3", action="store_true", help="P3: 10,000 students, 8,000 seats, no kills")
    p.add_argument("--students", type=int, help="students in the burst (default 2000; P3 10000)")
    p.add_argument("--capacity", type=int, help="seats of the course (default 90%% of the students; P3 8000)")
    p.add_argument("--drops", type=int, help="active enrollments dropped after the burst (default 20; P3 0)")
    p.add_argument("--lessons", type=int, default=3)
    p.add_argument("--concurrency", type=int, help="concurrent clients (default 16; P3 64)")
    p.add_argument("--kills", type=int, help="SIGKILLs (default 20; P3 0)")
    p.add_argument("--postgres-restarts", type=int, help="PostgreSQL restarts (default 1; P3 0)")
    p.add_argument("--duration", type=float, default=120.0, help="seconds over which kills are spread")
    p.add_argument("--targets", help="comma-separated processes to kill (default: all of `smartcourse run`)")
    p.add_argument("--seed", type=int)
    p.add_argument("--settle-timeout", type=float, default=3600.0)
    p.add_argument(
        "--celery-visibility-timeout",
        type=int,
        help="CELERY_VISIBILITY_TIMEOUT for the run (the product default, 3600 s, is kept unless given)",
    )
    p.add_argument(
        "--email-sweep-seconds",
        type=float,
        help="EMAIL_SWEEP_SECONDS for the run (the product default, 60 s, is kept unless given)",
    )
    p.add_argument("--data-dir", type=Path, help="keep the run's data here (default: a temporary directory)")
    p.add_argument("--json", type=Path, help="also write the report as JSON")
    return p.parse_args(argv)


def config(args: argparse.Namespace) -> ChaosConfig:
    p3 = args.burst_p3
    students = args.students or (10_000 if p3 else 2000)
    env = {}
    if args.celery_visibility_timeout:
        env["CELERY_VISIBILITY_TIMEOUT"] = str(args.celery_visibility_timeout)
    if args.email_sweep_seconds:
        env["EMAIL_SWEEP_SECONDS"] = str(args.email_sweep_seconds)
    return ChaosConfig(
        students=students,
        capacity=args.capacity or (8000 if p3 else int(students * 0.9)),
        drops=args.drops if args.drops is not None else (0 if p3 else 20),
        lessons=args.lessons,
        concurrency=args.concurrency or (64 if p3 else 16),
        kills=args.kills if args.kills is not None else (0 if p3 else 20),
        postgres_restarts=args.postgres_restarts if args.postgres_restarts is not None else (0 if p3 else 1),
        chaos_seconds=args.duration,
        settle_timeout=args.settle_timeout,
        quiet_seconds=10.0,
        seed=args.seed,
        targets=tuple(args.targets.split(",")) if args.targets else None,
        env=env,
    )


def machine() -> str:
    load = os.getloadavg()
    return (
        f"{platform.node()}: {os.cpu_count()} cores, load {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f} "
        f"(1/5/15 min) at start, Python {platform.python_version()}"
    )


async def run_until_signalled(cfg: ChaosConfig, data_dir: Path) -> Report:
    """The run; SIGINT or SIGTERM cancels it, and its clean-up stops every process and engine it started (also when
    started in the background, where SIGINT would be ignored)."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    return await run_chaos(cfg, data_dir)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = config(args)
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="smartcourse-chaos-"))
    facts = machine()
    t0 = time.monotonic()
    report = asyncio.run(run_until_signalled(cfg, data_dir))
    print(("P3 burst" if args.burst_p3 else "chaos run") + f" on {facts}; wall {time.monotonic() - t0:.0f}s")
    print(f"load at the end: {'/'.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(report.render())
    if args.json:
        args.json.write_text(json.dumps(dataclasses.asdict(report), indent=2, default=str))
    if not args.data_dir and not report.violations:
        shutil.rmtree(data_dir, ignore_errors=True)
    elif report.violations:
        print(f"data kept for inspection: {data_dir}", file=sys.stderr)
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main())
