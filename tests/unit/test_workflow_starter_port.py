"""Services start and read workflows through the WorkflowStarter port: tested on a hand-written fake."""

from __future__ import annotations

from typing import Any

from smartcourse.domain import workflows as names
from smartcourse.services import workflows


class FakeStarter:
    """Implements ports.WorkflowStarter in memory, with REJECT_DUPLICATE semantics."""

    def __init__(self) -> None:
        self.runs: dict[str, tuple[str, Any, str]] = {}

    async def start(self, workflow: str, arg: Any, *, workflow_id: str) -> str:
        if workflow_id in self.runs:
            return self.runs[workflow_id][2]
        self.runs[workflow_id] = (workflow, arg, "running")
        return "running"

    async def status(self, workflow_id: str) -> str:
        return self.runs[workflow_id][2] if workflow_id in self.runs else "not_started"

    async def steps(self, workflow_id: str, *, completed: bool = False) -> list[dict[str, Any]]:
        return [{"name": "issue", "status": "completed"}]


class FakeContainer:
    def __init__(self) -> None:
        self.starter = FakeStarter()

    def workflow_starter(self) -> FakeStarter:
        return self.starter


async def test_start_is_by_name_and_rejects_a_duplicate_id() -> None:
    c = FakeContainer()
    assert await workflows.start(c, names.CERTIFICATE, names.certificate_input("e1"), workflow_id="certificate-e1")
    c.starter.runs["certificate-e1"] = (names.CERTIFICATE, {"enrollment_id": "e1"}, "completed")
    assert not await workflows.start(c, names.CERTIFICATE, {"enrollment_id": "e1"}, workflow_id="certificate-e1")
    assert c.starter.runs["certificate-e1"][:2] == (names.CERTIFICATE, {"enrollment_id": "e1"})


async def test_describe_an_unknown_workflow_lists_its_steps_pending() -> None:
    status, steps, _ = await workflows.describe(FakeContainer(), "enroll-x", names.CERTIFICATE_STEPS)
    assert status == "not_started" and [s.status for s in steps] == ["pending"] * 3


async def test_describe_within_a_budget_is_a_503_when_the_engine_is_slow() -> None:
    """`GET /workflows/{id}` reads within `DESCRIBE_BUDGET_SECONDS`: a status the engine does not give in time is 503
    `workflow_engine_unavailable`, as an engine that is down (the steps query's own bound: the integration test)."""
    import asyncio

    import pytest

    from smartcourse.errors import Unavailable

    class Slow(FakeStarter):
        async def status(self, workflow_id: str) -> str:
            await asyncio.sleep(5)
            return "running"

    c = FakeContainer()
    c.starter = Slow()
    started = asyncio.get_running_loop().time()
    with pytest.raises(Unavailable) as err:
        await workflows.describe(c, "publish-x", names.CERTIFICATE_STEPS, budget=0.2)
    assert err.value.code == "workflow_engine_unavailable" and asyncio.get_running_loop().time() - started < 1


async def test_start_quietly_swallows_an_engine_failure() -> None:
    class Down(FakeContainer):
        def workflow_starter(self) -> Any:
            raise RuntimeError("temporal down")

    await workflows.start_quietly(Down(), names.ENROLLMENT, {"enrollment_id": "e"}, workflow_id="enroll-e")


def test_workflow_classes_register_the_names_services_use() -> None:
    from workflows.certificates.workflow import CertificateWorkflow
    from workflows.enrollment.workflow import STEPS, EnrollmentWorkflow

    assert EnrollmentWorkflow.__temporal_workflow_definition.name == names.ENROLLMENT  # type: ignore[attr-defined]
    assert CertificateWorkflow.__temporal_workflow_definition.name == names.CERTIFICATE  # type: ignore[attr-defined]
    assert STEPS == names.ENROLLMENT_STEPS


