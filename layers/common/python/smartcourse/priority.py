"""The request path first: background processes lower their CPU priority (issue #7, launch day).

Two knobs, because of autogroup scheduling (Linux `CONFIG_SCHED_AUTOGROUP`, on in most distributions): the kernel
first shares the CPU fairly between *sessions*, and a nice value only ranks processes inside their session. A process
started in a session of its own (`setsid`, as supervisors, the bench and the embedded engines start them) competes
with the API as a whole group whatever its nice value: measured on 2 cores, the worker at nice 10 or 19 still took
0.6 cores while the API got 0.4. So a process that leads its own session also lowers its group's weight
(`/proc/<pid>/autogroup`); one that shares the API's session (under `smartcourse run`) only its own nice value, which
is what ranks it there.
"""

from __future__ import annotations

import os
from pathlib import Path

from smartcourse.config import get_settings


def background_nice() -> int:
    """SMARTCOURSE_BACKGROUND_NICE (10; 0 leaves the priority alone)."""
    return get_settings().background_nice


def lower_priority_of(pid: int, step: int) -> None:
    """Raise `pid`'s nice value by `step` (at most 19), and its autogroup's if it leads its own session."""
    if step <= 0:
        return
    try:
        os.setpriority(os.PRIO_PROCESS, pid, min(19, os.getpriority(os.PRIO_PROCESS, pid) + step))
    except OSError:  # not permitted here: run as it is
        pass
    autogroup = Path(f"/proc/{pid}/autogroup")
    try:
        if os.getsid(pid) == pid and autogroup.exists():
            autogroup.write_text(str(min(19, step)))
    except OSError:
        pass


def lower_background_priority() -> int:
    """A background process (worker, relay, consumers, Celery) yields the CPU to the API's requests: a launch-day
    burst is admitted at the API's speed and queued durably, and the workflows drain with the CPU the requests leave
    (on hosts of their own it changes nothing). Returns the nice value now in force."""
    lower_priority_of(os.getpid(), background_nice())
    return os.nice(0)
