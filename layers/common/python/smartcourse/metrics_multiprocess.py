"""Choose prometheus_client's multiprocess mode for a process whose children count (Celery prefork, API workers).

prometheus_client reads PROMETHEUS_MULTIPROC_DIR once, when it is first imported: this module imports only the
standard library, so an entry point can call `use_multiprocess_dir` before anything imports prometheus_client.
Importing it inside a `celery ... worker` command does that by itself (see `smartcourse.tasks`).
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"


def use_multiprocess_dir(kind: str) -> Path:
    """Point PROMETHEUS_MULTIPROC_DIR at a fresh directory for this process and its children (unless set).

    Fresh, because counters of an earlier run left in the directory would be added to this run's. A directory
    the caller set is used as given (empty it before the process starts). Must run before prometheus_client is
    imported; the children inherit the variable and write their values there.
    """
    given = os.environ.get(ENV)
    if given:
        Path(given).mkdir(parents=True, exist_ok=True)
        return Path(given)
    path = Path(tempfile.mkdtemp(prefix=f"smartcourse-{kind}-metrics-"))
    os.environ[ENV] = str(path)
    owner = os.getpid()

    def _remove() -> None:
        if os.getpid() == owner:  # forked children inherit atexit handlers: only the creator cleans up
            shutil.rmtree(path, ignore_errors=True)

    atexit.register(_remove)
    return path


def is_celery_worker_command(argv: list[str]) -> bool:
    """`celery ... worker ...` (or `python -m celery ... worker`): the prefork parent serving its children's figures."""
    if not argv:
        return False
    program = Path(argv[0])
    return "celery" in (program.name, program.parent.name) and "worker" in argv[1:]


if is_celery_worker_command(sys.argv) and "prometheus_client" not in sys.modules:
    use_multiprocess_dir("celery")
