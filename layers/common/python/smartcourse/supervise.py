"""The children of `smartcourse run`: started each in a process group of its own, restarted when one exits
unexpectedly (with a backoff, up to a limit), and stopped as groups.

A child that exits while `run` is not stopping has crashed or been killed (the OOM killer, an operator's kill -9):
the rest of the product must not go down with it (the API keeps answering; a killed worker or Celery loses nothing,
its work is retried by whoever takes it up next). It is restarted after `RestartPolicy.delay` (1 s, then doubling
up to 30 s). When one child has been restarted `RestartPolicy.limit` times within `RestartPolicy.window` seconds and
exits again *by itself* (an exit code: a bad setting, a missing file), something is wrong that a restart does not
fix: `check` says so and `run` stops everything. A child killed by a signal (the OOM killer, an operator's or a chaos
run's kill -9, a crash) is restarted however often, every 30 s at most: taking the API down because a background
process keeps being killed turned a backlog that drains later into a full outage on launch day (explore38 F1: issue
#7's own chaos regime, run under `run`, stopped the product). The chaos rig (devtools/chaos.py) starts the same
processes under its own supervisor instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class RestartPolicy:
    """When to restart a child that exited, and when to give up."""

    limit: int = 5  # restarts of one child within `window` ...
    window: float = 300.0  # ... after which its next exit stops everything
    first_delay: float = 1.0  # before the first restart; doubled for each restart within `window`
    max_delay: float = 30.0

    def delay(self, recent: int) -> float:
        """The pause before a restart, `recent` restarts of the same child having been made within the window."""
        return float(min(self.max_delay, self.first_delay * 2**recent))


def describe_exit(code: int) -> str:
    """`-9 (SIGKILL)` for a child killed by a signal, else its exit code."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"{code} ({signal.Signals(-code).name})"
    return str(code)


def signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    """`sig` to the process group `proc` leads (started with start_new_session), if any of it is left."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def say_event(line: str) -> None:
    """A supervisor event (a child exited, restarted, or the run gives up): a log line, JSON like every process's
    (docs/operations.md, "Logs"), so a log shipper keeps the events an operator needs most."""
    from smartcourse.logging import configure_logging

    configure_logging()
    logging.getLogger("smartcourse.supervise").warning(line)


#: Where `run` keeps the pid of each child it started (in its data directory), so that the next run can stop those a
#: killed run left behind.
CHILDREN_FILE = "run.children.json"


def _environ_names(pid: int, data_dir: Path) -> bool:
    """Process `pid` runs with SMARTCOURSE_DATA_DIR set to `data_dir` (not a stranger that took a freed pid)."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return f"SMARTCOURSE_DATA_DIR={data_dir.resolve()}".encode() in environ.split(b"\0")


