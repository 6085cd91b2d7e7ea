"""Use cases that commit a change and then start the workflow it calls for (the sweeper covers a crash between)."""

from __future__ import annotations

import uuid
from typing import Any

from smartcourse.domain import workflows as names
from smartcourse.domain.enrollment import certificate_workflow_id
from smartcourse.schemas import EnrollmentDetail, EnrollmentPublic, ProgressPublic, QuizResult
from smartcourse.security import Principal
from smartcourse.services import enrollment, progress, workflows


async def _start_enrollment(container: Any, enrollment_id: uuid.UUID, workflow_id: str) -> None:
    await workflows.start_quietly(
        container, names.ENROLLMENT, names.enrollment_input(enrollment_id), workflow_id=workflow_id
    )


async def _start_certificate(container: Any, enrollment_id: uuid.UUID) -> None:
    await workflows.start_quietly(
        container,
        names.CERTIFICATE,
        names.certificate_input(enrollment_id),
        workflow_id=certificate_workflow_id(enrollment_id),
    )


async def enroll(
    *, container: Any, principal: Principal, course_id: uuid.UUID, idempotency_key: str | None
) -> tuple[EnrollmentPublic, bool]:
    async with container.uow() as uow:
        result, created = await enrollment.enroll(
            uow=uow, principal=principal, course_id=course_id, idempotency_key=idempotency_key
        )
    # Also on a repeat: a request retried after a crash between commit and start repairs the start.
    if result.status == "pending" and result.workflow_id:
        await _start_enrollment(container, result.id, result.workflow_id)
    return result, created


async def drop(*, container: Any, principal: Principal, enrollment_id: uuid.UUID) -> EnrollmentPublic:
    async with container.uow() as uow:
        dropped, promoted = await enrollment.drop(uow=uow, principal=principal, enrollment_id=enrollment_id)
    if promoted is not None and promoted.workflow_id:
        await _start_enrollment(container, promoted.id, promoted.workflow_id)
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
        from smartcourse.schemas import CertificatePublic
        from smartcourse.services import certificates

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


async def submit_quiz(*, container: Any, principal: Principal, lesson_id: uuid.UUID, answers: list[int]) -> QuizResult:
    async with container.uow() as uow:
        result, e = await progress.submit_quiz(
            uow=uow, documents=container.documents, principal=principal, lesson_id=lesson_id, answers=answers
        )
    if e.status == "completed":
        await _start_certificate(container, e.id)
    return result
