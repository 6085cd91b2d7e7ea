"""EnrollmentWorkflow: four idempotent, retried steps; the state lives in PostgreSQL, not in the workflow."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

from smartcourse.domain import workflows as names
from workflows.steps import Steps

STEPS = names.ENROLLMENT_STEPS

# Retried until it works: a transient outage delays an enrollment, it never loses it.
RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_interval=timedelta(minutes=1)
)


@dataclass
class EnrollmentInput:
    enrollment_id: str


@workflow.defn(name=names.ENROLLMENT)
class EnrollmentWorkflow:
    def __init__(self) -> None:
        self._steps = Steps([name for name, _ in STEPS])

    @workflow.query(name="steps")
    def steps(self) -> list[dict[str, Any]]:
        return self._steps.items

    @workflow.run
    async def run(self, inp: EnrollmentInput) -> dict[str, Any]:
        for index, (name, activity) in enumerate(STEPS):
            self._steps.running(index)
            # Short: each step is a few queries, and a dead worker's step is retried only after this.
            result = await workflow.execute_activity(
                activity, inp, start_to_close_timeout=timedelta(seconds=15), retry_policy=RETRY
            )
            self._steps.completed(index)
            if name == "activate" and result == "dropped":
                # Dropped while being set up: nothing more to do for this enrollment.
                self._steps.skip_after(index)
                break
        return {"enrollment_id": inp.enrollment_id, "steps": self._steps.items}
