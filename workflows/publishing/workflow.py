"""CoursePublishingWorkflow: each step an idempotent activity; on failure the course is reverted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.steps import Steps

STEPS: tuple[tuple[str, str], ...] = (
    ("validate", "publish.validate"),
    ("snapshot", "publish.snapshot"),
    # Status change and the course.published event commit together (outbox).
    ("mark_published", "publish.mark_published"),
)

RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=8,
)


@dataclass
class PublishInput:
    course_id: str
    version: int
    workflow_id: str


def _root_message(err: BaseException) -> str:
    while isinstance(err, ActivityError) and err.cause is not None:
        err = err.cause
    return str(getattr(err, "message", None) or err)


@workflow.defn(name="CoursePublishingWorkflow")
class CoursePublishingWorkflow:
    def __init__(self) -> None:
        self._steps = Steps([name for name, _ in STEPS])

    @workflow.query(name="steps")
    def steps(self) -> list[dict[str, Any]]:
        return self._steps.items

    @workflow.run
    async def run(self, inp: PublishInput) -> dict[str, Any]:
        for index, (name, activity) in enumerate(STEPS):
            self._steps.running(index)
            try:
                await workflow.execute_activity(
                    activity,
                    inp,
                    start_to_close_timeout=timedelta(minutes=2),
                    retry_policy=RETRY,
                )
            except ActivityError as exc:
                error = _root_message(exc)
                self._steps.failed(index, error)
                await workflow.execute_activity(
                    "publish.revert", inp, start_to_close_timeout=timedelta(minutes=1), retry_policy=RETRY
                )
                raise ApplicationError(f"publishing failed at {name}: {error}", non_retryable=True) from exc
            self._steps.completed(index)
        return {"course_id": inp.course_id, "version": inp.version, "steps": self._steps.items}
