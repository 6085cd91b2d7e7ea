"""CoursePublishingWorkflow: validate → snapshot → extract → chunk → embed → index → verify → go live → clean up.

Each step is an idempotent activity; long ones heartbeat their progress. On failure the compensation
(`publish.revert`) deletes what this version built, keeps the previous version live (or the draft), records
the reason and tells the instructor. Canceled (`POST /courses/{id}/publish/cancel`, which returns the course and
records the cancel first), the running step is stopped (the long ones hear it at their next heartbeat), the same
compensation drops what the version built without reporting a failure, and the run ends `canceled`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception
from temporalio.workflow import ActivityCancellationType

from workflows.steps import Steps


@dataclass(frozen=True)
class StepSpec:
    name: str
    activity: str
    timeout: timedelta
    heartbeat: timedelta | None = None


STEPS: tuple[StepSpec, ...] = (
    StepSpec("validate", "publish.validate", timedelta(minutes=1)),
    StepSpec("snapshot", "publish.snapshot", timedelta(minutes=2)),
    # Long steps heartbeat: a worker killed mid-step is noticed after the input's `heartbeat_seconds` (20 s by
    # default; the spec's value is the default for inputs from before the knob) and the step retried elsewhere.
    StepSpec("extract", "publish.extract", timedelta(minutes=15), timedelta(seconds=20)),
    StepSpec("chunk", "publish.chunk", timedelta(minutes=10), timedelta(seconds=20)),
    StepSpec("embed", "publish.embed", timedelta(minutes=60), timedelta(seconds=20)),
    StepSpec("index", "publish.index", timedelta(minutes=20), timedelta(seconds=20)),
    StepSpec("verify", "publish.verify", timedelta(minutes=2)),
    # Content, index pointer, status and the course.published event commit together (outbox).
    StepSpec("go_live", "publish.mark_published", timedelta(minutes=1)),
)
CLEANUP = StepSpec("cleanup", "publish.cleanup", timedelta(minutes=5))

RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=8,
    non_retryable_error_types=["InjectedFault"],
)


@dataclass
class PublishInput:
    course_id: str
    version: int
    workflow_id: str
    # How long a long step may go without a heartbeat before it is retried on another worker
    # (`PUBLISH_HEARTBEAT_SECONDS`); 0: each step's default.
    heartbeat_seconds: float = 0.0


@dataclass
class GoLiveInput:
    course_id: str
    version: int
    workflow_id: str
    report: dict[str, Any]


@dataclass
class RevertInput:
    course_id: str
    version: int
    workflow_id: str
    step: str = ""
    error: str = ""


def _heartbeat(spec: StepSpec, inp: PublishInput) -> timedelta | None:
    if spec.heartbeat is None or inp.heartbeat_seconds <= 0:
        return spec.heartbeat
    return timedelta(seconds=inp.heartbeat_seconds)


def _root_message(err: BaseException) -> str:
    while isinstance(err, ActivityError) and err.cause is not None:
        err = err.cause
    return str(getattr(err, "message", None) or err)


#: `workflow.patched` id of the cancel checked between steps and on a step's failure (explore31 F1).
CANCEL_BETWEEN_STEPS = "cancel-between-steps"


@workflow.defn(name="CoursePublishingWorkflow")
class CoursePublishingWorkflow:
    def __init__(self) -> None:
        self._steps = Steps([s.name for s in (*STEPS, CLEANUP)])

    @workflow.query(name="steps")
    def steps(self) -> list[dict[str, Any]]:
        return self._steps.items

    def _cancel_heard(self) -> bool:
        """A cancel was requested of this run (runs started before this check, replayed, go on as they did)."""
        return workflow.cancellation_reason() is not None and workflow.patched(CANCEL_BETWEEN_STEPS)

    async def _canceled(self, inp: PublishInput, index: int) -> None:
        """End the run canceled at step `index` (not run, or refused): the same compensation as a cancel a step
        heard, shielded so the run ends only once it is done."""
        step = STEPS[index].name
        self._steps.failed(index, "canceled")
        compensation = workflow.start_activity(
            "publish.revert",
            RevertInput(inp.course_id, inp.version, inp.workflow_id, step, "canceled"),
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=RETRY,
        )
        await asyncio.shield(compensation)
        raise asyncio.CancelledError(f"canceled at {step}")

    @workflow.run
    async def run(self, inp: PublishInput) -> dict[str, Any]:
        report: dict[str, Any] = {}
        for index, spec in enumerate(STEPS):
            if index and self._cancel_heard():
                # The cancel came while the step before ran and it finished without hearing it (a short step, or
                # one between heartbeats): Temporal's wait for the activity's cancel then returns the step's result
                # and the cancel is not raised again, so the run went on through every step (explore31 F1).
                await self._canceled(inp, index)
            self._steps.running(index)
            try:
                arg: Any = inp
                if spec.name == "go_live":
                    arg = GoLiveInput(inp.course_id, inp.version, inp.workflow_id, report)
                result = await workflow.execute_activity(
                    spec.activity,
                    arg,
                    start_to_close_timeout=spec.timeout,
                    heartbeat_timeout=_heartbeat(spec, inp),
                    retry_policy=RETRY,
                    # Canceled, the run waits until the step has stopped (a long step hears it at its next
                    # heartbeat) before its compensation: a step still writing after the version was dropped left
                    # an index table behind (seen under load with the default, TRY_CANCEL).
                    cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                )
            except (ActivityError, asyncio.CancelledError) as exc:
                if is_cancelled_exception(exc):
                    self._steps.failed(index, "canceled")
                    await workflow.execute_activity(
                        "publish.revert",
                        # Not reported as a failure: `record_failure` finds the run canceled by the API's cancel.
                        RevertInput(inp.course_id, inp.version, inp.workflow_id, spec.name, "canceled"),
                        start_to_close_timeout=timedelta(minutes=5),
                        retry_policy=RETRY,
                    )
                    raise
                assert isinstance(exc, ActivityError)
                if self._cancel_heard():
                    # A step refused because of the cancel (the go-live of a course the API took back) ends the
                    # run canceled, not failed.
                    await self._canceled(inp, index)
                error = _root_message(exc)
                self._steps.failed(index, error)
                # Shielded: a cancel arriving meanwhile ends the run only once the compensation is done (unshielded,
                # the run ended at once and a retry the compensation needed never came).
                compensation = workflow.start_activity(
                    "publish.revert",
                    RevertInput(inp.course_id, inp.version, inp.workflow_id, spec.name, error),
                    start_to_close_timeout=timedelta(minutes=5),
                    retry_policy=RETRY,
                )
                try:
                    await asyncio.shield(compensation)
                except asyncio.CancelledError:
                    await compensation
                    raise
                raise ApplicationError(f"publishing failed at {spec.name}: {error}", non_retryable=True) from exc
            detail = result if isinstance(result, dict) else None
            if detail is not None and spec.name in ("extract", "chunk", "embed", "index", "verify"):
                report[spec.name] = detail
            self._steps.completed(index, detail)
        # The new version is live; dropping old ones is housekeeping, and its failure must not undo the publish.
        last = len(STEPS)
        self._steps.running(last)
        try:
            cleaned = await workflow.execute_activity(
                CLEANUP.activity, inp, start_to_close_timeout=CLEANUP.timeout, retry_policy=RETRY
            )
            self._steps.completed(last, cleaned if isinstance(cleaned, dict) else None)
        except ActivityError as exc:
            self._steps.items[last].update(status="failed", error=_root_message(exc))
        return {"course_id": inp.course_id, "version": inp.version, "steps": self._steps.items}
