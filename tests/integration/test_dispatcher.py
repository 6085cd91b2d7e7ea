"""Launch day (issue #7): the admission never waits on Temporal; the dispatcher starts the workflows from the outbox,
within its bound on work in flight, once per enrollment; a saturated API answers 503 `overloaded` with Retry-After;
/health shows the backlog.

The session's own dispatcher (the `worker` fixture) is paused where a test needs the queue to itself: the test holds
the dispatchers' advisory lock, and drives rounds with `dispatch_once` under a key of its own.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import APIRouter
from sqlalchemy import event, func, select, text, update

from smartcourse.api.app import create_app
from smartcourse.bootstrap import build_container
from smartcourse.models import OUTBOX_DISPATCH_QUEUE, Enrollment, EnrollmentHistory, OutboxEvent
from smartcourse.security import Principal
from smartcourse.services import dispatcher
from smartcourse.services import enrollment as service
from smartcourse.services.dispatcher import DispatchConfig, dispatch_once
from tests.conftest import Api

TEST_KEY = 0x7465737464697370  # "testdisp": this file's rounds, apart from the session's dispatcher


@asynccontextmanager
async def _queue_of_its_own(container: Any, eid: uuid.UUID) -> AsyncIterator[None]:
    """Sets aside the admissions other tests left queued, so a round holds only this enrollment's rows
    (a leftover's start can time out on a busy machine, or fill the round); puts them back afterwards."""
    async with container.sessionmaker() as session, session.begin():
        others = (
            await session.scalars(
                update(OutboxEvent)
                .where(text(OUTBOX_DISPATCH_QUEUE), OutboxEvent.aggregate_id != str(eid))
                .values(dispatched_at=func.now())
                .returning(OutboxEvent.id)
            )
        ).all()
    try:
        yield
    finally:
        if others:
            async with container.sessionmaker() as session, session.begin():
                await session.execute(update(OutboxEvent).where(OutboxEvent.id.in_(others)).values(dispatched_at=None))


class Recording:
    """A WorkflowStarter that records starts (REJECT_DUPLICATE: one per id) and runs none."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.calls = 0

    async def start(self, workflow: str, arg: Any, *, workflow_id: str) -> str:
        self.calls += 1
        if workflow_id not in self.started:
            self.started.append(workflow_id)
        return "running"


class Gated:
    """Every start waits until the test opens the gate, then goes to the real engine."""

    def __init__(self, real: Any) -> None:
        self.real, self.gate, self.waiting = real, asyncio.Event(), 0

    async def start(self, workflow: str, arg: Any, *, workflow_id: str) -> str:
        self.waiting += 1
        await self.gate.wait()
        return str(await self.real.start(workflow, arg, workflow_id=workflow_id))


_COURSE: dict[str, str] = {}


async def _published(api: Api) -> str:
    """One published course for this file's tests (publishing once keeps them fast on a busy machine)."""
    if "id" not in _COURSE:
        teacher = await api.user("instructor")
        course = await api.course(teacher, title="Launch day")
        module = await api.module(teacher, course["id"])
        await api.lesson(teacher, course["id"], module["id"])
        r = await api.client.post(f"/courses/{course['id']}/publish", headers=teacher["headers"])
        assert r.status_code == 202, r.text
        assert (await api.wait_workflow(teacher, r.json()["workflow_id"], timeout=180))["status"] == "completed"
        _COURSE["id"] = course["id"]
    return _COURSE["id"]


async def _enroll(api: Api, course_id: str, student: dict[str, Any]) -> dict[str, Any]:
    r = await api.client.post("/enrollments", json={"course_id": course_id}, headers=student["headers"])
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def _row(container: Any, eid: str) -> Enrollment:
    async with container.sessionmaker() as session:
        row = await session.get(Enrollment, uuid.UUID(eid))
        assert row is not None
        return row


async def _wait(check: Any, what: str, timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def _drop(api: Api, enrollments: list[tuple[str, dict[str, Any]]]) -> None:
    """Test enrollments that no workflow will run leave the backlog (they would count as in flight), dropped the
    way a student drops (with their events, so the analytics still reconcile)."""
    for eid, student in enrollments:
        r = await api.client.delete(f"/enrollments/{eid}", headers=student["headers"])
        assert r.status_code == 200, r.text


async def test_the_admission_does_not_wait_on_the_workflow_engine(
    api: Api, worker: object, container: Any, restore_starter: Any
) -> None:
    course = {"id": await _published(api)}
    gated = Gated(restore_starter)
    container.use_workflow_starter(gated)  # any start now hangs until the gate opens
    student = await api.user()
    r = await asyncio.wait_for(
        api.client.post("/enrollments", json={"course_id": course["id"]}, headers=student["headers"]), 10
    )
    assert r.status_code == 201 and r.json()["status"] == "pending", r.text
    eid = r.json()["id"]
    row = await _row(container, eid)
    assert row.status == "pending" and row.workflow_started_at is None

    gated.gate.set()  # the engine answers: the dispatcher's start goes through and the workflow runs

    async def active() -> bool:
        return (await _row(container, eid)).status == "active"

    await _wait(active, "the dispatcher to start the workflow and the workflow to activate the enrollment")
    assert (await _row(container, eid)).workflow_started_at is not None


async def test_the_dispatcher_holds_its_bound_and_starts_in_admission_order(
    api: Api, worker: object, container: Any, paused_dispatchers: None, restore_starter: Any
) -> None:
    course = {"id": await _published(api)}
    students = [await api.user() for _ in range(6)]
    ids = [(await _enroll(api, course["id"], s))["id"] for s in students]
    fake = Recording()
    container.use_workflow_starter(fake)
    try:
        async with container.sessionmaker() as session:
            before = await dispatcher.backlog(session)
        cfg = DispatchConfig(max_in_flight=before.in_flight + 3, lock_key=TEST_KEY)
        first = await dispatch_once(container, cfg)
        assert first.started == 3 and first.waiting == 3 and first.failed == 0
        expected = [(await _row(container, i)).workflow_id for i in ids]
        assert fake.started == expected[:3]  # the oldest admissions first

        full = await dispatch_once(container, cfg)  # at the bound: nothing more starts, the rest waits queued
        assert full.started == 0 and full.waiting == 3 and full.room == 0
        assert fake.started == expected[:3]
        async with container.sessionmaker() as session:
            now = await dispatcher.backlog(session)
        assert now.in_flight == before.in_flight + 3
        assert now.queued >= 3

        # One of them leaves the pending state (dropped here; a workflow's activation does the same): one more starts.
        await _drop(api, [(ids[0], students[0])])
        more = await dispatch_once(container, cfg)
        assert more.started == 1 and fake.started == expected[:4]
    finally:
        await _drop(api, list(zip(ids, students, strict=True)))


async def _queued_admissions(container: Any, eid: uuid.UUID) -> int:
    async with container.sessionmaker() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(OutboxEvent)
                .where(OutboxEvent.aggregate_id == str(eid), OutboxEvent.dispatched_at.is_(None))
                .where(OutboxEvent.event_type == "enrollment.created")
            )
            or 0
        )


