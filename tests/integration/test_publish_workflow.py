"""CoursePublishingWorkflow with its activities mocked under their real names (temporalio samples style).

The workflow runs on the suite's real Temporal dev server, on a task queue of its own per test; the
activities are stand-ins that record their calls, so each failure path of the step chain is checked alone.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowFailureError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from workflows.publishing.workflow import (
    STEPS,
    CoursePublishingWorkflow,
    GoLiveInput,
    PublishInput,
    RevertInput,
)


class FakeActivities:
    """Every publishing activity under its real name; `fail` names the one that raises."""

    def __init__(self, fail: str | None = None, fail_cleanup: bool = False) -> None:
        self.calls: list[str] = []
        self.fail, self.fail_cleanup = fail, fail_cleanup
        self.reverted: RevertInput | None = None
        self.go_live: GoLiveInput | None = None

    def _step(self, name: str) -> dict[str, Any]:
        self.calls.append(name)
        if name == self.fail:
            raise ApplicationError(f"{name} broke", type="Boom", non_retryable=True)
        return {"did": name}

    def all(self) -> list[Any]:
        def make(name: str) -> Any:
            @activity.defn(name=f"publish.{name}")
            async def step(inp: PublishInput) -> dict[str, Any]:
                return self._step(name)

            return step

        @activity.defn(name="publish.mark_published")
        async def mark_published(inp: GoLiveInput) -> bool:
            self.go_live = inp
            self._step("go_live")
            return True

        @activity.defn(name="publish.cleanup")
        async def cleanup(inp: PublishInput) -> dict[str, Any]:
            self.calls.append("cleanup")
            if self.fail_cleanup:
                raise ApplicationError("cleanup broke", non_retryable=True)
            return {"dropped_versions": []}

        @activity.defn(name="publish.revert")
        async def revert(inp: RevertInput) -> None:
            self.calls.append("revert")
            self.reverted = inp

        names = ("validate", "snapshot", "extract", "chunk", "embed", "index", "verify")
        return [*(make(n) for n in names), mark_published, cleanup, revert]


@pytest.fixture(scope="module")
async def temporal(settings: Any) -> Client:
    return await Client.connect(
        settings.temporal_address, namespace=settings.temporal_namespace, data_converter=pydantic_data_converter
    )


async def _run(temporal: Client, fakes: FakeActivities) -> tuple[Any, str]:
    queue = f"publish-unit-{uuid.uuid4().hex[:8]}"
    inp = PublishInput(course_id=str(uuid.uuid4()), version=1, workflow_id=f"publish-unit-{uuid.uuid4().hex}")
    async with Worker(temporal, task_queue=queue, workflows=[CoursePublishingWorkflow], activities=fakes.all()):
        handle = await temporal.start_workflow(CoursePublishingWorkflow.run, inp, id=inp.workflow_id, task_queue=queue)
        try:
            return await handle.result(), "completed"
        except WorkflowFailureError:
            return await handle.query("steps"), "failed"


async def test_every_step_runs_in_order_and_go_live_gets_the_report(temporal: Client) -> None:
    fakes = FakeActivities()
    result, outcome = await _run(temporal, fakes)
    assert outcome == "completed"
    assert fakes.calls == [s.name for s in STEPS] + ["cleanup"]
    assert [s["status"] for s in result["steps"]] == ["completed"] * (len(STEPS) + 1)
    assert fakes.go_live is not None and set(fakes.go_live.report) == {"extract", "chunk", "embed", "index", "verify"}
    assert result["steps"][2]["detail"] == {"did": "extract"}


@pytest.mark.parametrize("failing", ["validate", "extract", "embed", "index", "verify", "go_live"])
async def test_a_failed_step_is_compensated_and_nothing_after_it_runs(temporal: Client, failing: str) -> None:
    fakes = FakeActivities(fail=failing)
    steps, outcome = await _run(temporal, fakes)
    assert outcome == "failed"
    names = [s.name for s in STEPS]
    assert fakes.calls == [*names[: names.index(failing) + 1], "revert"]
    assert fakes.reverted is not None and fakes.reverted.step == failing and f"{failing} broke" in fakes.reverted.error
    by_name = {s["name"]: s for s in steps}
    assert by_name[failing]["status"] == "failed"
    assert all(by_name[n]["status"] == "skipped" for n in [*names[names.index(failing) + 1 :], "cleanup"])


async def test_a_failed_cleanup_does_not_undo_the_publish(temporal: Client) -> None:
    fakes = FakeActivities(fail_cleanup=True)
    result, outcome = await _run(temporal, fakes)
    assert outcome == "completed" and "revert" not in fakes.calls
    assert result["steps"][-1]["status"] == "failed" and "cleanup broke" in result["steps"][-1]["error"]


async def test_a_cancel_the_running_step_does_not_hear_stops_the_run_before_the_next(temporal: Client) -> None:
    """explore31 F1: the step finishes without hearing the cancel (no heartbeat): the run stops before the next
    step, compensates and ends canceled (it used to run every remaining step)."""
    import asyncio

    from temporalio.client import WorkflowExecutionStatus

    fakes, released, reached = FakeActivities(), asyncio.Event(), asyncio.Event()
    activities = [a for a in fakes.all() if activity._Definition.must_from_callable(a).name != "publish.snapshot"]

    @activity.defn(name="publish.snapshot")
    async def snapshot(inp: PublishInput) -> dict[str, Any]:
        reached.set()
        await released.wait()
        return fakes._step("snapshot")

    queue = f"publish-unit-{uuid.uuid4().hex[:8]}"
    inp = PublishInput(course_id=str(uuid.uuid4()), version=1, workflow_id=f"publish-unit-{uuid.uuid4().hex}")
    async with Worker(
        temporal, task_queue=queue, workflows=[CoursePublishingWorkflow], activities=[*activities, snapshot]
    ):
        handle = await temporal.start_workflow(CoursePublishingWorkflow.run, inp, id=inp.workflow_id, task_queue=queue)
        await asyncio.wait_for(reached.wait(), 30)
        await handle.cancel()
        await asyncio.sleep(1)  # delivered while the step still works
        released.set()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
        steps = {s["name"]: s for s in await handle.query("steps")}
    assert fakes.calls == ["validate", "snapshot", "revert"]
    assert fakes.reverted is not None and (fakes.reverted.step, fakes.reverted.error) == ("extract", "canceled")
    assert steps["snapshot"]["status"] == "completed" and steps["extract"]["error"] == "canceled"
    assert steps["embed"]["status"] == steps["go_live"]["status"] == "skipped"
