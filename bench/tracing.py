"""What tracing costs a request: the same authenticated, SQL-backed API call with the OpenTelemetry SDK off
(OTEL_SDK_DISABLED=true: no-op spans) and on (the default span-file exporter, batched).

    .venv/bin/python bench/tracing.py [--requests N] [--rounds R]

Each mode runs in its own process (tracing is configured once per process), in the app in-process over ASGI
(httpx.ASGITransport: no network noise), against the embedded PostgreSQL in one temporary data dir; the modes
alternate R times and the figures are the medians over rounds. The call: GET /enrollments/{id} of the student's
own enrollment (token check, account lookup, enrollment read: 4-6 SQL statements, so SQL spans are included).
Prints p50/mean wall time and CPU time per request (the process's, all threads: the exporter's batches count) per
mode and the on/off ratios; asserts nothing. On a shared machine wall time swings with the neighbours: read the CPU
ratio first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import _tree  # noqa: F401  (before any smartcourse import: this tree's code, here and in every child)

REPO = Path(__file__).resolve().parents[1]


def prepare() -> None:
    """The embedded PostgreSQL of the data dir, migrated (outside the event loop: alembic runs its own)."""
    from smartcourse import config
    from smartcourse.bootstrap import embedded_engines
    from smartcourse.migrations import upgrade_head

    os.environ["DATABASE_URL"] = embedded_engines(config.get_settings()).postgres_url()
    config.get_settings.cache_clear()
    upgrade_head(config.get_settings().database_url or "")


async def child(requests: int) -> dict[str, Any]:
    import httpx

    from smartcourse.api.local import build_local_app

    app = build_local_app()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
        body = {"email": email, "password": "a-long-password", "full_name": "Bench", "role": "student"}
        assert (await client.post("/auth/register", json=body)).status_code == 201
        token = (await client.post("/auth/login", json={"email": email, "password": "a-long-password"})).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        url = f"/enrollments/{uuid.uuid4()}"  # not found after the full auth + lookup path
        for _ in range(20):  # warm up pools and caches
            await client.get(url, headers=headers)
        times = []
        cpu_started = time.process_time()  # all threads of the process: the exporter's work counts too
        for _ in range(requests):
            started = time.perf_counter()
            r = await client.get(url, headers=headers)
            times.append((time.perf_counter() - started) * 1000)
            assert r.status_code == 404
    from smartcourse import telemetry

    telemetry.force_flush()  # the spans of these requests are written: their cost is in the CPU figure
    cpu_ms = (time.process_time() - cpu_started) * 1000 / requests
    return {"p50_ms": statistics.median(times), "mean_ms": statistics.fmean(times), "cpu_ms": cpu_ms, "n": requests}


def run_mode(mode: str, data_dir: str, requests: int) -> dict[str, Any]:
    env = {
        **os.environ,
        "SMARTCOURSE_DATA_DIR": data_dir,
        "SMARTCOURSE_ENV": "test",
        "SMARTCOURSE_LOG_LEVEL": "WARNING",
    }
    for var in (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_TRACES_EXPORTER",
        "DATABASE_URL",
    ):
        env.pop(var, None)
    if mode == "off":
        env["OTEL_SDK_DISABLED"] = "true"
    out = subprocess.run(
        [sys.executable, __file__, "--child", "--requests", str(requests)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if out.returncode != 0:
        raise SystemExit(f"{mode} run failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", action="store_true")
    args = parser.parse_args()
    if args.child:
        prepare()
        print(json.dumps(asyncio.run(child(args.requests))))
        os._exit(0)  # the embedded engines are stopped at exit by atexit; temporalio is not loaded here
    results: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
    with tempfile.TemporaryDirectory(prefix="bench-tracing-") as data_dir:
        for r in range(args.rounds):
            for mode in ("off", "on"):
                results[mode].append(run_mode(mode, data_dir, args.requests))
                print(f"round {r + 1} {mode}: {results[mode][-1]}", file=sys.stderr)
        spans = sum(1 for p in Path(data_dir, "traces").glob("*.jsonl") for _ in p.open())
    p50 = {m: statistics.median(x["p50_ms"] for x in v) for m, v in results.items()}
    mean = {m: statistics.median(x["mean_ms"] for x in v) for m, v in results.items()}
    cpu = {m: statistics.median(x["cpu_ms"] for x in v) for m, v in results.items()}
    print(f"GET /enrollments/{{id}} (auth + SQL), {args.requests} requests x {args.rounds} rounds per mode")
    print(f"  tracing off (OTEL_SDK_DISABLED): p50 {p50['off']:.2f} ms  mean {mean['off']:.2f} ms")
    print(f"  tracing on (span files, batch):  p50 {p50['on']:.2f} ms  mean {mean['on']:.2f} ms")
    print(f"  CPU per request (process, all threads): off {cpu['off']:.2f} ms  on {cpu['on']:.2f} ms")
    print(
        f"  ratio on/off: p50 {p50['on'] / p50['off']:.2f}x  mean {mean['on'] / mean['off']:.2f}x"
        f"  CPU {cpu['on'] / cpu['off']:.2f}x"
    )
    print(f"  spans written: {spans}")


if __name__ == "__main__":
    main()
