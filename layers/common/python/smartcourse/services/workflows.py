"""Starting workflows idempotently (deterministic ids), reading their steps, and re-starting any a crash missed."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from smartcourse.errors import Unavailable
from smartcourse.models import Enrollment, utcnow
from smartcourse.schemas import WorkflowStep

log = logging.getLogger(__name__)


async def start(container: Any, run: Any, arg: Any, *, workflow_id: str) -> bool:
    """Start `run(arg)` as `workflow_id` unless that id already ran or runs. True if this call started it."""
    from temporalio.common import WorkflowIDReusePolicy
    from temporalio.exceptions import WorkflowAlreadyStartedError

    client = await container.temporal()
    try:
        await client.start_workflow(
            run,
            arg,
            id=workflow_id,
            task_queue=container.settings.temporal_task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    except WorkflowAlreadyStartedError:
        return False
    return True


async def start_quietly(container: Any, run: Any, arg: Any, *, workflow_id: str) -> None:
    """After-commit fast path: a failure here is repaired by the sweeper, so it must not fail the request."""
    try:
        await start(container, run, arg, workflow_id=workflow_id)
    except Exception:
        log.warning("could not start workflow %s now; the sweeper will", workflow_id, exc_info=True)


RPC_TIMEOUT = timedelta(seconds=5)


async def describe(container: Any, workflow_id: str, step_names: tuple[str, ...]) -> tuple[str, list[WorkflowStep]]:
    """(status, steps) of a workflow; `not_started` with pending steps if Temporal does not know it yet."""
    from temporalio.service import RPCError, RPCStatusCode

    client = await container.temporal()
    handle = client.get_workflow_handle(workflow_id)
    try:
        desc = await handle.describe(rpc_timeout=RPC_TIMEOUT)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return "not_started", [WorkflowStep(name=n, status="pending") for n in step_names]
        raise Unavailable("the workflow engine did not answer", code="workflow_engine_unavailable") from exc
    status = str(desc.status.name).lower() if desc.status else "unknown"
    try:
        raw: list[dict[str, Any]] = await handle.query("steps", rpc_timeout=RPC_TIMEOUT)
        steps = [WorkflowStep.model_validate(s) for s in raw]
    except Exception:  # a busy worker must not fail the read: the status above is still true
        steps = []
    return status, steps


async def describe_or_unavailable(
    container: Any, workflow_id: str, step_names: tuple[str, ...]
) -> tuple[str, list[WorkflowStep]]:
    """As `describe`, but a slow or absent workflow engine yields `unavailable` instead of an error."""
    try:
        return await describe(container, workflow_id, step_names)
    except Unavailable:
        log.warning("workflow engine unavailable while reading %s", workflow_id)
        return "unavailable", []


async def sweep(container: Any, *, older_than: timedelta = timedelta(seconds=30)) -> int:
    """Start the workflows that should be running but may not be (a crash between commit and start)."""
    from smartcourse.domain.enrollment import certificate_workflow_id
    from smartcourse.models import Certificate
    from workflows.certificates.workflow import CertificateInput, CertificateWorkflow
    from workflows.enrollment.workflow import EnrollmentInput, EnrollmentWorkflow

    cutoff = utcnow() - older_than
    started = 0
    async with container.sessionmaker() as session:
        pending = list(
            await session.scalars(
                select(Enrollment).where(Enrollment.status == "pending", Enrollment.updated_at < cutoff).limit(500)
            )
        )
        uncertified = list(
            await session.scalars(
                select(Enrollment)
                .outerjoin(Certificate, Certificate.enrollment_id == Enrollment.id)
                .where(Enrollment.status == "completed", Enrollment.completed_at < cutoff, Certificate.id.is_(None))
                .limit(500)
            )
        )
    for e in pending:
        if e.workflow_id and await start(
            container, EnrollmentWorkflow.run, EnrollmentInput(str(e.id)), workflow_id=e.workflow_id
        ):
            started += 1
    for e in uncertified:
        if await start(
            container, CertificateWorkflow.run, CertificateInput(str(e.id)), workflow_id=certificate_workflow_id(e.id)
        ):
            started += 1
    if started:
        log.info("sweeper started %d workflows", started)
    return started
