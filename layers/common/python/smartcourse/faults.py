"""Test-only fault injection: a named hold point that waits while `$SMARTCOURSE_TEST_HOLD_DIR/<name>.hold` exists.

Honoured only with SMARTCOURSE_ENV=test, so production code paths are unchanged. A test creates the hold file,
waits for `<name>.reached`, kills the process mid-step, removes the hold and starts a fresh process.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

HOLD_DIR_ENV = "SMARTCOURSE_TEST_HOLD_DIR"


def _hold_dir() -> Path | None:
    directory = os.environ.get(HOLD_DIR_ENV)
    if not directory or os.environ.get("SMARTCOURSE_ENV") != "test":
        return None
    return Path(directory)


async def hold_point(name: str, *, poll: float = 0.1, limit: float = 120.0) -> None:
    directory = _hold_dir()
    if directory is None:
        return
    marker = directory / f"{name}.hold"
    if not marker.exists():
        return
    (directory / f"{name}.reached").touch()
    # At most `limit` seconds: a forgotten marker must not wedge a worker.
    for _ in range(int(limit / poll)):
        if not marker.exists():
            return
        await asyncio.sleep(poll)


class InjectedFault(RuntimeError):
    """A failure a test asked for (the publishing workflow does not retry it)."""


class TransientFault(RuntimeError):
    """A failure a test asked for once (retried as any error is)."""


async def fail_point(name: str, key: str = "") -> None:
    """Raise InjectedFault while `$SMARTCOURSE_TEST_HOLD_DIR/<name>.fail` (or `<name>.<key>.fail`, to fail
    one course only) exists, and TransientFault once for `<name>.<key>.fail-once` (removed as it fails; test mode
    only)."""
    directory = _hold_dir()
    if directory is None:
        return
    if (directory / f"{name}.fail").exists() or (key and (directory / f"{name}.{key}.fail").exists()):
        raise InjectedFault(f"injected failure at {name}")
    if key:
        try:
            (directory / f"{name}.{key}.fail-once").unlink()
        except FileNotFoundError:
            return
        raise TransientFault(f"injected transient failure at {name}")
