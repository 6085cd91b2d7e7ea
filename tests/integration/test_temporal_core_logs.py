"""temporalio's Rust core logs as the process's JSON lines (explore18 F6: coloured text lines, half the log during a
Temporal outage). Its own server and process: the suite's Temporal cannot be stopped, and a process has one default
runtime."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from smartcourse.engines import free_port

SCRIPT = textwrap.dedent(
    """
    import asyncio, os, subprocess, sys
    from datetime import timedelta
    from smartcourse.bootstrap import forward_temporal_core_logs
    from smartcourse.logging import configure_logging

    configure_logging()
    port, ui = int(sys.argv[1]), int(sys.argv[2])
    argv = [sys.argv[3], "server", "start-dev", "--headless", "--port", str(port), "--ui-port", str(ui)]
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    async def main():
        from temporalio.client import Client

        forward_temporal_core_logs()
        for _ in range(120):
            try:
                client = await Client.connect(f"127.0.0.1:{port}")
                break
            except Exception:
                await asyncio.sleep(0.5)
        server.kill()
        server.wait()
        try:
            await client.start_workflow("X", id="w", task_queue="q", rpc_timeout=timedelta(seconds=1.5))
        except Exception:
            pass
        await asyncio.sleep(1)

    asyncio.run(main())
    os._exit(0)
    """
)


def test_the_temporal_clients_own_log_lines_are_json(tmp_path: Path) -> None:
    temporal = Path(sys.executable).parent / "temporal"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "SMARTCOURSE_LOG_FORMAT": "json"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(free_port()), str(free_port()), str(temporal)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    retries = [line for line in done.stderr.splitlines() if "retried" in line]
    assert retries, done.stderr[-2000:]
    for line in retries:
        record = json.loads(line)  # not "\x1b[2m2026-... WARN temporalio_client::retry: ..."
        assert record["level"] == "warning" and record["logger"].startswith("temporalio.core")
