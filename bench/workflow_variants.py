"""Earlier shapes of EnrollmentWorkflow, for bench/workflow_cost.py to measure beside the current one.

Each is registered under a name of its own and calls the product's activities (workflows/enrollment/activities.py):
the four one-transaction-each activities that runs started before the one-transaction set-up still use, or the
set-up. This module imports as little as workflows/enrollment/workflow.py did, so the sandboxed variants pay
the same per-run sandbox cost the product's workflow paid.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow

from smartcourse.domain import workflows as names
from workflows.enrollment.workflow import RETRY, SET_UP_TIMEOUT, EnrollmentInput
from workflows.steps import Steps

STEP_NAMES = [name for name, _ in names.ENROLLMENT_STEPS]
TIMEOUT = timedelta(seconds=15)


@workflow.defn(name="BenchEnrollmentFourActivities")
class FourActivities:
    """The workflow as of 0e938dc: four activities, one transaction each, in the sandbox."""

    def __init__(self) -> None:
        self._steps = Steps(STEP_NAMES)

    @workflow.query(name="steps")
    def steps(self) -> list[dict[str, Any]]:
        return self._steps.items

    @workflow.run
    async def run(self, inp: EnrollmentInput) -> dict[str, Any]:
        for index, activity in enumerate(names.ENROLLMENT_LEGACY_ACTIVITIES):
            self._steps.running(index)
            result = await workflow.execute_activity(activity, inp, start_to_close_timeout=TIMEOUT, retry_policy=RETRY)
            self._steps.completed(index)
            if activity == "enroll.activate" and result == "dropped":
                self._steps.skip_after(index)
                break
        return {"enrollment_id": inp.enrollment_id, "steps": self._steps.items}


@workflow.defn(name="BenchEnrollmentFourLocal")
class FourLocal:
    """The same four activities as local activities (still four transactions), in the sandbox."""

    def __init__(self) -> None:
        self._steps = Steps(STEP_NAMES)

    @workflow.query(name="steps")
    def steps(self) -> list[dict[str, Any]]:
        return self._steps.items

    @workflow.run
    async def run(self, inp: EnrollmentInput) -> dict[str, Any]:
        for index, activity in enumerate(names.ENROLLMENT_LEGACY_ACTIVITIES):
            self._steps.running(index)
            result = await workflow.execute_local_activity(
                activity, inp, start_to_close_timeout=TIMEOUT, retry_policy=RETRY
            )
            self._steps.completed(index)
            if activity == "enroll.activate" and result == "dropped":
                self._steps.skip_after(index)
                break
        return {"enrollment_id": inp.enrollment_id, "steps": self._steps.items}


@workflow.defn(name="BenchEnrollmentOneLocalSandboxed")
class OneLocalSandboxed:
    """The product's one-transaction set-up as one local activity, but in the sandbox (and without the patch)."""

    def __init__(self) -> None:
        self._steps = Steps(STEP_NAMES)

    @workflow.query(name="steps")
    def steps(self) -> list[dict[str, Any]]:
        return self._steps.items

    @workflow.run
    async def run(self, inp: EnrollmentInput) -> dict[str, Any]:
        for index in range(len(STEP_NAMES)):
            self._steps.running(index)
        done = await workflow.execute_local_activity(
            names.ENROLLMENT_SET_UP, inp, start_to_close_timeout=SET_UP_TIMEOUT, retry_policy=RETRY, result_type=dict
        )
        for index in range(3):
            self._steps.completed(index)
        if done["status"] == "dropped":
            self._steps.skip_after(2)
        else:
            self._steps.completed(3)
        return {"enrollment_id": inp.enrollment_id, "steps": self._steps.items}


@workflow.defn(name="BenchEnrollmentOneLocal", sandboxed=False)
class OneLocal(OneLocalSandboxed):
    """As the product's workflow without `workflow.patched` (whose marker also upserts a search attribute)."""

    @workflow.run
    async def run(self, inp: EnrollmentInput) -> dict[str, Any]:
        return await super().run(inp)


@dataclass
class BatchInput:
    enrollment_ids: list[str]


@workflow.defn(name="BenchEnrollmentBatch", sandboxed=False)
class Batch:
    """Not one workflow per enrollment: one per batch of admissions, whose set-ups (the product's, one transaction
    each) run one after another in one local activity. Measured only, to size the alternative in the docs."""

    @workflow.run
    async def run(self, inp: BatchInput) -> int:
        done: int = await workflow.execute_local_activity(
            "bench.set_up_batch", inp, start_to_close_timeout=timedelta(minutes=5), retry_policy=RETRY
        )
        return done
