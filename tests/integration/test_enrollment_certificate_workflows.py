"""EnrollmentWorkflow and CertificateWorkflow with their activities mocked under their real names (temporalio
samples style): the suite's real Temporal dev server, a task queue of its own per test, stand-in activities that
record their calls, so the step chain is checked without the services behind it."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.worker import Replayer, Worker

from smartcourse.adapters.temporal import TemporalWorkflowStarter
from smartcourse.domain import workflows as names
from workflows.certificates.workflow import CertificateInput, CertificateWorkflow
from workflows.enrollment.workflow import RETRY, EnrollmentInput, EnrollmentWorkflow


@pytest.fixture(scope="module")
async def temporal(settings: Any) -> Client:
    return await Client.connect(
        settings.temporal_address, namespace=settings.temporal_namespace, data_converter=pydantic_data_converter
    )


def _queue(kind: str) -> str:
    return f"{kind}-unit-{uuid.uuid4().hex[:8]}"


# --- EnrollmentWorkflow ---------------------------------------------------------------------------


class FakeEnrollmentActivities:
    """The enrollment activity under its real name, run as the workflow runs it (a local activity). `status` is
    what its activate step ends with ("active", or "dropped" when the student dropped meanwhile); `failures` is how
    many attempts fail before one works."""

    def __init__(self, status: str = "active", failures: int = 0) -> None:
        self.calls: list[tuple[str, int]] = []  # (enrollment id, attempt)
        self.status, self.failures = status, failures

    def all(self) -> list[Any]:
        @activity.defn(name=names.ENROLLMENT_SET_UP)
        async def set_up(inp: EnrollmentInput) -> dict[str, Any]:
            info = activity.info()
            assert info.is_local  # one workflow task, no activity task: what makes the workflow cheap
            self.calls.append((inp.enrollment_id, info.attempt))
            if info.attempt <= self.failures:
                raise RuntimeError("database unreachable")  # an ordinary error: retried by the policy
            notification = str(uuid.uuid4()) if self.status == "active" else None
            return {"lessons": 3, "analytics_recorded": True, "status": self.status, "notification_id": notification}

        return [set_up]


def _input_before(enrollment_id: str) -> dict[str, Any]:
    """The input of runs started before `one_transaction` (what the dispatcher sent then)."""
    return {"enrollment_id": enrollment_id}


async def _run_enrollment(
    temporal: Client, fakes: Any, workflow: type = EnrollmentWorkflow, *, as_before: bool = False
) -> dict[str, Any]:
    """A run on its own queue; `as_before`: started with the input of runs before `one_transaction`."""
    queue, enrollment_id = _queue("enroll"), str(uuid.uuid4())
    arg = _input_before(enrollment_id) if as_before else names.enrollment_input(enrollment_id)
    async with Worker(temporal, task_queue=queue, workflows=[workflow], activities=fakes.all()):
        # Started as the services start it: by name, with plain data for the input.
        handle = await temporal.start_workflow(
            names.ENROLLMENT, arg, id=f"enroll-unit-{enrollment_id}", task_queue=queue
        )
        result: dict[str, Any] = await handle.result()
    assert result["enrollment_id"] == enrollment_id
    assert {call[0] for call in fakes.calls} == {enrollment_id}
    result["history"] = await handle.fetch_history()
    return result


async def test_enrollment_sets_up_in_one_local_activity_and_reports_every_step(temporal: Client) -> None:
    fakes = FakeEnrollmentActivities()
    result = await _run_enrollment(temporal, fakes)
    assert [attempt for _, attempt in fakes.calls] == [1]
    assert [(s["name"], s["status"]) for s in result["steps"]] == [
        (name, "completed") for name, _ in names.ENROLLMENT_STEPS
    ]
    assert result["steps"][0]["detail"] == {"lessons": 3}
    kinds = [EventType.Name(e.event_type) for e in result["history"].events]
    # One workflow task and one marker for the activity, no activity task (four activities made ~30 events), and
    # no patch: no second marker, no search-attribute upsert (the input says the shape).
    assert kinds.count("EVENT_TYPE_WORKFLOW_TASK_COMPLETED") == 1
    assert not [k for k in kinds if k.startswith("EVENT_TYPE_ACTIVITY_TASK")]
    assert kinds.count("EVENT_TYPE_MARKER_RECORDED") == 1
    assert "EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES" not in kinds
    assert len(kinds) <= 6, kinds


async def test_a_run_started_without_the_shape_in_its_input_asks_the_patch_and_replays(temporal: Client) -> None:
    """Runs started by the code before `one_transaction` (in flight at the upgrade, or queried afterwards): they
    record the patch as they did, and their histories replay on this code."""
    fakes = FakeEnrollmentActivities()
    result = await _run_enrollment(temporal, fakes, as_before=True)
    assert [(s["name"], s["status"]) for s in result["steps"]] == [
        (name, "completed") for name, _ in names.ENROLLMENT_STEPS
    ]
    kinds = [EventType.Name(e.event_type) for e in result["history"].events]
    assert kinds.count("EVENT_TYPE_MARKER_RECORDED") == 2  # the patch's and the local activity's
    replayer = Replayer(workflows=[EnrollmentWorkflow], data_converter=temporal.data_converter)
    assert (await replayer.replay_workflow(result["history"])).replay_failure is None


async def test_a_completed_runs_steps_are_read_without_a_worker(temporal: Client) -> None:
    """GET /enrollments/{id} on a finished enrollment: its steps come from the run's result, so no worker has to
    replay the run to answer (none runs here: a `steps` query would wait for one and time out)."""
    result = await _run_enrollment(temporal, FakeEnrollmentActivities())  # its worker has stopped

    async def connect() -> Client:
        return temporal

    starter = TemporalWorkflowStarter(connect, task_queue="nobody-polls-this")
    workflow_id = f"enroll-unit-{result['enrollment_id']}"
    assert await starter.status(workflow_id) == "completed"
    # The query path would wait for a worker here (and fail after its 5 s RPC timeout).
    steps = await asyncio.wait_for(starter.steps(workflow_id, completed=True), timeout=3)
    assert steps == result["steps"]


async def test_enrollment_dropped_meanwhile_skips_the_welcome(temporal: Client) -> None:
    result = await _run_enrollment(temporal, FakeEnrollmentActivities(status="dropped"))
    assert {s["name"]: s["status"] for s in result["steps"]} == {
        "initialize_progress": "completed",
        "record_analytics": "completed",
        "activate": "completed",
        "welcome_notification": "skipped",
    }


async def test_enrollment_retries_the_set_up_until_it_works(temporal: Client) -> None:
    fakes = FakeEnrollmentActivities(failures=2)  # backoff 1 s, then 2 s
    result = await _run_enrollment(temporal, fakes)
    assert [attempt for _, attempt in fakes.calls] == [1, 2, 3]
    assert all(s["status"] == "completed" and s["error"] is None for s in result["steps"])


# The workflow as it was before the one-transaction set-up (0e938dc), registered under the same name: its
# histories are what runs in flight at the upgrade look like, and the new code must replay and finish them.
@workflow.defn(name=names.ENROLLMENT, sandboxed=False)
class FourActivityEnrollmentWorkflow:
    @workflow.run
    async def run(self, inp: EnrollmentInput) -> dict[str, Any]:
        for activity_name in names.ENROLLMENT_LEGACY_ACTIVITIES:
            result = await workflow.execute_activity(
                activity_name, inp, start_to_close_timeout=timedelta(seconds=15), retry_policy=RETRY
            )
            if activity_name == "enroll.activate" and result == "dropped":
                break
        return {"enrollment_id": inp.enrollment_id, "steps": []}


class FakeLegacyActivities:
    """The four activities of the old chain under their real names; `only` registers just those named."""

    def __init__(self, only: tuple[str, ...] = names.ENROLLMENT_LEGACY_ACTIVITIES) -> None:
        self.calls: list[tuple[str, str]] = []  # (enrollment id, activity)
        self.only = only

    def all(self) -> list[Any]:
        def fake(name: str) -> Any:
            @activity.defn(name=name)
            async def step(inp: EnrollmentInput) -> str:
                self.calls.append((inp.enrollment_id, name))
                return "active"

            return step

        return [fake(name) for name in self.only]


async def test_a_run_started_before_the_one_transaction_set_up_finishes_on_the_new_code(temporal: Client) -> None:
    """An upgrade with runs in flight: the old code ran two of the four activities, the new code replays them
    (the patch is absent from their history, so it takes the four-activity branch) and finishes the other two."""
    queue, enrollment_id = _queue("enroll"), str(uuid.uuid4())
    first_two = FakeLegacyActivities(only=names.ENROLLMENT_LEGACY_ACTIVITIES[:2])
    async with Worker(
        temporal, task_queue=queue, workflows=[FourActivityEnrollmentWorkflow], activities=first_two.all()
    ):
        handle = await temporal.start_workflow(
            names.ENROLLMENT, _input_before(enrollment_id), id=f"enroll-unit-{enrollment_id}", task_queue=queue
        )
        for _ in range(200):  # until the old code has scheduled the third activity
            events = (await handle.fetch_history()).events
            if any(e.activity_task_scheduled_event_attributes.activity_type.name == "enroll.activate" for e in events):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the old workflow never reached activate")
    rest = FakeLegacyActivities()
    async with Worker(temporal, task_queue=queue, workflows=[EnrollmentWorkflow], activities=rest.all()):
        result = await handle.result()
    assert [name for _, name in first_two.calls] == list(names.ENROLLMENT_LEGACY_ACTIVITIES[:2])
    assert [name for _, name in rest.calls] == list(names.ENROLLMENT_LEGACY_ACTIVITIES[2:])
    assert [(s["name"], s["status"]) for s in result["steps"]] == [
        (name, "completed") for name, _ in names.ENROLLMENT_STEPS
    ]


async def test_old_histories_replay_on_the_new_code(temporal: Client) -> None:
    old = await _run_enrollment(
        temporal, FakeLegacyActivities(), workflow=FourActivityEnrollmentWorkflow, as_before=True
    )
    assert [EventType.Name(e.event_type) for e in old["history"].events].count(
        "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"
    ) == 4
    replayer = Replayer(workflows=[EnrollmentWorkflow], data_converter=temporal.data_converter)
    assert (await replayer.replay_workflow(old["history"])).replay_failure is None  # raises on a mismatch


# --- CertificateWorkflow --------------------------------------------------------------------------


class FakeCertificateActivities:
    """The three certificate activities under their real names; `refuse_issue` makes issue fail as the real one
    does on a domain error (non-retryable)."""

    def __init__(self, refuse_issue: bool = False) -> None:
        self.calls: list[tuple[str, str]] = []
        self.refuse_issue = refuse_issue
        self.certificate_id = str(uuid.uuid4())

    def all(self) -> list[Any]:
        @activity.defn(name="certificate.issue")
        async def issue(enrollment_id: str) -> str:
            self.calls.append(("issue", enrollment_id))
            if self.refuse_issue:
                raise ApplicationError("the enrollment is not completed", type="not_completed", non_retryable=True)
            return self.certificate_id

        @activity.defn(name="certificate.render_pdf")
        async def render_pdf(certificate_id: str) -> str:
            self.calls.append(("render_pdf", certificate_id))
            return f"certificates/{certificate_id}.pdf"

        @activity.defn(name="certificate.notify")
        async def notify(certificate_id: str) -> str:
            self.calls.append(("notify", certificate_id))
            return str(uuid.uuid4())

        return [issue, render_pdf, notify]


async def _start_certificate(temporal: Client, queue: str, enrollment_id: str) -> Any:
    return await temporal.start_workflow(
        names.CERTIFICATE,
        names.certificate_input(enrollment_id),
        id=f"certificate-unit-{enrollment_id}",
        task_queue=queue,
    )


async def test_certificate_issues_renders_and_notifies_the_same_certificate(temporal: Client) -> None:
    fakes, queue, enrollment_id = FakeCertificateActivities(), _queue("certificate"), str(uuid.uuid4())
    async with Worker(temporal, task_queue=queue, workflows=[CertificateWorkflow], activities=fakes.all()):
        result = await (await _start_certificate(temporal, queue, enrollment_id)).result()
    cid = fakes.certificate_id
    assert fakes.calls == [("issue", enrollment_id), ("render_pdf", cid), ("notify", cid)]
    assert result["certificate_id"] == cid
    assert [(s["name"], s["status"]) for s in result["steps"]] == [(n, "completed") for n in names.CERTIFICATE_STEPS]


async def test_certificate_refused_by_issue_fails_without_rendering(temporal: Client) -> None:
    fakes, queue, enrollment_id = FakeCertificateActivities(refuse_issue=True), _queue("certificate"), str(uuid.uuid4())
    async with Worker(temporal, task_queue=queue, workflows=[CertificateWorkflow], activities=fakes.all()):
        handle = await _start_certificate(temporal, queue, enrollment_id)
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        steps = await handle.query("steps")
    assert fakes.calls == [("issue", enrollment_id)]  # not retried: a domain refusal will not change
    activity_error = failure.value.cause
    assert activity_error is not None and "not completed" in str(activity_error.__cause__)
    assert [s["status"] for s in steps] == ["running", "pending", "pending"]


def test_the_fakes_cover_every_activity_the_workflows_call() -> None:
    registered = {
        a.__temporal_activity_definition.name  # type: ignore[attr-defined]
        for a in [*FakeEnrollmentActivities().all(), *FakeLegacyActivities().all(), *FakeCertificateActivities().all()]
    }
    assert registered == {activity_name for _, activity_name in names.ENROLLMENT_STEPS} | set(
        names.ENROLLMENT_LEGACY_ACTIVITIES
    ) | {f"certificate.{n}" for n in names.CERTIFICATE_STEPS}
    assert CertificateInput.__dataclass_fields__.keys() == names.certificate_input("x").keys()
