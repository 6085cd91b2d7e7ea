"""POST /quizzes/{lesson_id}/submit: grade a quiz on the server; passing completes the lesson."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Header

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.schemas import QuizResult, QuizSubmitIn
from smartcourse.services import learning

router = APIRouter(tags=["progress"])


@router.post("/quizzes/{lesson_id:uuid}/submit", response_model=QuizResult)
async def submit_quiz(
    lesson_id: uuid.UUID,
    body: QuizSubmitIn,
    user: CurrentUser,
    c: ContainerDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            max_length=200,
            pattern=r"^[\x21-\x7e]+$",
            description="names this submission: sent again (a retry whose answer was lost), the result it got, no "
            "attempt spent; with another quiz or other answers, 409 `idempotency_key_reused`",
        ),
    ] = None,
) -> QuizResult:
    return await learning.submit_quiz(
        container=c,
        principal=user,
        lesson_id=lesson_id,
        answers=body.answers,
        version=body.version,
        idempotency_key=idempotency_key,
    )


handler = lambda_handler(router)