async def test_the_same_admission_twice_starts_one_workflow(
    api: Api, worker: object, container: Any, paused_dispatchers: None, restore_starter: Any
) -> None:
    student = await api.user()
    course = {"id": await _published(api)}
    enrollment = await _enroll(api, course["id"], student)
    eid, workflow_id = uuid.UUID(enrollment["id"]), enrollment["workflow_id"]
    async with container.sessionmaker() as session, session.begin():
        # The admission's event twice in the queue (e.g. written again by a retried transaction) ...
        original = (
            await session.scalars(
                select(OutboxEvent).where(
                    OutboxEvent.aggregate_id == str(eid), OutboxEvent.event_type == "enrollment.created"
                )
            )
        ).one()
        session.add(
            OutboxEvent(
                id=uuid.uuid4(),
                topic=original.topic,
                event_type=original.event_type,
                schema_version=original.schema_version,
                aggregate_id=original.aggregate_id,
                payload=original.payload,
                published_at=original.published_at,
            )
        )
    # Room for it whatever other tests left in flight (the bound is tested elsewhere).
    cfg = DispatchConfig(lock_key=TEST_KEY, max_in_flight=1_000_000)
    async with _queue_of_its_own(container, eid):
        first = await dispatch_once(container, cfg)
        assert first.started == 1 and first.failed == 0, first
        assert (await _row(container, str(eid))).workflow_started_at is not None
        # ... and a crash after the start, before the marks: the next round starts it again.
        async with container.sessionmaker() as session, session.begin():
            await session.execute(update(Enrollment).where(Enrollment.id == eid).values(workflow_started_at=None))
            await session.execute(
                update(OutboxEvent).where(OutboxEvent.aggregate_id == str(eid)).values(dispatched_at=None)
            )
        again = await dispatch_once(container, cfg)
        assert again.failed == 0, again
        # A row the relay holds at that moment (it publishes the same rows) is skipped and marked by a later round,
        # as the background dispatcher (paused here) would: run those rounds.
        for _ in range(50):
            if not await _queued_admissions(container, eid):
                break
            await asyncio.sleep(0.1)
            later = await dispatch_once(container, cfg)
            assert later.failed == 0, later

    async def active() -> bool:
        return (await _row(container, str(eid))).status == "active"

    await _wait(active, "the enrollment workflow")
    client = await container.temporal()
    runs: list[str] = []
    for _ in range(50):  # visibility is eventually consistent
        runs = [w.run_id async for w in client.list_workflows(f'WorkflowId = "{workflow_id}"')]
        if runs:
            break
        await asyncio.sleep(0.1)
    assert len(runs) == 1
    async with container.sessionmaker() as session:
        activations = await session.scalar(
            select(func.count())
            .select_from(EnrollmentHistory)
            .where(EnrollmentHistory.enrollment_id == eid, EnrollmentHistory.to_status == "active")
        )
        queued = await session.scalar(
            select(func.count())
            .select_from(OutboxEvent)
            .where(OutboxEvent.aggregate_id == str(eid), OutboxEvent.dispatched_at.is_(None))
            .where(OutboxEvent.event_type == "enrollment.created")
        )
    assert activations == 1 and queued == 0


