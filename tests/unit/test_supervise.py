"""`smartcourse run`'s children: one that exits is restarted (new pid, its group's leftovers gone), with a growing
pause, and after too many restarts in the window `run` is told to stop everything."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from smartcourse.supervise import Children, RestartPolicy, describe_exit

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def said() -> list[str]:
    return []


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def made(said: list[str], clock: Clock) -> Iterator[list[Children]]:
    made: list[Children] = []
    yield made
    for children in made:
        children.stop_all(timeout=5)


def _children(
    made: list[Children], said: list[str], clock: Clock, argv: dict[str, list[str]], policy: RestartPolicy | None = None
) -> Children:
    children = Children(argv, dict(os.environ), policy or RestartPolicy(), clock=clock, say=said.append)
    made.append(children)
    children.start_all()
    return children


def _wait_dead(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # A zombie (not our child: init reaps it, or not) counts as gone.
        with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                return True
        time.sleep(0.05)
    return False


def test_a_killed_child_is_restarted_after_a_pause_with_its_group_and_the_others_untouched(
    made: list[Children], said: list[str], clock: Clock, tmp_path: Path
) -> None:
    # The "worker" leaves a child of its own in its group (as Celery's pool or uvicorn's API processes would).
    pidfile = tmp_path / "grandchild"
    spawner = [
        sys.executable,
        "-c",
        "import subprocess, sys, time; "
        f"p = subprocess.Popen({SLEEPER!r}); open({str(pidfile)!r}, 'w').write(str(p.pid)); time.sleep(120)",
    ]
    children = _children(made, said, clock, {"api": SLEEPER, "worker": spawner})
    api, worker = children.procs["api"].pid, children.procs["worker"].pid
    deadline = time.monotonic() + 20
    while not pidfile.exists() or not pidfile.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    grandchild = int(pidfile.read_text())
    assert children.check() is None

    os.kill(worker, signal.SIGKILL)
    children.procs["worker"].wait(timeout=10)
    assert children.check() is None
    assert said[-1].startswith("worker exited with -9 (SIGKILL); restarting it in 1 s (restart 1 within 300 s: killed")
    assert _wait_dead(grandchild), "the killed worker's own child outlived it"
    assert children.procs["worker"].pid == worker  # not yet: after the pause
    clock.now += 1.0
    assert children.check() is None
    assert children.procs["worker"].pid != worker and children.procs["worker"].poll() is None
    assert said[-1] == f"worker restarted (pid {children.procs['worker'].pid})"
    assert children.procs["api"].pid == api and children.procs["api"].poll() is None
    assert children.restarts("worker") == 1 and children.restarts("api") == 0


def test_the_pause_doubles_and_after_the_limit_within_the_window_it_gives_up(
    made: list[Children], said: list[str], clock: Clock
) -> None:
    crasher = [sys.executable, "-c", "raise SystemExit(3)"]
    children = _children(made, said, clock, {"celery": crasher}, RestartPolicy(limit=3, window=60.0))
    delays = []
    for _ in range(3):
        children.procs["celery"].wait(timeout=20)
        assert children.check() is None
        delays.append(said[-1].split("restarting it in ")[1].split(" s")[0])
        clock.now += 10
        assert children.check() is None  # started again
    assert delays == ["1", "2", "4"]
    children.procs["celery"].wait(timeout=20)
    reason = children.check()
    assert reason is not None and "celery exited with 3 after 3 restarts within 60 s; giving up" in reason

    # Restarts older than the window no longer count: the same exit, much later, is restarted again.
    clock.now += 60
    assert children.check() is None
    assert said[-1].startswith("celery exited with 3; restarting it in 1 s (restart 1 of at most 3")


def test_a_child_killed_by_a_signal_is_restarted_however_often(
    made: list[Children], said: list[str], clock: Clock
) -> None:
    """explore38 F1: a worker SIGKILLed six times within 300 s (a launch-day burst under the OOM killer, issue #7's
    chaos regime) made `run` stop everything, the API included. Killed by a signal, it is restarted every 30 s at
    most, for as long as it takes; an exit code of its own still gives up (the test above)."""
    children = _children(made, said, clock, {"worker": SLEEPER}, RestartPolicy(limit=2, window=300.0, max_delay=8.0))
    delays = []
    for _ in range(5):
        os.kill(children.procs["worker"].pid, signal.SIGKILL)
        children.procs["worker"].wait(timeout=10)
        assert children.check() is None, said[-1]
        delays.append(said[-1].split("restarting it in ")[1].split(" s")[0])
        clock.now += 10
        assert children.check() is None  # started again
        assert children.procs["worker"].poll() is None
    assert delays == ["1", "2", "4", "8", "8"]
    assert "killed by a signal, it is restarted however often" in said[-2], said
    assert children.restarts("worker") == 5


def test_an_exit_of_its_own_after_kills_is_restarted_the_kills_do_not_count(
    made: list[Children], said: list[str], clock: Clock
) -> None:
    """explore70 F1: Celery killed four times, then its pool process killed as it started: Celery exits 1 on its own
    ("Could not start worker processes"), and that exit, counted after the kills, stopped everything, the API
    included. Only its own exits count toward giving up."""
    flaky = [sys.executable, "-c", "import time, sys; time.sleep(30)"]
    children = _children(made, said, clock, {"celery": flaky}, RestartPolicy(limit=2, window=300.0, max_delay=8.0))
    for _ in range(4):
        os.kill(children.procs["celery"].pid, signal.SIGKILL)
        children.procs["celery"].wait(timeout=10)
        assert children.check() is None, said[-1]
        clock.now += 10
        assert children.check() is None
    children.argv["celery"] = [sys.executable, "-c", "raise SystemExit(1)"]  # its next start fails on its own
    os.kill(children.procs["celery"].pid, signal.SIGKILL)
    children.procs["celery"].wait(timeout=10)
    assert children.check() is None
    clock.now += 10
    assert children.check() is None  # started: it exits 1 at once
    children.procs["celery"].wait(timeout=20)
    assert children.check() is None, said[-1]  # restarted, not given up
    assert "(restart 1 of at most 2 within 300 s)" in said[-1], said[-1]


def test_stop_all_stops_every_group_and_skips_one_waiting_for_its_restart(
    made: list[Children], said: list[str], clock: Clock
) -> None:
    children = _children(made, said, clock, {"api": SLEEPER, "worker": SLEEPER})
    os.kill(children.procs["worker"].pid, signal.SIGKILL)
    children.procs["worker"].wait(timeout=10)
    assert children.check() is None  # waiting for its restart
    children.stop_all(timeout=5)
    assert children.procs["api"].poll() == -signal.SIGTERM
    assert children.check() is None  # nothing is due any more: no restart after the stop
    assert children.procs["worker"].returncode == -signal.SIGKILL


def test_describe_exit() -> None:
    assert describe_exit(-9) == "-9 (SIGKILL)"
    assert describe_exit(1) == "1"


def test_supervisor_events_are_log_records(caplog: pytest.LogCaptureFixture) -> None:
    """explore8 F9: the restart lines were plain text beside the JSON log lines, so a log shipper dropped them."""
    from smartcourse.supervise import say_event

    with caplog.at_level("WARNING", logger="smartcourse.supervise"):
        say_event("worker exited with -9 (SIGKILL); restarting it in 1 s")
    assert [r.getMessage() for r in caplog.records if r.name == "smartcourse.supervise"] == [
        "worker exited with -9 (SIGKILL); restarting it in 1 s"
    ]


def test_a_child_alive_but_silent_while_the_database_answers_is_killed_and_restarted(
    made: list[Children], said: list[str], clock: Clock
) -> None:
    """explore40 F11: a stopped (or deadlocked) worker was shown `stale` and left alone: every admission waited for a
    human. Silent `after` seconds while the database answered as long: killed, then restarted as a killed child."""
    from smartcourse.supervise import HangWatch

    children = _children(made, said, clock, {"api": SLEEPER, "worker": SLEEPER, "celery": SLEEPER})
    watch = HangWatch(after=180, clock=clock)
    worker, celery = children.procs["worker"].pid, children.procs["celery"].pid
    beating = ["worker", "celery"]
    assert watch.hung(children, beating, {worker: 5.0, celery: 5.0}) == []
    clock.now += 200
    # Both silent 200 s, but the database answered this watch for 200 s only since now: an outage silences all.
    assert watch.hung(children, beating, None) == []
    assert watch.hung(children, beating, {worker: 205.0, celery: 4.0}) == []
    clock.now += 181
    hung = watch.hung(children, beating, {worker: 386.0, celery: 6.0})
    assert hung == [("worker", 386.0)]  # the api beats nothing and is never judged by this
    children.kill_hung("worker", "has not beaten for 386 s while the database answers: hung")
    assert _wait_dead(worker)
    clock.now += 1
    assert children.check() is None
    clock.now += 2
    assert children.check() is None
    assert children.procs["worker"].pid != worker and children.procs["worker"].poll() is None
    assert any("worker (pid" in line and "hung" in line for line in said), said
    # The new process has its own grace: judged again only `after` seconds after its start.
    assert watch.hung(children, beating, {celery: 6.0}) == []


def test_the_children_a_killed_run_left_are_stopped_by_the_next(tmp_path: Path) -> None:
    """explore58 F3: after `run` was SIGKILLed, the next start ran a second set beside its children (two workers, two
    Celery beats, four API processes on the port), and its Ctrl+C left the old ones answering. `run` records its
    children's pids; the next one stops those still running under the same data directory, and only those."""
    import json
    import subprocess
    import sys

    from smartcourse.supervise import CHILDREN_FILE, Children, stop_left_children

    data = tmp_path / "var"
    data.mkdir()
    env = {**os.environ, "SMARTCOURSE_DATA_DIR": str(data.resolve())}
    # A child with one of its own in its group (as uvicorn's API processes or Celery's pool are).
    family = [sys.executable, "-c", "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', "
              "'import time; time.sleep(60)']); time.sleep(60)"]  # fmt: skip
    children = Children({"worker": family}, env, record=data / CHILDREN_FILE)
    children.start_all()
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        recorded = json.loads((data / CHILDREN_FILE).read_text())
        assert recorded == {"worker": children.procs["worker"].pid}
        # The run is killed (nothing stops its children); a stranger's pid is in the file too (a reused pid).
        (data / CHILDREN_FILE).write_text(json.dumps({**recorded, "relay": stranger.pid}))
        time.sleep(0.5)  # the grandchild started
        said = stop_left_children(data, timeout=5)
        assert said == [f"stopped the worker (pid {recorded['worker']}) a previous run left running"]
        assert children.procs["worker"].wait(timeout=5) is not None
        ps = ["ps", "-o", "pid=,stat=", "-g", str(recorded["worker"])]
        group = subprocess.run(ps, capture_output=True, text=True)
        running = [line for line in group.stdout.splitlines() if not line.split()[1].startswith("Z")]
        assert running == [], group.stdout  # its own child too (a zombie left for init to reap is gone)
        assert stranger.poll() is None  # not under this data directory: left alone
        assert not (data / CHILDREN_FILE).exists() and stop_left_children(data) == []
    finally:
        stranger.kill()
        children.stop_all(timeout=1)
