"""`smartcourse serve` as an operator starts it: the HTTP server's own settings, seen from a client."""

from __future__ import annotations

import asyncio
import http.client
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from smartcourse.engines import free_port, port_open
from tests.conftest import REPO


def _serve(port: int, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "smartcourse.cli", "serve", "--port", str(port), "--workers", "1"],
            env=os.environ.copy(),
            cwd=REPO,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _get(conn: http.client.HTTPConnection, path: str) -> int:
    conn.request("GET", path)
    response = conn.getresponse()
    response.read()
    return response.status


async def test_an_idle_keep_alive_connection_is_left_for_the_client_to_close(container: Any, tmp_path: Path) -> None:
    """A client (or a load balancer, 60 s idle on an ALB) reuses a pooled connection after some idle seconds; if the
    server had closed it meanwhile (uvicorn's default: after 5 s), that request meets a reset: the chaos runs' client
    `ReadError`s, a 502 behind a load balancer."""
    port, log = free_port(), tmp_path / "serve.log"
    server = _serve(port, log)
    try:
        deadline = time.monotonic() + 120
        while not port_open("127.0.0.1", port):
            assert server.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the API did not open its port"
            await asyncio.sleep(0.2)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        assert await asyncio.to_thread(_get, conn, "/courses?page=1") == 200
        await asyncio.sleep(7)  # idle longer than uvicorn's default keep-alive (5 s)
        assert await asyncio.to_thread(_get, conn, "/courses?page=1") == 200  # the same connection, still open
        conn.close()
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
