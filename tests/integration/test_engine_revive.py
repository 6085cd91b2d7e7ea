"""`EmbeddedEngines.revive` (what `smartcourse run` calls every few seconds): an embedded engine that died is started
again at its address, and the event is said (explore18 F12)."""

from __future__ import annotations

import logging
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


def test_a_killed_engine_is_started_again_at_its_address(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A documented exporter of SmartCourse's own: the Temporal server refused to start on it (explore58 F4).
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "file")
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


def test_a_killed_postgres_is_started_again_in_place(pg_tmp: Path) -> None:
    """explore38 F3: `run` said nothing of a dead embedded PostgreSQL, and the product stayed degraded until an
    operator stopped and started everything. Its postmaster killed, it is started again with its socket and data."""
    import asyncio

    import asyncpg
    from pgserver.utils import PostmasterInfo

    engines = EmbeddedEngines(pg_tmp / "data")
    try:
        url = engines.postgres_url().replace("postgresql+asyncpg://", "postgresql://", 1)

        async def query(*sql: str) -> object:
            conn = await asyncpg.connect(url)
            try:
                for one in sql[:-1]:
                    await conn.execute(one)
                return await conn.fetchval(sql[-1])
            finally:
                await conn.close()

        asyncio.run(query("create table kept (v int)", "insert into kept values (7)"))
        assert engines.revive(pg_tmp / "mail") == []
        info = PostmasterInfo.read_from_pgdata(pg_tmp / "data" / "postgres")
        assert info is not None
        os.kill(info.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while pid_alive(info.pid):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        said: list[str] = []
        deadline = time.monotonic() + 120
        while not any("started again in" in e for e in said):  # its children may hold the shared memory a moment
            engines._revive_after.clear()  # (then tried again after the pause, made 0 here)
            said += engines.revive(pg_tmp / "mail")
            assert time.monotonic() < deadline, said
            time.sleep(0.5)
        assert all(e.startswith(f"the embedded postgres (pid {info.pid}) exited") for e in said), said
        assert asyncio.run(query("select v from kept")) == 7  # the same URL, the same data
        assert engines.revive(pg_tmp / "mail") == []
    finally:
        engines.stop()


def test_a_killed_chat_model_server_is_started_again_and_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """explore42 F6: `run` said nothing when the embedded model server died (its death showed at the next ask, in one
    API process's log). explore55 F7: left for the next ask, it kept `/health` at 503 until a student asked: it is
    started again, as it was in use, and the API processes follow it to its new address."""
    engines = EmbeddedEngines(tmp_path / "data")
    try:
        with caplog.at_level(logging.INFO, logger="smartcourse.engines"):
            address = engines.llm_base_url()
        # Its start is said (explore55 F11: only its exit ever was).
        (llm,) = [p for p in engines.started if p.name == "llm"]
        started = f"started the embedded llm (pid {llm.pid_file.read_text()}) at {address} in "
        assert any(r.getMessage().startswith(started) for r in caplog.records), caplog.text
        assert engines.revive(tmp_path / "mail") == [] and engines.llm_state() == (address, False)
        (llm,) = [p for p in engines.started if p.name == "llm"]
        pid = _kill(llm)
        [event] = engines.revive(tmp_path / "mail")
        new_address, exited = engines.llm_state()
        assert not exited and new_address and new_address != address
        new_pid = int(llm.pid_file.read_text())
        assert f"the embedded llm (pid {pid}) exited; started again at {new_address} (pid {new_pid})" in event, event
        assert engines.revive(tmp_path / "mail") == []  # once
        # Killed and started again by the next ask between two looks: said too (explore43).
        (llm,) = [p for p in engines.started if p.name == "llm"]
        pid = _kill(llm)
        engines.llm_base_url()
        [event] = engines.revive(tmp_path / "mail")
        assert f"the embedded llm (pid {pid}) exited; an assistant call has started it again" in event, event
        assert engines.revive(tmp_path / "mail") == []
        # One that does not come back is said, and tried again after the pause, not at every look.
        (llm,) = [p for p in engines.started if p.name == "llm"]
        pid = _kill(llm)

        def fails(self: EmbeddedEngines) -> str:
            raise RuntimeError("llm exited with 1")

        monkeypatch.setattr(EmbeddedEngines, "llm_base_url", fails)
        [event] = engines.revive(tmp_path / "mail")
        assert f"the embedded llm (pid {pid}) exited and did not start again (llm exited with 1)" in event, event
        assert engines.revive(tmp_path / "mail") == []
        monkeypatch.undo()
        engines._revive_after.clear()  # (the pause, made 0 here)
        [event] = engines.revive(tmp_path / "mail")
        assert f"the embedded llm (pid {pid}) exited; started again at" in event, event
    finally:
        engines.stop()


def test_temporal_is_started_on_other_ports_when_one_was_taken_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A port free when chosen was taken before the dev server bound it (a CI run's suite did not start: "failed
    listening for HTTP API ...: address already in use"): it is started again on other ports."""
    import socket

    import smartcourse.engines as engines_module

    real = engines_module.free_port
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = iter([real(), real(), taken.getsockname()[1]])  # its gRPC, UI, then HTTP port: taken

        monkeypatch.setattr(engines_module, "free_port", lambda: next(ports, None) or real())
        engines = EmbeddedEngines(tmp_path / "data")
        try:
            host, port = engines.temporal_address().rsplit(":", 1)
            assert port_open(host, int(port))
            assert b"address already in use" in (tmp_path / "data" / "temporal" / "temporal.log").read_bytes()
        finally:
            engines.stop()


def _taken_first(monkeypatch: pytest.MonkeyPatch, taken: int) -> None:
    """`free_port` answers `taken` (a port another server took after it was chosen) first, then free ones."""
    import smartcourse.engines as engines_module

    real = engines_module.free_port
    ports = iter([taken])
    monkeypatch.setattr(engines_module, "free_port", lambda: next(ports, None) or real())


def test_the_smtp_sink_is_started_on_another_port_when_its_own_was_taken_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only Temporal tried other ports (session 35's note): the sink took another server's answer on its port for
    its own readiness, and e-mail went to that server while the sink had exited ("address already in use")."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        _taken_first(monkeypatch, taken.getsockname()[1])
        engines = EmbeddedEngines(tmp_path / "data")
        try:
            host, port = engines.smtp_address(tmp_path / "mail")
            assert port != taken.getsockname()[1]
            assert b"address already in use" in (tmp_path / "data" / "smtp" / "smtp.log").read_bytes().lower()
            with smtplib.SMTP(host, port, timeout=10) as smtp:
                smtp.sendmail("a@example.com", ["b@example.com"], "Subject: hi\r\n\r\nbody")
            assert len(list((tmp_path / "mail").glob("*.eml"))) == 1
        finally:
            engines.stop()


def test_the_chat_model_server_is_started_on_another_port_when_its_own_was_taken_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """llama.cpp exits saying "Failed to init server" when its port was taken: started again on another (the first
    ask failed with "llm exited with 1")."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        _taken_first(monkeypatch, taken.getsockname()[1])
        engines = EmbeddedEngines(tmp_path / "data")
        try:
            address = engines.llm_base_url()
            assert f":{taken.getsockname()[1]}/" not in address
            assert b"Failed to init server" in (tmp_path / "data" / "llm" / "llm.log").read_bytes()
            assert engines.llm_state() == (address, False)
        finally:
            engines.stop()
