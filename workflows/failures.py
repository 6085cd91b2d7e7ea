"""A worker interceptor that records activity failures of every workflow on its `workflow_runs` row.

Workflows stay as they are: this hook sees each activity attempt from outside. A failed attempt makes the run
`retrying` (or `failed` when Temporal will not try again: a non-retryable error, or the last allowed attempt),
with the step, the error and the trace id; a success after a failure, or the workflow's last step, settles it.
Recording never fails the activity: a database hiccup here is logged and the activity's own outcome stands. A
failure that could not be written (the database away: often the very outage that failed the activity) is kept in
the process and written, in order, before the next record once the database answers (explore38 F7: an outage's 192
failed set-ups left no trace in `/ops/workflows`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from smartcourse.domain import workflows as names
from smartcourse.services import operations

log = logging.getLogger(__name__)

#: The activity that ends each workflow whose runs the API does not record itself.
LAST_STEPS = {names.ENROLLMENT_STEPS[-1][1], f"certificate.{names.CERTIFICATE_STEPS[-1]}"}
#: Last steps settled even on a first attempt: an earlier step of their run may have failed. (EnrollmentWorkflow
#: is one activity: a failure of it shows as a later attempt, so its successes cost no write on the happy path.)
SETTLE_ALWAYS = {f"certificate.{names.CERTIFICATE_STEPS[-1]}"}


def gives_up(exc: BaseException, info: activity.Info) -> bool:
    """True if Temporal will not retry this attempt (so the run has failed at this step)."""
    if isinstance(exc, ApplicationError) and exc.non_retryable:
        return True
    policy = info.retry_policy
    if policy is None:
        return False
    if type(exc).__name__ in (policy.non_retryable_error_types or ()):
        return True
    if isinstance(exc, ApplicationError) and exc.type in (policy.non_retryable_error_types or ()):
        return True
    return bool(policy.maximum_attempts) and info.attempt >= policy.maximum_attempts


#: Steps whose name (as `GET /workflows/{id}` lists it) is not their activity's suffix.
_STEP_OF_ACTIVITY = {"publish.mark_published": "go_live"}


def step_name(activity_type: str) -> str:
    """`publish.embed` → `embed`; the enrollment steps are named after their activity's suffix too; the publish's
    `publish.mark_published` is its `go_live` step."""
    return _STEP_OF_ACTIVITY.get(activity_type, activity_type.split(".", 1)[-1])


#: The most unwritten failures a worker keeps (the oldest go first beyond it, counted in `Unrecorded.dropped`).
UNRECORDED_MAX = 10_000


class Unrecorded:
    """Failures whose record could not be written, oldest first, written by `flush` once the database answers."""

    def __init__(self, maxlen: int = UNRECORDED_MAX) -> None:
        self._items: deque[dict[str, Any]] = deque(maxlen=maxlen)
        self._locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}  # a lock is bound to its loop
        self.dropped = 0
        self._waited = 0  # how many of the oldest kept records failed a write (the others are written at once)

    def __len__(self) -> int:
        return len(self._items)

    def add(self, record: dict[str, Any]) -> None:
        if len(self._items) == self._items.maxlen:
            self.dropped += 1
            self._waited = max(0, self._waited - 1)
        self._items.append(record)

    async def flush(self, write: Callable[..., Awaitable[None]], sessionmaker: Any) -> bool:
        """Write what is kept, in order (one writer at a time); False, keeping the rest, at the first that fails.
        Never raises."""
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            self._locks = {loop: (lock := asyncio.Lock())}  # the process's loop; one of a test before it is gone
        async with lock:
            late = 0
            while self._items:
                try:
                    await write(sessionmaker, **self._items[0])
                except Exception:
                    self._waited = len(self._items)
                    return False
                self._items.popleft()
                if self._waited:
                    self._waited -= 1
                    late += 1
            # Only those that waited: a failure written at once is not news (explore40 F7: this line came with every
            # failed step, the database up, and sent on-call looking for an outage).
            if late:
                log.warning("recorded %d workflow failure(s) kept while the database was away", late)
            return True


UNRECORDED = Unrecorded()


def timed_out() -> TimeoutError | None:
    """The attempt was cancelled because Temporal timed it out (its heartbeat or start-to-close timeout: a blocked
    worker, a hung dependency), as a failure to record; None for any other cancellation (the workflow's, a shutdown).
    explore55 F2: such attempts were retried with nothing in `/ops/workflows` (`failures: 0`), the trace or an alert."""
    try:
        details = activity.cancellation_details()
    except RuntimeError:  # not in an activity
        return None
    if details is None or not details.timed_out:
        return None
    return TimeoutError("the attempt timed out (no heartbeat or no result in time: a blocked worker or a hung call)")


class _Inbound(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, sessionmaker: Any) -> None:
        super().__init__(next)
        self._sessionmaker = sessionmaker

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        try:
            result = await self.next.execute_activity(input)
        except BaseException as exc:
            if isinstance(exc, Exception):
                await self._failed(exc)
            elif isinstance(exc, asyncio.CancelledError) and (timeout := timed_out()) is not None:
                await asyncio.shield(self._failed(timeout))
            raise
        info = activity.info()
        last = info.activity_type in LAST_STEPS
        if len(UNRECORDED):  # before this run's progress: its failure, kept, is then settled by it
            await UNRECORDED.flush(operations.record_workflow_failure, self._sessionmaker)
        if info.attempt > 1 or info.activity_type in SETTLE_ALWAYS:
            try:
                await operations.record_workflow_progress(
                    self._sessionmaker, workflow_id=info.workflow_id or "", last_step=last
                )
            except Exception:
                log.warning("could not record the progress of %s", info.workflow_id, exc_info=True)
        return result

    async def _failed(self, exc: Exception) -> None:
        info = activity.info()
        message = str(getattr(exc, "message", None) or exc) or type(exc).__name__
        record = {
            "workflow_id": info.workflow_id or "",
            "workflow_type": info.workflow_type or "",
            "step": step_name(info.activity_type),
            "error": f"{type(exc).__name__}: {message}",
            "final": gives_up(exc, info),
            "trace_id": operations.current_trace_id(),
        }
        UNRECORDED.add(record)  # written now with those kept before it, or kept for the next try
        if not await UNRECORDED.flush(operations.record_workflow_failure, self._sessionmaker):
            log.warning(
                "could not record the failure of %s (kept with %d more, written once the database answers)",
                info.workflow_id,
                len(UNRECORDED) - 1,
            )


class FailureRecorder(Interceptor):
    """`Worker(..., interceptors=[..., FailureRecorder(container.sessionmaker)])`: innermost, so a tracing
    interceptor before it has opened the activity's span and the recorded trace id is the workflow's."""

    def __init__(self, sessionmaker: Any) -> None:
        self._sessionmaker = sessionmaker

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Inbound(next, self._sessionmaker)
