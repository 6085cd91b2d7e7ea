"""EnrollmentWorkflow: one local activity commits the four steps together; the state lives in PostgreSQL.

Why this shape (docs/architecture.md §5, figures in docs/benchmarks.md): the steps are a few statements each, so
Temporal's own bookkeeping dominated their cost. Four activities meant five workflow tasks, four activity tasks
and about 30 history events per enrollment; one local activity means one workflow task and one marker (7 events).
The steps stay visible: the step list shows all four running while their transaction is open, then each one's
outcome. The state lives in PostgreSQL, so the step list is a report, never the source of truth.

The workflow runs outside the sandbox (`sandboxed=False`): it only reads its input, calls one activity and keeps
its step list, with no clock, randomness or I/O of its own, so the sandbox's per-run module isolation bought
nothing here and cost more CPU than the rest of the workflow code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

from smartcourse.domain import workflows as names
from workflows.steps import Steps

STEPS = names.ENROLLMENT_STEPS
SET_UP = names.ENROLLMENT_SET_UP
#: Runs started before this patch replay the four-activity chain (`_legacy_run`); runs started without
#: `EnrollmentInput.one_transaction` after it recorded the patch; runs started with it never ask.
ONE_TRANSACTION = "enrollment-one-transaction"

# Retried until it works: a transient outage delays an enrollment, it never loses it.
RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_interval=timedelta(minutes=1)
)
# A few statements; a hung one (e.g. a lock held elsewhere) is retried after this. A killed worker's local activity
# is re-run by the next worker when the workflow task times out (10 s by default).
SET_UP_TIMEOUT = timedelta(seconds=15)


@dataclass
class EnrollmentInput:
    enrollment_id: str
    #: Set by every start since the one-transaction set-up is the only shape started (`names.enrollment_input`):
    #: the run does not ask `workflow.patched`. False in the input of runs started before: they still ask.
    one_transaction: bool = False


@workflow.defn(name=names.ENROLLMENT, sandboxed=False)
class EnrollmentWorkflow:
    def __init__(self) -> None:
        self._steps = Steps([name for name, _ in STEPS])

    @workflow.query(name="steps")
    def steps(self) -> list[dict[str, Any]]:
        return self._steps.items

    @workflow.run
    async def run(self, inp: EnrollmentInput) -> dict[str, Any]:
        # The input says which shape to take where it can (no marker, no search-attribute upsert: deterministic,
        # since the input is in the history); runs whose input does not say ask the patch, as they always did: the
        # four-activity runs from before it replay their chain, the runs that recorded it replay the one transaction.
        if not inp.one_transaction and not workflow.patched(ONE_TRANSACTION):
            return await self._legacy_run(inp)
        everything = range(len(STEPS))
        for index in everything:  # one transaction: the four are in flight together
            self._steps.running(index)
        done = await workflow.execute_local_activity(
            SET_UP, inp, start_to_close_timeout=SET_UP_TIMEOUT, retry_policy=RETRY, result_type=dict
        )
        self._steps.completed(0, {"lessons": done["lessons"]})
        self._steps.completed(1)
        self._steps.completed(2, {"status": done["status"]})
        if done["status"] == "dropped":
            # Dropped while being set up: nothing more to do for this enrollment.
            self._steps.skip_after(2)
        else:
            self._steps.completed(3)
        return {"enrollment_id": inp.enrollment_id, "steps": self._steps.items}

    async def _legacy_run(self, inp: EnrollmentInput) -> dict[str, Any]:
        """The four-activity chain of runs started before ONE_TRANSACTION (kept so they replay and finish)."""
        for index, activity in enumerate(names.ENROLLMENT_LEGACY_ACTIVITIES):
            self._steps.running(index)
            result = await workflow.execute_activity(
                activity, inp, start_to_close_timeout=timedelta(seconds=15), retry_policy=RETRY
            )
            self._steps.completed(index)
            if activity == "enroll.activate" and result == "dropped":
                self._steps.skip_after(index)
                break
        return {"enrollment_id": inp.enrollment_id, "steps": self._steps.items}
