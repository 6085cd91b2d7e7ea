"""The embedded beat's watch (explore70 F2: a killed beat went unnoticed and the e-mail sweeper stopped for good)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from smartcourse import tasks


def test_a_process_is_gone_once_it_exited_even_before_it_is_reaped() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert not tasks.process_gone(child.pid)
        os.kill(child.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while not tasks.process_gone(child.pid):  # a zombie until reaped: gone all the same
            assert time.monotonic() < deadline, "a killed child still reads as alive"
            time.sleep(0.05)
    finally:
        child.kill()
        child.wait()
    assert tasks.process_gone(child.pid)  # reaped: no such process


def test_the_watch_kills_the_worker_when_the_beat_is_gone_and_not_while_it_shuts_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    killed: list[tuple[int, int]] = []
    monkeypatch.setattr(tasks.os, "kill", lambda pid, sig: killed.append((pid, sig)))
    monkeypatch.setattr(tasks._BeatWatch, "EVERY", 0.01)
    gone = {"now": False}
    monkeypatch.setattr(tasks, "process_gone", lambda pid: gone["now"])
    watch = tasks._BeatWatch()
    thread = threading.Thread(target=watch._watch, args=(12345,), daemon=True)
    thread.start()
    time.sleep(0.1)
    assert killed == []  # alive: nothing done
    gone["now"] = True
    thread.join(timeout=5)
    assert killed == [(os.getpid(), signal.SIGKILL)]  # gone: the worker kills itself, to be restarted

    killed.clear()
    watch = tasks._BeatWatch()
    watch.stopping = True  # the worker shuts down: its beat stops with it
    watch._watch(12345)
    assert killed == []
