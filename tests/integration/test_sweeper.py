"""The workflow sweeper (services/workflows.sweep) repairs a crash between a commit and its workflow start.

The states are made the way production makes them: through the API, with the WorkflowStarter port down at the
moment of the start (`start_quietly` swallows it, as after a crash). The sweep runs against a fake of the port,
so it cannot start real workflows for other tests' leftovers; what it recorded is then started for real.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from smartcourse.domain import workflows as names
from smartcourse.domain.enrollment import certificate_workflow_id
from smartcourse.models import Certificate, Enrollment
from smartcourse.services.workflows import sweep
from tests.conftest import Api


class FakeStarter:
    """Implements ports.WorkflowStarter in memory (REJECT_DUPLICATE); `down` makes every start fail."""

    def __init__(self) -> None:
        self.down = False
        self.started: list[tuple[str, Any, str]] = []  # (workflow, arg, workflow_id), only real starts
        self.traces: dict[str, str] = {}  # workflow id -> the trace its start ran in

    async def start(self, workflow: str, arg: Any, *, workflow_id: str) -> str:
        if self.down:
            raise ConnectionError("workflow engine unreachable")
        from opentelemetry import trace

        self.traces[workflow_id] = format(trace.get_current_span().get_span_context().trace_id, "032x")
        if workflow_id not in {wid for _, _, wid in self.started}:
            self.started.append((workflow, arg, workflow_id))
        return "running"

    async def status(self, workflow_id: str) -> str:
        return "running" if workflow_id in {wid for _, _, wid in self.started} else "not_started"

    async def steps(self, workflow_id: str, *, completed: bool = False) -> list[dict[str, Any]]:
        return []


@pytest.fixture
def starters(container: Any) -> Iterator[tuple[Any, FakeStarter]]:
    """(the real WorkflowStarter, a fake); whichever a test installs, the real one is back afterwards."""
    real = container.workflow_starter()
    try:
        yield real, FakeStarter()
    finally:
        container.use_workflow_starter(real)


async def _wait_for(check: Any, what: str, timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


async def _enrollment(container: Any, eid: uuid.UUID) -> Enrollment:
    async with container.sessionmaker() as session:
        row = await session.get(Enrollment, eid)
        assert row is not None
        return row


async def _certificate(container: Any, eid: uuid.UUID) -> Certificate | None:
    async with container.sessionmaker() as session:
        return (await session.scalars(select(Certificate).where(Certificate.enrollment_id == eid))).first()


async def test_sweep_starts_what_a_crash_left_unstarted_and_only_once(
    api: Api, worker: object, container: Any, starters: tuple[Any, FakeStarter]
) -> None:
    real, fake = starters
    teacher, finisher, waiter = await api.user("instructor"), await api.user(), await api.user()
    course = await api.course(teacher, title="Sweeper course")
    module = await api.module(teacher, course["id"])
    lesson = await api.lesson(teacher, course["id"], module["id"])
    r = await api.client.post(f"/courses/{course['id']}/publish", headers=teacher["headers"])
    assert (await api.wait_workflow(teacher, r.json()["workflow_id"]))["status"] == "completed"
    r = await api.client.post("/enrollments", json={"course_id": course["id"]}, headers=finisher["headers"])
    assert r.status_code == 201, r.text
    finished = uuid.UUID(r.json()["id"])

    async def finisher_active() -> bool:
        return (await _enrollment(container, finished)).status == "active"

    await _wait_for(finisher_active, "the first enrollment's workflow")

    # The engine goes away: an enrollment commits pending, a completion commits without its certificate.
    container.use_workflow_starter(fake)
    fake.down = True
    r = await api.client.post("/enrollments", json={"course_id": course["id"]}, headers=waiter["headers"])
    assert r.status_code == 201 and r.json()["status"] == "pending", r.text
    pending, pending_workflow = uuid.UUID(r.json()["id"]), r.json()["workflow_id"]
    r = await api.client.post(f"/lessons/{lesson['id']}/complete", headers=finisher["headers"])
    assert r.status_code == 200 and r.json()["percent"] == 100, r.text
    assert (await _enrollment(container, finished)).status == "completed"
    assert await _certificate(container, finished) is None
    assert fake.started == []

    # The engine is back: the sweeper starts both, by name, with their deterministic ids.
    fake.down = False
    assert await sweep(container, older_than=timedelta(0)) >= 2
    expected = {
        pending_workflow: (names.ENROLLMENT, names.enrollment_input(pending)),
        certificate_workflow_id(finished): (names.CERTIFICATE, names.certificate_input(finished)),
    }
    ours = {wid: (wf, arg) for wf, arg, wid in fake.started if wid in expected}
    assert ours == expected

    # A second sweep finds them running: it starts nothing new.
    started = list(fake.started)
    await sweep(container, older_than=timedelta(0))
    assert fake.started == started

    # What the sweeper asked for runs as the real workflows.
    container.use_workflow_starter(real)
    for workflow_id, (workflow, arg) in ours.items():
        assert await real.start(workflow, arg, workflow_id=workflow_id) == "running"

    async def pending_active() -> bool:
        return (await _enrollment(container, pending)).status == "active"

    async def certified() -> bool:
        return await _certificate(container, finished) is not None

    await _wait_for(pending_active, "the swept enrollment workflow")
    await _wait_for(certified, "the swept certificate workflow")


async def test_a_start_the_sweeper_makes_continues_the_requests_trace(
    api: Api, worker: object, container: Any, starters: tuple[Any, FakeStarter]
) -> None:
    """explore55 F3: after a stalled worker the sweeper reached an admission before the dispatcher, and started its
    workflow in a trace of its own: the request's trace stopped at the API. Its start continues the trace the
    admission's outbox row kept, as the dispatcher's does."""
    from sqlalchemy import update

    from smartcourse.models import OutboxEvent
    from smartcourse.services.dispatcher import sweep_pending

    _, fake = starters
    teacher, student = await api.user("instructor"), await api.user()
    course = await api.published_course(teacher)
    container.use_workflow_starter(fake)
    fake.down = True  # the dispatcher cannot start it ...
    r = await api.client.post("/enrollments", json={"course_id": course["id"]}, headers=student["headers"])
    assert r.status_code == 201 and r.json()["status"] == "pending", r.text
    enrollment_id, workflow_id = r.json()["id"], r.json()["workflow_id"]
    async with container.uow() as uow:  # ... and, as after a stall, the dispatcher's queue no longer holds it
        await uow.session.execute(
            update(OutboxEvent).where(OutboxEvent.aggregate_id == enrollment_id).values(dispatched_at=func.now())
        )
        await uow.commit()
    fake.down = False
    await sweep_pending(container, older_than_s=0)
    assert fake.traces.get(workflow_id) == r.headers["x-trace-id"], (fake.traces.get(workflow_id), r.headers)
    # Started again by a later sweep (a no-op for a running workflow; the real start of one whose start was lost): in
    # the request's trace too. It was a trace of its own, which also failed this test when the dispatcher had got
    # there before the sweep above and the sweep only started it again.
    await sweep_pending(container, older_than_s=0)
    assert fake.traces.get(workflow_id) == r.headers["x-trace-id"], (fake.traces.get(workflow_id), r.headers)
