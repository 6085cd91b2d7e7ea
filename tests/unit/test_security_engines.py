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
