"""POST /enrollments/{enrollment_id}/quiz-attempts: more attempts on one quiz for one student (the course's instructor
or an admin)."""

import uuid

from fastapi import APIRouter, Response

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.api.idempotency import REPLAYED_HEADER, IdempotencyKey, claim
from smartcourse.schemas import QuizGrantIn, QuizGrantPublic
from smartcourse.services import progress

router = APIRouter(tags=["progress"])


@router.post(
    "/enrollments/{enrollment_id:uuid}/quiz-attempts",
    status_code=201,
    response_model=QuizGrantPublic,
    responses={201: {"headers": REPLAYED_HEADER}},
)
async def grant_quiz_attempts(
    enrollment_id: uuid.UUID,
    body: QuizGrantIn,
    user: CurrentUser,
    c: ContainerDep,
    idempotency_key: IdempotencyKey = None,
) -> QuizGrantPublic | Response:
    """A student who used up a quiz's attempts (409 `quiz_attempts_exhausted`) gets `extra` more on it: recorded in
    the enrollment's history, and the student is told. Counted on the quiz as it is: a rewrite starts the count
    again. Refused: not the course's instructor or an admin (403 `not_course_owner`), a lesson not in the live
    version (404 `lesson_not_found`) or not a quiz (409 `not_a_quiz`), a quiz the student passed (409 `quiz_passed`),
    an enrollment that takes no attempts (409 `enrollment_not_active`)."""
    route = f"POST /enrollments/{enrollment_id}/quiz-attempts"
    async with c.uow() as uow:
        # A retried or double-clicked grant grants once (explore79 F2), as the creating POSTs do.
        keyed = await claim(uow, user, idempotency_key, route, body, keep_hours=c.settings.idempotency_key_hours)
        if keyed.earlier is not None:
            return keyed.replay()
        granted = await progress.grant_attempts(
            uow=uow,
            documents=c.documents,
            principal=user,
            enrollment_id=enrollment_id,
            data=body,
            max_attempts=c.settings.quiz_max_attempts,
        )
        await keyed.answer(201, granted)
    return granted


handler = lambda_handler(router)
