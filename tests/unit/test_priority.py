"""Background processes yield the CPU to the API (smartcourse.priority, issue #7)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = "from smartcourse.priority import lower_background_priority as f; print(f())"


def _probe(code: str, env_value: str | None, *, own_session: bool = False) -> str:
    """Run `code` in a child with SMARTCOURSE_BACKGROUND_NICE=`env_value` (unset: None); its last line of output."""
    env = {k: v for k, v in os.environ.items() if k != "SMARTCOURSE_BACKGROUND_NICE"}
    if env_value is not None:
        env["SMARTCOURSE_BACKGROUND_NICE"] = env_value
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        start_new_session=own_session,
    )
    return out.stdout.strip().splitlines()[-1]


def _nice_after(env_value: str | None) -> int:
    return int(_probe(PROBE, env_value))


def test_a_background_process_lowers_its_priority_by_the_setting() -> None:
    start = os.nice(0)  # the child starts where this process is
    assert _nice_after(None) == min(19, start + 10)  # the default
    assert _nice_after("3") == min(19, start + 3)
    assert _nice_after("0") == start  # left alone


AUTOGROUP_PROBE = (
    "import os; from pathlib import Path; from smartcourse.priority import lower_background_priority as f; f(); "
    "print(Path('/proc/self/autogroup').read_text().split()[-1])"
)


@pytest.mark.skipif(not Path("/proc/self/autogroup").exists(), reason="no autogroup scheduling here")
def test_a_session_leader_also_lowers_its_autogroup() -> None:
    """Started in a session of its own (as supervisors and the bench start it), the process is ranked against the API
    by its autogroup's nice value, not its own: that one goes up too."""
    assert _probe(AUTOGROUP_PROBE, "7", own_session=True) == "7"