async def test_admissions_are_refused_503_overloaded_at_the_backlog_ceiling(
    api: Api, worker: object, container: Any, paused_dispatchers: None
) -> None:
    course = {"id": await _published(api)}
    waiter = await api.user()
    waiting = await _enroll(api, course["id"], waiter)  # queued: the dispatchers are paused
    full = await api.published_course(await api.user("instructor"), capacity=1, waitlist_enabled=True)
    seated, late = await api.user(), await api.user()
    seat = await _enroll(api, full["id"], seated)  # its one seat: in the backlog too
    settings = container.settings
    saved = settings.admission_backlog_limit, settings.admission_backlog_check_seconds
    try:
        async with container.sessionmaker() as session:
            backlog = await dispatcher.backlog(session)
        settings.admission_backlog_limit = backlog.admitted_not_active  # the backlog is at the ceiling
        settings.admission_backlog_check_seconds = 0
        dispatcher.forget_admission_readings()
        student = await api.user()
        r = await api.client.post("/enrollments", json={"course_id": course["id"]}, headers=student["headers"])
        assert r.status_code == 503, r.text
        assert r.json()["code"] == "overloaded" and int(r.headers["Retry-After"]) >= 1
        async with container.sessionmaker() as session:
            mine = await session.scalar(
                select(func.count()).select_from(Enrollment).where(Enrollment.student_id == uuid.UUID(student["id"]))
            )
        assert mine == 0  # refused before anything was written
        # A repeat adds nothing to the backlog: answered as always, 200 (explore70 F3: 503).
        again = await api.client.post("/enrollments", json={"course_id": course["id"]}, headers=waiter["headers"])
        assert (again.status_code, again.json()["id"]) == (200, waiting["id"]), again.text
        # A request the waitlist takes adds nothing to the backlog either: waitlisted, in the order asked (explore84
        # F4: refused 503, the first to ask for a full course were waitlisted behind later ones).
        r = await api.client.post("/enrollments", json={"course_id": full["id"]}, headers=late["headers"])
        assert (r.status_code, r.json()["status"]) == (202, "waitlisted"), r.text
        # A request no admission answers is its 403, not shed (explore71 F10).
        body = {"course_id": course["id"], "student_id": waiter["id"]}
        r = await api.client.post("/enrollments", json=body, headers=student["headers"])
        assert (r.status_code, r.json()["code"]) == (403, "admin_only"), r.text

        settings.admission_backlog_limit = backlog.admitted_not_active + 1  # room again
        dispatcher.forget_admission_readings()
        r = await api.client.post("/enrollments", json={"course_id": course["id"]}, headers=student["headers"])
        assert r.status_code == 201, r.text
    finally:
        settings.admission_backlog_limit, settings.admission_backlog_check_seconds = saved
        dispatcher.forget_admission_readings()
        await _drop(api, [(waiting["id"], waiter), (seat["id"], seated)])


async def test_a_saturated_process_sheds_with_503_overloaded_and_retry_after() -> None:
    release, entered = asyncio.Event(), asyncio.Event()
    router = APIRouter()

    @router.get("/slow")
    async def slow() -> dict[str, bool]:
        entered.set()
        await release.wait()
        return {"ok": True}

    app = create_app(router)
    # The app's limit is read per request from the settings: one request at a time for this app.
    for m in app.user_middleware:
        if m.cls.__name__ == "InFlightLimit":
            m.kwargs["limit"] = lambda: 1
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        first = asyncio.create_task(client.get("/slow"))
        await asyncio.wait_for(entered.wait(), 10)
        shed = await client.get("/slow")
        assert shed.status_code == 503
        assert shed.json()["code"] == "overloaded" and shed.headers["Retry-After"] == "1"
        assert shed.headers.get("X-Content-Type-Options") == "nosniff"  # wrapped by the usual middlewares
        health = await client.get("/health")  # never shed (404 here: this app has no /health route)
        assert health.status_code != 503
        release.set()
        assert (await first).status_code == 200
        assert (await client.get("/slow")).status_code == 200  # capacity is back


