"""Use cases that commit a change and then start the workflow it calls for (the sweeper covers a crash between)."""

from __future__ import annotations

import asyncio
import contextlib
import math
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from smartcourse.domain import workflows as names
from smartcourse.domain.enrollment import certificate_workflow_id
from smartcourse.errors import Conflict
from smartcourse.models import Course, Enrollment, Lesson, QuizAttempt
from smartcourse.ratelimit import Decision, rate_limited_error
from smartcourse.schemas import CertificatePublic, EnrollmentDetail, EnrollmentPublic, ProgressPublic, QuizResult
from smartcourse.security import Principal
from smartcourse.services import certificates, dispatcher, enrollment, progress, workflows
from smartcourse.services.courses import VERSIONS, version_doc_id


async def _start_certificate(container: Any, enrollment_id: uuid.UUID) -> None:
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
    *, container: Any, principal: Principal, course_id: uuid.UUID, idempotency_key: str | None
) -> tuple[EnrollmentPublic, bool]:
    """The admission only: its workflow is started by the dispatcher from the committed `enrollment.created`
    (services/dispatcher.py), never on the request path. Refused with 503 `overloaded` while the backlog of
    admitted-not-active enrollments is at its ceiling."""
    await dispatcher.admission_gate(container)
    async with (
        COURSE_QUEUES.turn(course_id, container.settings.admissions_per_course),
        container.uow() as uow,
    ):
        return await enrollment.enroll(
            uow=uow, principal=principal, course_id=course_id, idempotency_key=idempotency_key
        )


async def drop(*, container: Any, principal: Principal, enrollment_id: uuid.UUID) -> EnrollmentPublic:
    """Drop; a promoted student's workflow is started by the dispatcher from `waitlist.promoted`."""
    async with container.uow() as uow:
        dropped, _promoted = await enrollment.drop(uow=uow, principal=principal, enrollment_id=enrollment_id)
    return dropped


async def detail(*, container: Any, principal: Principal, enrollment_id: uuid.UUID) -> EnrollmentDetail:
    """The enrollment from the database, then its workflow's steps from Temporal (no connection held meanwhile)."""
    async with container.uow() as uow:
        result = await enrollment.detail(
            uow=uow, documents=container.documents, principal=principal, enrollment_id=enrollment_id
        )
    if result.workflow_id:
        status, steps = await workflows.describe_or_unavailable(
            container, result.workflow_id, tuple(n for n, _ in names.ENROLLMENT_STEPS)
        )
        result = result.model_copy(update={"workflow_status": status, "steps": steps})
    if result.status == "completed":
        async with container.uow() as uow:
            cert = await certificates.for_enrollment(uow=uow, enrollment_id=result.id)
        if cert is not None:
            result = result.model_copy(
                update={"certificate": CertificatePublic.of(cert, container.settings.public_base_url)}
            )
    return result


async def complete_lesson(*, container: Any, principal: Principal, lesson_id: uuid.UUID) -> ProgressPublic:
    async with container.uow() as uow:
        result, completed = await progress.complete_lesson(
            uow=uow, documents=container.documents, principal=principal, lesson_id=lesson_id
        )
    if completed:
        await _start_certificate(container, result.enrollment_id)
    return result


async def _quiz_record(uow: Any, student_id: uuid.UUID, lesson_id: uuid.UUID) -> tuple[int, datetime | None, bool]:
    """(attempts so far, last submission, passed once) of a student on a quiz, across re-enrollments."""
    from sqlalchemy import func, select

    row = (
        await uow.session.execute(
            select(func.count(QuizAttempt.id), func.max(QuizAttempt.submitted_at), func.bool_or(QuizAttempt.passed))
            .join(Enrollment, Enrollment.id == QuizAttempt.enrollment_id)
            .where(Enrollment.student_id == student_id, QuizAttempt.lesson_id == lesson_id)
        )
    ).one()
    return int(row[0] or 0), row[1], bool(row[2])


async def submit_quiz(*, container: Any, principal: Principal, lesson_id: uuid.UUID, answers: list[int]) -> QuizResult:
    """Grade an attempt, within the attempt limit and cool-down; per-question feedback once passed or exhausted."""
    settings = container.settings
    limit, cooldown = settings.quiz_max_attempts, settings.quiz_cooldown_seconds
    async with container.uow() as uow:
        used, last, passed_before = await _quiz_record(uow, principal.user_id, lesson_id)
    if not passed_before:
        if used >= limit:
            raise Conflict(
                f"no attempts left on this quiz (limit {limit})",
                code="quiz_attempts_exhausted",
                details={"max_attempts": limit},
            )
        if last is not None and cooldown:
            wait = cooldown - (datetime.now(UTC) - last).total_seconds()
            if wait > 0:
                decision = Decision(allowed=False, retry_after_seconds=math.ceil(wait), limit="quiz_cooldown")
                error = rate_limited_error(decision, f"wait {math.ceil(wait)} s before the next attempt")
                error.code = "quiz_cooldown"
                raise error
    result = await _submit_quiz(container=container, principal=principal, lesson_id=lesson_id, answers=answers)
    left = max(0, limit - result.attempt)
    update: dict[str, Any] = {"attempts_left": None if result.passed else left}
    if result.passed or passed_before or left == 0:
        update["correct"] = await _correctness(container, lesson_id, answers)
    return result.model_copy(update=update)


async def _correctness(container: Any, lesson_id: uuid.UUID, answers: list[int]) -> list[bool] | None:
    """Which answers were right, graded against the live version's quiz (the one just graded)."""

    async with container.uow() as uow:
        lesson = await uow.session.get(Lesson, lesson_id)
        course = await uow.session.get(Course, lesson.course_id) if lesson is not None else None
    if course is None:
        return None
    snapshot = await container.documents.get(VERSIONS, version_doc_id(course.id, course.content_version)) or {}
    for module in snapshot.get("modules", []):
        for item in module.get("lessons", []):
            if item.get("id") == str(lesson_id):
                questions = item.get("questions") or []
                return [q.get("answer") == a for q, a in zip(questions, answers, strict=False)]
    return None


async def _submit_quiz(*, container: Any, principal: Principal, lesson_id: uuid.UUID, answers: list[int]) -> QuizResult:
    async with container.uow() as uow:
        result, e = await progress.submit_quiz(
            uow=uow, documents=container.documents, principal=principal, lesson_id=lesson_id, answers=answers
        )
    if e.status == "completed":
        await _start_certificate(container, e.id)
    return result