async def test_the_engine_failing_a_start_is_unavailable_not_an_rpc_error() -> None:
    """explore18 F3: Temporal gone after the client connected raised `RPCError` from `start_workflow`, which no caller
    handles: a publish answered 500 and left its course in `publishing`. (The client is a stand-in for temporalio's:
    stopping the suite's Temporal to get the real error would stop every other test's.)"""
    import pytest
    from temporalio.service import RPCError, RPCStatusCode

    from smartcourse.adapters.temporal import TemporalWorkflowStarter
    from smartcourse.errors import Unavailable

    class GoneClient:
        async def start_workflow(self, *args: Any, **kwargs: Any) -> None:
            assert kwargs["rpc_timeout"].total_seconds() <= 5  # a start waits no longer than a describe
            raise RPCError("tcp connect error", RPCStatusCode.UNAVAILABLE, b"")

    async def connect() -> Any:
        return GoneClient()

    starter = TemporalWorkflowStarter(connect, task_queue="q")
    with pytest.raises(Unavailable) as raised:
        await starter.start("X", {}, workflow_id="publish-c-v1")
    assert raised.value.code == "workflow_engine_unavailable" and "publish-c-v1" in str(raised.value)


async def test_a_read_waits_on_a_silent_engine_no_longer_than_its_budget() -> None:
    """explore18 F10: GET /enrollments/{id} took ~10 s while Temporal was down (a status, then steps, 5 s each)."""
    import asyncio
    import time

    class Silent(FakeStarter):
        async def status(self, workflow_id: str) -> str:
            await asyncio.sleep(30)
            return "running"

    c = FakeContainer()
    c.starter = Silent()
    started = time.monotonic()
    status, steps, _ = await workflows.describe_or_unavailable(c, "enroll-e1", ("activate",), budget=0.2)
    assert (status, steps) == ("unavailable", []) and time.monotonic() - started < 2


async def test_a_read_whose_steps_no_worker_answers_keeps_the_engines_status() -> None:
    """explore40 F6 residue: with the engine up and no worker polling, GET /enrollments/{id} waited its whole budget
    on the steps query and then said `unavailable`, the status the engine had answered lost with the steps."""
    import asyncio
    import time

    class NoWorker(FakeStarter):
        async def status(self, workflow_id: str) -> str:
            return "running"

        async def steps(self, workflow_id: str, *, completed: bool = False) -> list[dict[str, Any]]:
            await asyncio.sleep(30)  # a query waits for a worker to take it
            return []

    c = FakeContainer()
    c.starter = NoWorker()
    started = time.monotonic()
    described = await workflows.describe_or_unavailable(c, "enroll-e1", ("activate",), budget=0.2)
    assert described == ("running", [], workflows.STEPS_UNAVAILABLE) and time.monotonic() - started < 2


async def test_each_engine_call_is_bounded_in_all_not_per_attempt(monkeypatch: Any) -> None:
    """explore21 F5: with Temporal's port refusing, the client retried inside one call: a publish's 503 took ~10 s
    although each attempt had a 5 s `rpc_timeout`, and a second click (a describe, then the start) ~15 s. Each call
    (connect included) now has RPC_TIMEOUT in all."""
    import asyncio
    import time
    from datetime import timedelta

    import pytest

    from smartcourse.adapters import temporal
    from smartcourse.errors import Unavailable

    monkeypatch.setattr(temporal, "RPC_TIMEOUT", timedelta(seconds=0.3))

    class Retrying:  # what temporalio's client does while the port refuses: tries again, inside the call
        async def start_workflow(self, *args: Any, **kwargs: Any) -> None:
            await asyncio.sleep(30)

        def get_workflow_handle(self, workflow_id: str) -> Any:
            return self

        async def describe(self, **kwargs: Any) -> None:
            await asyncio.sleep(30)

        async def query(self, *args: Any, **kwargs: Any) -> None:
            await asyncio.sleep(30)

    async def connect() -> Any:
        return Retrying()

    async def slow_connect() -> Any:
        await asyncio.sleep(30)
        return Retrying()

    for make in (connect, slow_connect):
        starter = temporal.TemporalWorkflowStarter(make, task_queue="q")
        for call in ("start", "status", "steps"):
            started = time.monotonic()
            with pytest.raises(Unavailable) as raised:
                if call == "start":
                    await starter.start("X", {}, workflow_id="publish-c-v1")
                elif call == "status":
                    await starter.status("publish-c-v1")
                else:
                    await starter.steps("publish-c-v1")
            assert raised.value.code == "workflow_engine_unavailable", raised.value
            assert time.monotonic() - started < 2
