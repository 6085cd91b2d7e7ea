"""A worker interceptor counting workflow runs and activity attempts (smartcourse.metrics) by type and outcome.

Workflow code runs in Temporal's sandbox and is replayed: the finished run is reported through an extern
function (called outside the sandbox) and only when the worker is not replaying history, so a run is counted
once, by the worker that saw it finish. A workflow task failing on a bug is retried by Temporal, not a finished
run: it is not counted (the activity attempts and the workflow_runs table show it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import temporalio.activity
import temporalio.exceptions
import temporalio.workflow
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    ExecuteWorkflowInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from smartcourse import metrics
from workflows.failures import timed_out

_EXTERN = "__smartcourse_workflow_finished"


def record_workflow(workflow_type: str, outcome: str, seconds: float) -> None:
    """Outside the sandbox: count one finished workflow run."""
    metrics.WORKFLOW_RUNS.labels(workflow_type, outcome).inc()
    metrics.WORKFLOW_DURATION.labels(workflow_type, outcome).observe(max(0.0, seconds))


def _outcome(exc: BaseException) -> str | None:
    """The run's outcome for an exception leaving the workflow; None when Temporal will retry the task instead."""
    if isinstance(exc, temporalio.workflow.ContinueAsNewError):
        return "continued"
    if isinstance(exc, asyncio.CancelledError | temporalio.exceptions.CancelledError):
        return "cancelled"
    if isinstance(exc, temporalio.exceptions.FailureError):
        return "failed"
    return None


class _WorkflowMetrics(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        outcome: str | None = "completed"
        try:
            return await super().execute_workflow(input)
        except BaseException as exc:
            outcome = _outcome(exc)
            raise
        finally:
            if outcome is not None and not temporalio.workflow.unsafe.is_replaying():
                info = temporalio.workflow.info()
                seconds = (temporalio.workflow.now() - info.workflow_start_time).total_seconds()
                finished: Callable[[str, str, float], None] = temporalio.workflow.extern_functions()[_EXTERN]
                finished(info.workflow_type, outcome, seconds)


class _ActivityMetrics(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        name = temporalio.activity.info().activity_type
        started = time.perf_counter()
        outcome = "failed"
        try:
            result = await super().execute_activity(input)
            outcome = "completed"
            return result
        except (asyncio.CancelledError, temporalio.exceptions.CancelledError):
            # An attempt Temporal timed out (no heartbeat or result in time) is a failure of its own kind, in the
            # failing-activities alert: as `cancelled` it was in none (explore55 F2).
            outcome = "timed_out" if timed_out() is not None else "cancelled"
            raise
        finally:
            metrics.ACTIVITY_RUNS.labels(name, outcome).inc()
            metrics.ACTIVITY_DURATION.labels(name).observe(time.perf_counter() - started)


class MetricsInterceptor(Interceptor):
    """Pass to the Worker's `interceptors`: workflow runs and activity attempts, by type and outcome. Each workflow's
    `failed` series is there at 0 from the worker's start, so that its first failure raises the alert."""

    def __init__(self) -> None:
        from smartcourse.domain import workflows as names

        metrics.at_zero(
            metrics.WORKFLOW_RUNS, *((w, "failed") for w in (names.PUBLISHING, names.ENROLLMENT, names.CERTIFICATE))
        )

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityMetrics(next)

    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
        input.unsafe_extern_functions[_EXTERN] = record_workflow
        return _WorkflowMetrics
