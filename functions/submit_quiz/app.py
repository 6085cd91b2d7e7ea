"""POST /quizzes/{lesson_id}/submit: grade a quiz on the server; passing completes the lesson."""

import uuid

from fastapi import APIRouter

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.schemas import QuizResult, QuizSubmitIn
from smartcourse.services import learning

router = APIRouter(tags=["progress"])


@router.post("/quizzes/{lesson_id:uuid}/submit", response_model=QuizResult)
async def submit_quiz(lesson_id: uuid.UUID, body: QuizSubmitIn, user: CurrentUser, c: ContainerDep) -> QuizResult:
    return await learning.submit_quiz(
        container=c, principal=user, lesson_id=lesson_id, answers=body.answers, version=body.version
    )


handler = lambda_handler(router)
