"""Issue #9.7: a process killed with -9 no longer keeps the embedded PostgreSQL alive after a clean stop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from smartcourse.engines import PG_HANDLES, prune_stale_handles


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_dead_handle_holders_are_pruned(tmp_path: Path) -> None:
    dead = _dead_pid()
    (tmp_path / PG_HANDLES).write_text(json.dumps([dead, os.getpid()]))
    assert prune_stale_handles(tmp_path) == [dead]
    # With the stale pid gone, this process is the last holder: pgserver's cleanup stops the server.
    assert json.loads((tmp_path / PG_HANDLES).read_text()) == [os.getpid()]
    assert prune_stale_handles(tmp_path) == []


def test_no_handle_file_is_fine(tmp_path: Path) -> None:
    assert prune_stale_handles(tmp_path) == []
    (tmp_path / PG_HANDLES).write_text("not json")
    assert prune_stale_handles(tmp_path) == []


def test_a_server_orphaned_by_a_killed_starter_is_adopted_and_stopped(tmp_path: Path) -> None:
    from smartcourse.engines import EmbeddedEngines, ManagedProcess, pid_alive

    proc = ManagedProcess("dummy", tmp_path / "dummy")
    proc.start([sys.executable, "-c", "import time; time.sleep(60)"], "addr", lambda: True)
    server = int(proc.pid_file.read_text())
    proc.owner_file.write_text(str(_dead_pid()))  # the `smartcourse run` that started it was killed -9
    assert proc.orphaned()
    engines = EmbeddedEngines(tmp_path)
    engines._adopt_orphan(ManagedProcess("dummy", tmp_path / "dummy"))
    engines.stop()  # the later clean stop
    assert not pid_alive(server)


def test_a_server_that_exited_is_reaped_when_its_address_is_next_asked(tmp_path: Path) -> None:
    """explore53 F8: a model server killed mid-stream stayed a zombie (`<defunct>`) of the API process that had started
    it until that process stopped. Asking for the running address (as the next assistant call does) reaps it."""
    import os
    import signal
    import time

    from smartcourse.engines import ManagedProcess

    proc = ManagedProcess("llm", tmp_path / "llm")
    proc.start([sys.executable, "-c", "import time; time.sleep(60)"], "addr", lambda: True)
    server = int(proc.pid_file.read_text())
    os.kill(server, signal.SIGKILL)
    stat = Path(f"/proc/{server}/stat")
    for _ in range(50):  # dead, not yet reaped: a zombie of this process
        if stat.read_text().rsplit(")", 1)[1].split()[0] == "Z":
            break
        time.sleep(0.05)
    assert proc.running_address() is None
    assert not stat.exists(), "the dead server is still a zombie of the process that started it"


def test_a_server_with_a_live_starter_is_left_to_it(tmp_path: Path) -> None:
    from smartcourse.engines import EmbeddedEngines, ManagedProcess, pid_alive

    proc = ManagedProcess("dummy", tmp_path / "dummy")
    proc.start([sys.executable, "-c", "import time; time.sleep(60)"], "addr", lambda: True)
    server = int(proc.pid_file.read_text())
    try:
        engines = EmbeddedEngines(tmp_path)
        engines._adopt_orphan(ManagedProcess("dummy", tmp_path / "dummy"))  # owner: this (live) process
        engines.stop()
        assert pid_alive(server)
    finally:
        proc.stop()


def test_servers_left_by_exited_starters_are_stopped_and_live_ones_kept(tmp_path: Path) -> None:
    """An API process of `smartcourse serve --workers N` leaves by os._exit (a multiprocessing child: no atexit), so
    a Redis or chat model it started on first use outlives it; `stop_orphans` at the end of serve/run stops those,
    and leaves a server whose starter still runs."""
    from smartcourse.engines import EmbeddedEngines, ManagedProcess, pid_alive

    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    left = ManagedProcess("llm", tmp_path / "llm")
    left.start(sleeper, "http://127.0.0.1:1/v1", lambda: True)
    left.owner_file.write_text(str(_dead_pid()))  # the API process that started it has exited
    starting = ManagedProcess("redis", tmp_path / "redis")  # its starter died before it was ready: no address yet
    starting.start(sleeper, "unix:///nowhere", lambda: True)
    starting.addr_file.unlink()
    starting.owner_file.write_text(str(_dead_pid()))
    kept = ManagedProcess("temporal", tmp_path / "temporal")
    kept.start(sleeper, "127.0.0.1:1", lambda: True)  # owner: this live process
    pids = {p.name: int(p.pid_file.read_text()) for p in (left, starting, kept)}
    try:
        assert sorted(EmbeddedEngines(tmp_path).stop_orphans()) == ["llm", "redis"]
        assert not pid_alive(pids["llm"]) and not pid_alive(pids["redis"])
        assert pid_alive(pids["temporal"])
        assert not left.pid_file.exists() and not starting.pid_file.exists()
        assert EmbeddedEngines(tmp_path).stop_orphans() == []  # nothing left to stop
    finally:
        kept.stop()
