"""Use cases that commit a change and then start the workflow it calls for (the sweeper covers a crash between)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

from smartcourse.domain import workflows as names
from smartcourse.domain.enrollment import certificate_workflow_id
from smartcourse.errors import Unavailable
from smartcourse.schemas import (
    CertificatePublic,
    EnrollmentDetail,
    EnrollmentPublic,
    MyCourse,
    ProgressPublic,
    QuizResult,
)
from smartcourse.security import Principal
from smartcourse.services import certificates, dispatcher, enrollment, progress, workflows


async def start_certificate(container: Any, enrollment_id: uuid.UUID) -> None:
    """After the commit that completed the enrollment; never fails (the sweeper starts it later if this could not)."""
    await workflows.start_quietly(
        container,
        names.CERTIFICATE,
        names.certificate_input(enrollment_id),
        workflow_id=certificate_workflow_id(enrollment_id),
    )


class CourseQueues:
    """At most `per_course` admissions to one course hold a database connection at once in this process.

    Admissions to a course are serial anyway (its row lock); without this, a launch-day burst on one course
    parks every pooled connection in that lock's queue, and every other request of the process (reads, the
    relay's consumers in tests) waits for a connection until the pool times out. Here the burst waits in
    memory, in arrival order (asyncio.Semaphore is FIFO), holding nothing; the row lock still decides."""

    def __init__(self) -> None:
        self._queues: dict[tuple[int, uuid.UUID], tuple[asyncio.Semaphore, list[int]]] = {}

    @contextlib.asynccontextmanager
    async def turn(self, course_id: uuid.UUID, per_course: int) -> AsyncIterator[None]:
        key = (id(asyncio.get_running_loop()), course_id)
        entry = self._queues.get(key)
        if entry is None:
            entry = self._queues[key] = (asyncio.Semaphore(max(1, per_course)), [0])
        entry[1][0] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1][0] -= 1
            if not entry[1][0]:
                self._queues.pop(key, None)


COURSE_QUEUES = CourseQueues()


async def enroll(
    *,
    container: Any,
    principal: Principal,
    course_id: uuid.UUID,
    idempotency_key: str | None,
    student_id: uuid.UUID | None = None,
) -> tuple[EnrollmentPublic, bool]:
    """The admission only: its workflow is started by the dispatcher from the committed `enrollment.created`
    (services/dispatcher.py), never on the request path. Refused with 503 `overloaded` while the backlog of
    admitted-not-active enrollments is at its ceiling."""
    enrollment.refuse_who_never_enrolls(principal, student_id)  # a 403 is not shed as 503 (explore71 F10)
    try:
        await dispatcher.admission_gate(container)
    except Unavailable:
        # A repeat, or a request the waitlist would take (explore84 F4), adds nothing to the backlog: answered as
        # always (explore70 F3: a retry with the same Idempotency-Key got 503 instead of the documented 200). Read on
        # this refusal only.
        async with container.uow() as uow:
            repeat = await enrollment.repeat_of(
                uow=uow,
                principal=principal,
                course_id=course_id,
                idempotency_key=idempotency_key,
                student_id=student_id,
            )
            if repeat is not None:
                return await enrollment.with_percent(uow, container.documents, repeat), False
            if not await enrollment.would_wait(uow, course_id):
                raise
    async with (
        COURSE_QUEUES.turn(course_id, container.settings.admissions_per_course),
        container.uow() as uow,
    ):
        result, created = await enrollment.enroll(
            uow=uow, principal=principal, course_id=course_id, idempotency_key=idempotency_key, student_id=student_id
        )
    if not created:  # a repeat (rare: off the admission's path and its course's turn) reads as GET reads it
        async with container.uow() as uow:
            result = await enrollment.with_percent(uow, container.documents, result)
    return result, created


async def drop(
    *, container: Any, principal: Principal, enrollment_id: uuid.UUID, reason: str | None = None
) -> EnrollmentPublic:
    """Drop; a promoted student's workflow is started by the dispatcher from `waitlist.promoted`."""
    async with container.uow() as uow:
        dropped, _promoted = await enrollment.drop(
            uow=uow, principal=principal, enrollment_id=enrollment_id, reason=reason
        )
        return await enrollment.with_percent(uow, container.documents, dropped)


async def detail(*, container: Any, principal: Principal, enrollment_id: uuid.UUID) -> EnrollmentDetail:
    """The enrollment from the database, then its workflow's steps from Temporal (no connection held meanwhile)."""
    async with container.uow() as uow:
        result = await enrollment.detail(
            uow=uow, documents=container.documents, principal=principal, enrollment_id=enrollment_id
        )
    if result.workflow_id:
        status, steps, steps_unavailable = await workflows.describe_or_unavailable(
            container,
            result.workflow_id,
            tuple(n for n, _ in names.ENROLLMENT_STEPS),
            # Dropped before its workflow started: none ever will (the dispatcher and the sweeper start pending
            # enrollments only).
            never_runs="skipped" if result.status == "dropped" else None,
        )
        result = result.model_copy(
            update={"workflow_status": status, "steps": steps, "steps_unavailable": steps_unavailable}
        )
    if result.status == "completed":
        async with container.uow() as uow:
            cert = await certificates.for_enrollment(uow=uow, enrollment_id=result.id)
        if cert is not None:
            result = result.model_copy(
                update={"certificate": CertificatePublic.of(cert, container.settings.public_base_url, principal)}
            )
    return result


async def complete_lesson(*, container: Any, principal: Principal, lesson_id: uuid.UUID) -> ProgressPublic:
    async with container.uow() as uow:
        result, completed = await progress.complete_lesson(
            uow=uow,
            documents=container.documents,
            principal=principal,
            lesson_id=lesson_id,
            max_attempts=container.settings.quiz_max_attempts,
        )
    if completed:
        await start_certificate(container, result.enrollment_id)
    return result


async def course_cards(
    *,
    container: Any,
    principal: Principal,
    page: int,
    page_size: int,
    statuses: frozenset[str] | None,
    student_id: uuid.UUID | None = None,
    course_ids: frozenset[uuid.UUID] | None = None,
) -> tuple[list[MyCourse], int]:
    """One page of an account's enrollments as course cards, and their total: the caller's
    (`GET /enrollments/my-courses`) or, with `student_id`, that account's (`GET /users/{id}/enrollments`)."""
    async with container.uow() as uow:
        return await enrollment.my_courses(
            uow=uow,
            documents=container.documents,
            principal=principal,
            page=page,
            page_size=page_size,
            public_base_url=container.settings.public_base_url,
            statuses=statuses,
            student_id=student_id,
            course_ids=course_ids,
        )


async def submit_quiz(
    *,
    container: Any,
    principal: Principal,
    lesson_id: uuid.UUID,
    answers: list[int],
    version: int | None = None,
    idempotency_key: str | None = None,
) -> QuizResult:
    """Grade an attempt, within the attempt limit and cool-down (checked in the grading transaction, under the
    enrollment's lock: services/progress.py); per-question feedback once passed or exhausted."""
    settings = container.settings
    async with container.uow() as uow:
        result, e = await progress.submit_quiz(
            uow=uow,
            documents=container.documents,
            principal=principal,
            lesson_id=lesson_id,
            answers=answers,
            version=version,
            max_attempts=settings.quiz_max_attempts,
            cooldown_seconds=settings.quiz_cooldown_seconds,
            idempotency_key=idempotency_key,
        )
    if e.status == "completed":
        await start_certificate(container, e.id)
    return result
