"""POST /lessons/{lesson_id}/complete: mark a text or video lesson complete (idempotent)."""

import uuid

from fastapi import APIRouter

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.schemas import ProgressPublic
from smartcourse.services import learning

router = APIRouter(tags=["progress"])


@router.post("/lessons/{lesson_id:uuid}/complete", response_model=ProgressPublic)
async def complete_lesson(lesson_id: uuid.UUID, user: CurrentUser, c: ContainerDep) -> ProgressPublic:
    return await learning.complete_lesson(container=c, principal=user, lesson_id=lesson_id)


handler = lambda_handler(router)
