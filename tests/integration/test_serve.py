"""`smartcourse serve` as an operator starts it: the HTTP server's own settings, seen from a client."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from smartcourse.engines import free_port, port_open
from tests.conftest import REPO


def _serve(port: int, log: Path, workers: int = 1, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with open(log, "ab") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "smartcourse.cli", "serve", "--port", str(port), "--workers", str(workers)],
            env=os.environ.copy() if env is None else env,
            cwd=REPO,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


async def _listening(server: subprocess.Popen[bytes], port: int, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not port_open("127.0.0.1", port):
        assert server.poll() is None, _tail(log)
        assert time.monotonic() < deadline, "the API did not open its port"
        await asyncio.sleep(0.2)


def _tail(log: Path) -> str:
    return log.read_text()[-3000:]


def _stop(server: subprocess.Popen[bytes], timeout: float) -> None:
    server.terminate()
    try:
        server.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        server.kill()


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
        await _listening(server, port, log, 120)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        assert await asyncio.to_thread(_get, conn, "/courses?page=1") == 200
        await asyncio.sleep(7)  # idle longer than uvicorn's default keep-alive (5 s)
        assert await asyncio.to_thread(_get, conn, "/courses?page=1") == 200  # the same connection, still open
        conn.close()
        # A request the HTTP server cannot parse is answered in the API's error shape (explore44 F5: text/plain).
        for raw in (
            b"FOO /courses HTTP/1.1\r\nHost: x\r\n\r\n",
            b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}",
            b"GET /courses HTTP/1.1\r\nHost: x\r\nIdempotency-Key: k\x01\r\n\r\n",
        ):
            head, body = await asyncio.to_thread(_exchange, port, raw)
            assert head.startswith(b"HTTP/1.1 400 ") and b"content-type: application/json" in head.lower(), head
            assert json.loads(body) == {
                "code": "bad_request",
                "message": "Invalid HTTP request received.",
                "details": None,
                "trace_id": None,
            }
        # A URL with raw UTF-8 in it says what to do (explore83 F17: `curl ".../search?q=España"`, a bare 400).
        head, body = await asyncio.to_thread(
            _exchange, port, "GET /search?q=España HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        )
        assert head.startswith(b"HTTP/1.1 400 ") and "percent-encode" in json.loads(body)["message"], body
        assert json.loads(body)["message"].endswith("(send /search?q=Espa%C3%B1a)"), body
        # Headers and URLs are bounded as bodies are (explore45 F8: a 30 MB header was read whole).
        many = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"v" * 1000) for i in range(100))
        for raw, status, code in (
            (b"GET /courses HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n", b"431", "headers_too_large"),
            (b"GET /courses?q=" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", b"414", "uri_too_long"),
        ):
            head, body = await asyncio.to_thread(_exchange, port, raw)
            assert head.startswith(b"HTTP/1.1 " + status), head
            assert json.loads(body)["code"] == code, body
            # As every answer of the app (explore48 F9).
            for header in (b"X-Content-Type-Options: nosniff", b"Cache-Control: no-store", b"X-Frame-Options: DENY"):
                assert b"\r\n" + header + b"\r\n" in head, head
        assert await asyncio.to_thread(_get, http.client.HTTPConnection("127.0.0.1", port, timeout=30), "/health") in (
            200,
            503,
        )
    finally:
        _stop(server, 20)


def _exchange(port: int, raw: bytes) -> tuple[bytes, bytes]:
    """`raw` sent on a new connection; the answer's head and body, read until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(raw)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head, body


def _burst(host: str, port: int, n: int) -> list[socket.socket]:
    """n connections opened at once, as a client pool or load balancer does (non-blocking connects in a row)."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    for s in socks:
        s.setblocking(False)
        s.connect_ex((host, port))
    for s in socks:
        select.select([], [s], [], 30)
        s.setblocking(True)
        s.settimeout(60)
    return socks


def _raw_get(sock: socket.socket, path: str) -> int:
    """One GET on an open connection, kept open; the response's status."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: api\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")),
        0,
    )
    while len(body) < length:
        body += sock.recv(65536)
    return int(head.split(b" ", 2)[1])


def _listening_children(server: subprocess.Popen[bytes], port: int) -> dict[int, int]:
    """The API processes under the supervisor `server` → how many of their sockets are connected to `port`
    (those listening on it count -1, so a process that listens but holds no connection reads as -1)."""
    import psutil

    counts: dict[int, int] = {}
    for child in psutil.Process(server.pid).children(recursive=True):
        try:
            conns = child.net_connections(kind="tcp")
        except psutil.Error:
            continue
        for c in conns:
            if c.laddr and c.laddr.port == port:
                if c.status == psutil.CONN_LISTEN:
                    counts[child.pid] = counts.get(child.pid, 0) - 1
                elif c.status == psutil.CONN_ESTABLISHED:
                    counts[child.pid] = counts.get(child.pid, 0) + 1
    return counts


