"""EnrollmentWorkflow and CertificateWorkflow with their activities mocked under their real names (temporalio
samples style): the suite's real Temporal dev server, a task queue of its own per test, stand-in activities that
record their calls, so the step chain is checked without the services behind it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowFailureError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from smartcourse.domain import workflows as names
from workflows.certificates.workflow import CertificateInput, CertificateWorkflow
from workflows.enrollment.workflow import EnrollmentInput, EnrollmentWorkflow


@pytest.fixture(scope="module")
async def temporal(settings: Any) -> Client:
    return await Client.connect(
        settings.temporal_address, namespace=settings.temporal_namespace, data_converter=pydantic_data_converter
    )


def _queue(kind: str) -> str:
    return f"{kind}-unit-{uuid.uuid4().hex[:8]}"


# --- EnrollmentWorkflow ---------------------------------------------------------------------------


class FakeEnrollmentActivities:
    """The four enrollment activities under their real names. `activate_result` is what activate answers
    ("active", or "dropped" when the student dropped meanwhile); `flaky` names a step failing `failures` times."""

    def __init__(self, activate_result: str = "active", flaky: str | None = None, failures: int = 0) -> None:
        self.calls: list[tuple[str, str, int]] = []  # (step, enrollment id, attempt)
        self.activate_result, self.flaky, self.failures = activate_result, flaky, failures

    def _step(self, name: str, inp: EnrollmentInput) -> None:
        attempt = activity.info().attempt
        self.calls.append((name, inp.enrollment_id, attempt))
        if name == self.flaky and attempt <= self.failures:
            raise RuntimeError(f"{name}: database unreachable")  # an ordinary error: retried by the policy

    def all(self) -> list[Any]:
        @activity.defn(name="enroll.initialize_progress")
        async def initialize_progress(inp: EnrollmentInput) -> int:
            self._step("initialize_progress", inp)
            return 3

        @activity.defn(name="enroll.record_analytics")
        async def record_analytics(inp: EnrollmentInput) -> bool:
            self._step("record_analytics", inp)
            return True

        @activity.defn(name="enroll.activate")
        async def activate(inp: EnrollmentInput) -> str:
            self._step("activate", inp)
            return self.activate_result

        @activity.defn(name="enroll.welcome_notification")
        async def welcome_notification(inp: EnrollmentInput) -> str | None:
            self._step("welcome_notification", inp)
            return str(uuid.uuid4())

        return [initialize_progress, record_analytics, activate, welcome_notification]


async def _run_enrollment(temporal: Client, fakes: FakeEnrollmentActivities) -> tuple[str, dict[str, Any]]:
    queue, enrollment_id = _queue("enroll"), str(uuid.uuid4())
    async with Worker(temporal, task_queue=queue, workflows=[EnrollmentWorkflow], activities=fakes.all()):
        # Started as the services start it: by name, with plain data for the input.
        result = await temporal.execute_workflow(
            names.ENROLLMENT, names.enrollment_input(enrollment_id), id=f"enroll-unit-{enrollment_id}", task_queue=queue
        )
    assert result["enrollment_id"] == enrollment_id
    assert {eid for _, eid, _ in fakes.calls} == {enrollment_id}
    return enrollment_id, result


async def test_enrollment_runs_every_step_in_order(temporal: Client) -> None:
    fakes = FakeEnrollmentActivities()
    _, result = await _run_enrollment(temporal, fakes)
    assert [(step, attempt) for step, _, attempt in fakes.calls] == [(name, 1) for name, _ in names.ENROLLMENT_STEPS]
    assert [(s["name"], s["status"]) for s in result["steps"]] == [
        (name, "completed") for name, _ in names.ENROLLMENT_STEPS
    ]


async def test_enrollment_dropped_meanwhile_stops_after_activate(temporal: Client) -> None:
    fakes = FakeEnrollmentActivities(activate_result="dropped")
    _, result = await _run_enrollment(temporal, fakes)
    assert [step for step, _, _ in fakes.calls] == ["initialize_progress", "record_analytics", "activate"]
    assert {s["name"]: s["status"] for s in result["steps"]} == {
        "initialize_progress": "completed",
        "record_analytics": "completed",
        "activate": "completed",
        "welcome_notification": "skipped",
    }


async def test_enrollment_retries_a_failing_step_until_it_works(temporal: Client) -> None:
    fakes = FakeEnrollmentActivities(flaky="record_analytics", failures=2)  # backoff 1 s, then 2 s
    _, result = await _run_enrollment(temporal, fakes)
    assert [(step, attempt) for step, _, attempt in fakes.calls] == [
        ("initialize_progress", 1),
        ("record_analytics", 1),
        ("record_analytics", 2),
        ("record_analytics", 3),
        ("activate", 1),
        ("welcome_notification", 1),
    ]
    assert all(s["status"] == "completed" and s["error"] is None for s in result["steps"])


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
        for a in [*FakeEnrollmentActivities().all(), *FakeCertificateActivities().all()]
    }
    assert registered == {activity_name for _, activity_name in names.ENROLLMENT_STEPS} | {
        f"certificate.{n}" for n in names.CERTIFICATE_STEPS
    }
    assert CertificateInput.__dataclass_fields__.keys() == names.certificate_input("x").keys()