def _groups_running(groups: set[int]) -> bool:
    """Whether a process of one of these process groups is running (zombies, not reaped yet, are not)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) in groups:
            return True
    return False


def stop_left_children(data_dir: Path, timeout: float = 15) -> list[str]:
    """Stop the children a previous `run` of `data_dir` left running (it was killed, SIGKILL or a crash, so it could
    not stop them): each named in its `CHILDREN_FILE` and still running under this data directory, its whole group
    SIGTERMed, then SIGKILLed after `timeout`. One line per child stopped. Call with the data directory's lock held:
    no run owns them then. explore58 F3: the next start ran a second set beside them (two workers, two Celery beats,
    four API processes on the port), and its Ctrl+C left the old ones answering."""
    import json

    record = data_dir / CHILDREN_FILE
    try:
        left = {str(name): int(pid) for name, pid in json.loads(record.read_text()).items()}
    except (OSError, ValueError, AttributeError, TypeError):
        return []
    alive = {name: pid for name, pid in left.items() if _environ_names(pid, data_dir)}
    for pid in alive.values():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _groups_running(set(alive.values())):
        time.sleep(0.1)
    for pid in alive.values():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _groups_running(set(alive.values())):
        time.sleep(0.05)
    record.unlink(missing_ok=True)
    return [f"stopped the {name} (pid {pid}) a previous run left running" for name, pid in alive.items()]


def children_gone(data_dir: Path) -> dict[str, int]:
    """The children the `run` of `data_dir` started (its `CHILDREN_FILE`) that are not running now, name -> pid: killed
    or crashed, their restart pending (the record names each child's newest pid). Read by `/health` on the same
    machine: a dead worker read `up` until its last beat was a minute old (explore70 F4). Empty without a record (no
    `run` here: a deployment, the tests)."""
    import json

    try:
        recorded = {str(name): int(pid) for name, pid in json.loads((data_dir / CHILDREN_FILE).read_text()).items()}
    except (OSError, ValueError, AttributeError, TypeError):
        return {}
    return {name: pid for name, pid in recorded.items() if not _environ_names(pid, data_dir)}


@dataclass
class Children:
    """The long-running children of `smartcourse run` (name -> argv), all started with `env`; `record`: the file
    keeping their pids (`CHILDREN_FILE`), for the next run if this one is killed."""

    argv: Mapping[str, list[str]]
    env: Mapping[str, str]
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    clock: Callable[[], float] = time.monotonic
    say: Callable[[str], None] = say_event
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _due: dict[str, float] = field(default_factory=dict)  # name -> when to start it again
    _restarts: dict[str, list[float]] = field(default_factory=dict)  # name -> when it was restarted
    # name -> when it exited with a code of its own (not killed by a signal): only those count toward giving up.
    _own_exits: dict[str, list[float]] = field(default_factory=dict)
    _stopped: bool = False
    started_at: dict[str, float] = field(default_factory=dict)  # name -> when its current process started
    record: Path | None = None

    def start(self, name: str) -> None:
        # Each in a process group of its own, stopped as a group: a child's own children (Celery's pool and its
        # embedded beat, uvicorn's API processes) go with it, even when it has to be killed. Ctrl+C reaches `run`
        # only; it stops the rest.
        self.procs[name] = subprocess.Popen(self.argv[name], env=dict(self.env), start_new_session=True)
        self.started_at[name] = self.clock()
        self._write_record()

    def _write_record(self) -> None:
        if self.record is None:
            return
        import json

        tmp = self.record.with_suffix(".tmp")
        tmp.write_text(json.dumps({name: proc.pid for name, proc in self.procs.items()}))
        tmp.replace(self.record)

    def kill_hung(self, name: str, why: str) -> None:
        """A child alive but hung (`HangWatch`): killed, so that `check` restarts it as any killed child."""
        proc = self.procs.get(name)
        if proc is None or proc.poll() is not None:
            return
        self.say(f"{name} (pid {proc.pid}) {why}: killing it, to be restarted")
        signal_group(proc, signal.SIGKILL)

    def start_all(self) -> None:
        for name in self.argv:
            self.start(name)

    def restarts(self, name: str) -> int:
        """How many times `name` was restarted (in all)."""
        return len(self._restarts.get(name, []))

    def check(self) -> str | None:
        """Schedule a restart of each child that exited and start those whose pause is over; the reason to stop
        everything when a child exited once more after `policy.limit` restarts within `policy.window`, else None."""
        if self._stopped:
            return None
        now = self.clock()
        for name, proc in self.procs.items():
            if name in self._due or proc.poll() is None:
                continue
            # What is left of its group goes too: a Celery pool process, or uvicorn's API processes, which would
            # otherwise keep serving the port (SO_REUSEPORT) beside the new ones.
            signal_group(proc, signal.SIGKILL)
            recent = [t for t in self._restarts.get(name, []) if now - t < self.policy.window]
            killed = proc.returncode < 0  # by a signal, from outside or a crash: not a setting a restart cannot fix
            # Only its own exits count toward giving up: a Celery whose pool process was killed as it started exits
            # 1 ("Could not start worker processes"), and after four kills that one exit stopped everything, the
            # API included (explore70 F1).
            own = [t for t in self._own_exits.get(name, []) if now - t < self.policy.window]
            if len(own) >= self.policy.limit and not killed:
                return (
                    f"{name} exited with {describe_exit(proc.returncode)} after {len(own)} restarts within "
                    f"{self.policy.window:.0f} s; giving up: stopping everything (see its log above)"
                )
            if not killed:
                self._own_exits.setdefault(name, []).append(now)
            delay = self.policy.delay(len(recent))
            self._due[name] = now + delay
            if killed:
                which = (
                    f"restart {len(recent) + 1} within {self.policy.window:.0f} s: killed by a signal, it is "
                    "restarted however often; the rest of the product keeps running"
                )
            else:
                which = f"restart {len(own) + 1} of at most {self.policy.limit} within {self.policy.window:.0f} s"
            self.say(f"{name} exited with {describe_exit(proc.returncode)}; restarting it in {delay:.0f} s ({which})")
        for name, at in list(self._due.items()):
            if now >= at:
                del self._due[name]
                self._restarts.setdefault(name, []).append(now)
                self.start(name)
                self.say(f"{name} restarted (pid {self.procs[name].pid})")
        return None

    def stop_all(self, timeout: float = 15) -> None:
        """SIGTERM every child's group, wait up to `timeout` s for each, then SIGKILL whatever of each group is left
        (a late beat, a stuck pool process). A child waiting for its restart was already taken down."""
        self._stopped = True
        live = {name: proc for name, proc in self.procs.items() if name not in self._due}
        for proc in live.values():
            signal_group(proc, signal.SIGTERM)
        for proc in live.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=timeout)
            signal_group(proc, signal.SIGKILL)
        self._due.clear()
        if self.record is not None:
            self.record.unlink(missing_ok=True)


@dataclass
class HangWatch:
    """Which children are alive but hung: no heartbeat (services/heartbeats.py) for `after` seconds while the
    database has answered this watch for as long (a database outage silences every process: that is not a hang),
    and started more than `after` ago. `smartcourse run` kills them so that they are restarted (explore40 F11: a
    stopped or deadlocked worker held every admission until someone killed it; `/health` said `stale`)."""

    after: float = 180.0
    clock: Callable[[], float] = time.monotonic
    _db_up_since: float | None = None

    def hung(
        self, children: Children, names: Collection[str], silence_by_pid: Mapping[int, float] | None
    ) -> list[tuple[str, float]]:
        """(name, seconds silent) of each hung child among `names` (those that beat); `silence_by_pid` None: the
        database did not answer."""
        now = self.clock()
        if silence_by_pid is None:
            self._db_up_since = None
            return []
        if self._db_up_since is None:
            self._db_up_since = now
        if self.after <= 0 or now - self._db_up_since < self.after:
            return []
        found = []
        for name, proc in children.procs.items():
            if name not in names or proc.poll() is not None or now - children.started_at.get(name, now) < self.after:
                continue
            silent = silence_by_pid.get(proc.pid, now - children.started_at[name])  # never beat: since its start
            if silent >= self.after:
                found.append((name, silent))
        return found
