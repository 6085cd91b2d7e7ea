"""Starting workflows idempotently (deterministic ids), reading their steps, and re-starting any a crash missed."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any, NamedTuple

from sqlalchemy import select

from smartcourse.domain import workflows as names
from smartcourse.domain.enrollment import certificate_workflow_id
from smartcourse.errors import Unavailable
from smartcourse.logging import describe_error
from smartcourse.models import Certificate, Enrollment, utcnow
from smartcourse.ports import WorkflowStarter
from smartcourse.schemas import WorkflowStep
from smartcourse.services import dispatcher, operations

log = logging.getLogger(__name__)


async def start(container: Any, workflow: str, arg: Any, *, workflow_id: str) -> bool:
    """Start workflow type `workflow` with `arg` as `workflow_id` unless that id already ran or runs.
    True if it is running after this call (started now, or still running from before)."""
    status = await container.workflow_starter().start(workflow, arg, workflow_id=workflow_id)
    return bool(status == "running")


async def start_quietly(container: Any, workflow: str, arg: Any, *, workflow_id: str) -> None:
    """After-commit fast path: a failure here is repaired by the sweeper, so it must not fail the request."""
    try:
        await start(container, workflow, arg, workflow_id=workflow_id)
    except Exception:
        log.warning("could not start workflow %s now; the sweeper will", workflow_id, exc_info=True)


#: What a run's `steps_unavailable` says when no worker answered its steps query (explore40 F6: `running`, `steps: []`
#: and nothing more while the worker was down or restarting).
STEPS_UNAVAILABLE = (
    "no worker answered the steps query in time (a worker down, restarting or busy); the status is the engine's"
)


class Described(NamedTuple):
    status: str
    steps: list[WorkflowStep]
    #: Why `steps` is empty though the run has some (None: it is what it says).
    steps_unavailable: str | None = None


async def describe(
    container: Any,
    workflow_id: str,
    step_names: tuple[str, ...],
    *,
    never_runs: str | None = None,
    budget: float | None = None,
) -> Described:
    """(status, steps) of a workflow; `not_started` with pending steps if Temporal does not know it yet, or, when the
    caller knows it never will run (`never_runs`: the status to read instead, e.g. an enrollment dropped before its
    start, a publish whose start failed), that status with skipped steps (explore29 F6, explore30 F7: `not_started`
    read as queued or lost, for good).

    Within `budget` seconds in all when given: an engine that does not answer the status in time is 503
    `workflow_engine_unavailable` (as one that is down), a steps query no worker answers in time leaves the status
    with `steps_unavailable` (a publish's read waited the adapter's 5 s for it: explore40 F6 residue)."""
    if budget is None:
        status = await container.workflow_starter().status(workflow_id)
        return await _with_steps(container, workflow_id, status, step_names, never_runs=never_runs)
    deadline = asyncio.get_running_loop().time() + budget
    try:
        async with asyncio.timeout_at(deadline):
            status = await container.workflow_starter().status(workflow_id)
    except TimeoutError:
        raise Unavailable("the workflow engine did not answer in time", code="workflow_engine_unavailable") from None
    return await _with_steps(container, workflow_id, status, step_names, never_runs=never_runs, deadline=deadline)


async def _with_steps(
    container: Any,
    workflow_id: str,
    status: str,
    step_names: tuple[str, ...],
    *,
    never_runs: str | None,
    deadline: float | None = None,
) -> Described:
    """`status` with the run's steps, asked of a worker until `deadline` (the loop's clock; None: the adapter's own
    bound)."""
    if status == "not_started":
        if never_runs is not None:
            return Described(never_runs, [WorkflowStep(name=n, status="skipped") for n in step_names])
        return Described(status, [WorkflowStep(name=n, status="pending") for n in step_names])
    starter: WorkflowStarter = container.workflow_starter()
    try:
        async with asyncio.timeout_at(deadline):
            raw = await starter.steps(workflow_id, completed=status == "completed")
        return Described(status, [WorkflowStep.model_validate(s) for s in raw])
    except Exception as exc:  # a busy worker must not fail the read: the status above is still true
        # Expected while a worker is busy or away: the cause, not a traceback (explore55 F9).
        log.info("the steps of %s could not be read: %s", workflow_id, describe_error(exc))
        return Described(status, [], STEPS_UNAVAILABLE)


#: The longest a read waits on the workflow engine for a run's status and steps (the read's own data comes first).
DESCRIBE_BUDGET_SECONDS = 3.0


async def describe_or_unavailable(
    container: Any,
    workflow_id: str,
    step_names: tuple[str, ...],
    *,
    never_runs: str | None = None,
    budget: float = DESCRIBE_BUDGET_SECONDS,
) -> Described:
    """As `describe`, but within `budget` seconds in all: a slow or absent workflow engine yields `unavailable`
    instead of an error (a status, then steps, each of up to 5 s, with a connect before them, held every student's
    enrollment page about 10 s while Temporal was down: explore18 F10), and an engine that answered the status while
    no worker answers the steps query yields that status with `steps_unavailable` (explore40 F6: the worker down
    read as `unavailable`, the status lost with the steps)."""
    deadline = asyncio.get_running_loop().time() + budget
    try:
        async with asyncio.timeout_at(deadline):
            status = await container.workflow_starter().status(workflow_id)
    except (Unavailable, TimeoutError):
        log.warning("workflow engine unavailable while reading %s", workflow_id)
        return Described("unavailable", [])
    return await _with_steps(container, workflow_id, status, step_names, never_runs=never_runs, deadline=deadline)


async def sweep(container: Any, *, older_than: timedelta = timedelta(seconds=30)) -> int:
    """Start the workflows that should be running but may not be (a crash between commit and start).
    Returns how many of them are running after the sweep."""
    cutoff = utcnow() - older_than
    # Pending enrollments: within the dispatcher's bound on work in flight (a queued burst is not started at once).
    started = await dispatcher.sweep_pending(container, older_than_s=older_than.total_seconds())
    async with container.sessionmaker() as session:
        uncertified = list(
            await session.scalars(
                select(Enrollment)
                .outerjoin(Certificate, Certificate.enrollment_id == Enrollment.id)
                .where(Enrollment.status == "completed", Enrollment.completed_at < cutoff, Certificate.id.is_(None))
                .limit(500)
            )
        )
    for e in uncertified:
        if await start(
            container, names.CERTIFICATE, names.certificate_input(e.id), workflow_id=certificate_workflow_id(e.id)
        ):
            started += 1
    if started:
        log.info("sweeper: %d workflows running after the sweep", started)
    async with container.sessionmaker() as session, session.begin():
        await operations.settle_finished_enrollment_runs(session)
    return started
