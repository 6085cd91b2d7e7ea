"""POST /ai/generated-quizzes/{quiz_id}/save: a generated quiz becomes a draft quiz lesson of a module."""

import uuid

from fastapi import APIRouter

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.assistant.schemas import SaveQuizIn
from smartcourse.schemas import LessonPublic
from smartcourse.services import assistant

router = APIRouter(tags=["assistant"])


@router.post("/ai/generated-quizzes/{quiz_id:uuid}/save", status_code=201, response_model=LessonPublic)
async def ai_save_generated_quiz(
    quiz_id: uuid.UUID, body: SaveQuizIn, user: CurrentUser, c: ContainerDep
) -> LessonPublic:
    return await assistant.save_generated_quiz(c, principal=user, quiz_id=quiz_id, body=body)


handler = lambda_handler(router)
