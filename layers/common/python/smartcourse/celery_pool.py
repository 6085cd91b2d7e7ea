"""Celery's prefork pool with one change: after a broker reconnect it registers again without the pool processes
that have exited and not yet been replaced, instead of stopping the worker.

When a pool process exits (a task terminated on a connection loss, as
`worker_cancel_long_running_tasks_on_connection_loss` asks; an OOM kill, a crash), Celery's
`AsynPool._event_process_exit` stops watching it (`_untrack_child_process` leaves its `_sentinel_poll` None) and the
pool's upkeep replaces it soon after. A broker reconnect in between registers the pool with the event loop again:
`_track_child_process` hands that None to kombu, whose `fileno` raises ValueError since kombu 5.7 (AttributeError
before), which Celery's `iterate_file_descriptors_safely` does not catch: "Unrecoverable error: ValueError('file
descriptor is None')", the worker stopped (seen in CI after a test closed every Redis client; under `smartcourse run`
each such stop counts toward the give-up that stops the whole product). A process already untracked is skipped here:
the upkeep (`maintain_pool`, every 5 s and at each exit) replaces it.
`tasks.celery_config` makes this the worker's pool (`worker_pool`).
"""

from __future__ import annotations

from typing import Any

from celery.concurrency import asynpool, prefork


class AsynPool(asynpool.AsynPool):  # type: ignore[misc]
    def _track_child_process(self, proc: Any, hub: Any) -> None:
        if getattr(proc, "_sentinel_poll", 0) is None:  # untracked when it exited: nothing to watch
            return
        super()._track_child_process(proc, hub)


class TaskPool(prefork.TaskPool):  # type: ignore[misc]
    Pool = AsynPool