async def test_several_api_processes_share_a_burst_of_keep_alive_connections(container: Any, tmp_path: Path) -> None:
    """`--workers 2`: a burst of 24 keep-alive connections (a load balancer's pool, the bench's clients) lands on
    both processes. With uvicorn's one shared socket, the process that woke first accepted the whole burst and the
    other sat idle (one at 82 % of a core, the other at 0-8 %: docs/benchmarks.md, "Ninth pass")."""
    port, log = free_port(), tmp_path / "serve.log"
    server = _serve(port, log, workers=2)
    conns: list[socket.socket] = []
    try:
        deadline = time.monotonic() + 180
        while len(_listening_children(server, port)) < 2:  # both processes listen (each on its own socket)
            assert server.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the two API processes did not both listen"
            await asyncio.sleep(0.3)
        conns = _burst("127.0.0.1", port, 24)  # every connection opened within microseconds, before any request
        statuses = await asyncio.gather(*(asyncio.to_thread(_raw_get, conn, "/health") for conn in conns))
        assert set(statuses) <= {200, 503}, statuses  # answered (503: an engine not ready is still an answer)
        held = {pid: n + 1 for pid, n in _listening_children(server, port).items()}  # the connections each holds
        assert len(held) == 2 and sum(held.values()) == 24, held
        assert min(held.values()) >= 3, f"one process took the burst: {held}"  # P(< 3 of 24 | even) ≈ 4e-5
        # A process that dies is replaced at once, also while the one pinged before it does not answer (still
        # starting, or starved): its ping waits up to 30 s, and the dead one waited behind it (explore38 F8).
        first, second = sorted(held)  # uvicorn's list is in creation order
        os.kill(first, signal.SIGSTOP)
        try:
            await asyncio.sleep(1.5)  # the supervisor is now waiting on the stopped one's ping (a round every 0.5 s)
            os.kill(second, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while not set(_api_processes(server)) - {first, second}:
                assert time.monotonic() < deadline, "the dead API process was not replaced within 10 s"
                await asyncio.sleep(0.2)
        finally:
            os.kill(first, signal.SIGCONT)
    finally:
        for conn in conns:
            conn.close()
        _stop(server, 30)


def _api_processes(server: subprocess.Popen[bytes]) -> list[int]:
    """The live API processes under the supervisor `server` (spawned; not its engines nor its resource tracker)."""
    import psutil

    found = []
    for child in psutil.Process(server.pid).children(recursive=False):
        try:
            if child.status() != psutil.STATUS_ZOMBIE and "spawn_main" in " ".join(child.cmdline()):
                found.append(child.pid)
        except psutil.Error:
            continue
    return found


async def test_serve_stops_the_engines_it_started(container: Any, tmp_path: Path) -> None:
    """`--workers 2` with no REDIS_URL: the API processes are multiprocessing children, which leave by os._exit
    without running `atexit`; the embedded Redis one of them started on its first request outlived the server (one
    was found after a test run). The supervisor now starts what every request needs and stops it when it ends."""
    import psutil

    from smartcourse.engines import ManagedProcess, pid_alive

    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env["SMARTCOURSE_DATA_DIR"] = str(data)
    port, log = free_port(), tmp_path / "serve.log"
    server = _serve(port, log, workers=2, env=env)
    try:
        await _listening(server, port, log, 180)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        assert await asyncio.to_thread(_get, conn, "/courses?page=1") == 200  # the catalogue's cache is in Redis
        conn.close()
        redis = int(ManagedProcess("redis", data / "redis").pid_file.read_text())
        assert pid_alive(redis)
    finally:
        _stop(server, 30)
    assert not pid_alive(redis), log.read_text()[-3000:]
    left = [p.info for p in psutil.process_iter(["pid", "cmdline"]) if str(data) in " ".join(p.info["cmdline"] or [])]
    assert not left, left


def _register(port: int, email: str, forwarded_for: str) -> int:
    import json

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    body = {"email": email, "password": "a-long-password", "full_name": "Eve", "role": "student"}
    conn.request(
        "POST",
        "/auth/register",
        body=json.dumps(body),
        headers={"content-type": "application/json", "x-forwarded-for": forwarded_for},
    )
    status = conn.getresponse().status
    conn.close()
    return status


async def test_a_client_cannot_choose_its_address_for_the_per_address_limits(container: Any, tmp_path: Path) -> None:
    """uvicorn believes X-Forwarded-For from 127.0.0.1 when proxy headers are on, so every local client (or one
    behind a same-host proxy passing the header through) could register or try passwords from an address of its
    choosing. Unless FORWARDED_ALLOW_IPS names the proxies, the limit is the connection's."""
    import uuid

    env = {**os.environ, "REGISTER_RATE_LIMIT_IP": "2/minute"}
    env.pop("FORWARDED_ALLOW_IPS", None)
    port, log = free_port(), tmp_path / "serve.log"
    server = _serve(port, log, env=env)
    try:
        await _listening(server, port, log, 120)
        statuses = [
            await asyncio.to_thread(_register, port, f"xff-{uuid.uuid4().hex[:8]}@example.com", f"203.0.113.{i}")
            for i in range(1, 4)
        ]
        assert statuses == [201, 201, 429], (statuses, _tail(log))
    finally:
        _stop(server, 20)