async def test_health_shows_the_admitted_not_active_backlog(
    api: Api, worker: object, container: Any, paused_dispatchers: None
) -> None:
    course = {"id": await _published(api)}
    waiter = await api.user()
    waiting = await _enroll(api, course["id"], waiter)
    try:
        await asyncio.sleep(0.2)
        r = await api.client.get("/health")
        backlog = r.json()["enrollment_backlog"]
        async with container.sessionmaker() as session:
            pending = await session.scalar(text("select count(*) from enrollments where status = 'pending'"))
        assert backlog["admitted_not_active"] >= 1 and backlog["queued"] >= 1
        assert abs(backlog["admitted_not_active"] - pending) <= 2  # workflows of other tests may finish meanwhile
        assert backlog["oldest_age_seconds"] >= 0.2
        assert backlog["max_in_flight"] == container.settings.dispatch_max_in_flight
    finally:
        await _drop(api, [(waiting["id"], waiter)])


async def test_the_admission_takes_two_statements(api: Api, worker: object, container: Any) -> None:
    """The existing/idempotent lookup with the course's facts, attempt and prerequisites, then one statement that
    locks the course and writes seat + enrollment + history + outbox event: no call to the workflow engine. A repeat
    with the same key finds the enrollment in the first statement and loads it (two SELECTs, nothing written)."""
    course_id = uuid.UUID(await _published(api))
    student = await api.user()
    principal = Principal(user_id=uuid.UUID(student["id"]), role="student")
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(" ".join(statement.split())[:140])

    own = build_container(container.settings)  # an engine of its own: only this admission's statements on it
    event.listen(own.engine.sync_engine, "before_cursor_execute", count)
    try:
        async with own.uow() as uow:
            result, created = await service.enroll(
                uow=uow, principal=principal, course_id=course_id, idempotency_key="two-statements"
            )
        first = [s.split()[0].upper() for s in statements]
        statements.clear()
        async with own.uow() as uow:
            again, created_again = await service.enroll(
                uow=uow, principal=principal, course_id=course_id, idempotency_key="two-statements"
            )
    finally:
        event.remove(own.engine.sync_engine, "before_cursor_execute", count)
        await own.aclose()
    assert created and result.status == "pending"
    assert first == ["SELECT", "WITH"], first
    assert not created_again and again.id == result.id
    assert all(s.split()[0].upper() == "SELECT" for s in statements), statements
    async with container.sessionmaker() as session:
        history = await session.scalar(
            select(func.count())
            .select_from(EnrollmentHistory)
            .where(EnrollmentHistory.enrollment_id == result.id, EnrollmentHistory.to_status == "pending")
        )
    assert history == 1  # the admission's row (a running worker may already have added pending → active)


async def test_a_stale_backlog_reading_is_refreshed_by_one_request_at_a_time(container: Any) -> None:
    """Under a burst, the requests that find the gate's reading stale do not all count the backlog: one re-reads it,
    the others go by the last reading meanwhile."""
    settings = container.settings
    saved = settings.admission_backlog_check_seconds
    counts: list[str] = []
    # Only the gate's own count: the dispatchers and sweepers left running by earlier tests count enrollments too.
    gate_count = str(dispatcher._PENDING_COUNT.compile(dialect=container.engine.dialect))

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement == gate_count:
            counts.append(statement)

    event.listen(container.engine.sync_engine, "before_cursor_execute", on_execute)
    try:
        dispatcher.forget_admission_readings()
        await dispatcher.admission_gate(container)  # the first reading
        settings.admission_backlog_check_seconds = 0  # from now on every reading is stale
        counts.clear()
        await asyncio.gather(*(dispatcher.admission_gate(container) for _ in range(8)))
        assert len(counts) == 1, counts
    finally:
        event.remove(container.engine.sync_engine, "before_cursor_execute", on_execute)
        settings.admission_backlog_check_seconds = saved
        dispatcher.forget_admission_readings()


async def test_the_in_flight_gauge_follows_workflows_finishing_after_the_last_round(
    worker: object, container: Any
) -> None:
    """explore10 F4: `smartcourse_dispatcher_in_flight` was set only by rounds that found queued admissions, so after
    a launch it read 64 for good. An idle round reads it again (at most once a second) while it is above 0."""
    dispatch_service = dispatcher
    dispatch_service._report_in_flight(64)  # the last busy round's reading, its workflows since finished
    dispatch_service._gauge_read[1] = 0.0  # long ago
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while True:
        async with container.sessionmaker() as session:
            actual = await dispatch_service._in_flight(session)
        if dispatch_service.metrics().in_flight._value.get() == actual < 64:
            break
        assert loop.time() < deadline, (dispatch_service.metrics().in_flight._value.get(), actual)
        await asyncio.sleep(0.2)
