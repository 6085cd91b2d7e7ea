"""`EmbeddedEngines.revive` (what `smartcourse run` calls every few seconds): an embedded engine that died is started
again at its address, and the event is said (explore18 F12)."""

from __future__ import annotations

import os
import signal
import smtplib
import time
from pathlib import Path

import pytest
import redis

from smartcourse.engines import EmbeddedEngines, ManagedProcess, pid_alive, port_open

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def _kill(proc: ManagedProcess) -> int:
    pid = int(proc.pid_file.read_text())
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while pid_alive(pid):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return pid


def test_a_killed_engine_is_started_again_at_its_address(tmp_path: Path) -> None:
    engines = EmbeddedEngines(tmp_path / "data")
    try:
        redis_url = engines.redis_url()
        r = redis.Redis(unix_socket_path=redis_url.removeprefix("unix://"))
        r.set("kept", "yes")
        smtp_host, smtp_port = engines.smtp_address(tmp_path / "mail")
        temporal = engines.temporal_address()
        assert engines.revive(tmp_path / "mail") == []  # all alive: nothing to say

        killed = {p.name: _kill(p) for p in list(engines.started)}
        assert set(killed) == {"redis", "smtp", "temporal"}
        events = engines.revive(tmp_path / "mail")
        assert len(events) == 3, events
        for name, pid in killed.items():
            [line] = [e for e in events if e.startswith(f"the embedded {name} (pid {pid}) exited; started again at")]
            assert f"{name}.log" in line
        # The same addresses: every running process keeps its settings.
        assert r.get("kept") == b"yes"  # the append-only file came back with it
        with smtplib.SMTP(smtp_host, smtp_port, timeout=5) as smtp:
            assert smtp.noop()[0] == 250
        host, port = temporal.rsplit(":", 1)
        assert port_open(host, int(port))
        assert sorted(p.name for p in engines.started) == ["redis", "smtp", "temporal"]
        assert engines.revive(tmp_path / "mail") == []
    finally:
        engines.stop()
