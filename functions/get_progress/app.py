"""GET /enrollments/{enrollment_id}/progress: the student, the course's instructor or an admin; lessons, percent."""

import uuid

from fastapi import APIRouter

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.schemas import ProgressPublic
from smartcourse.services import progress

router = APIRouter(tags=["progress"])


@router.get("/enrollments/{enrollment_id:uuid}/progress", response_model=ProgressPublic)
async def get_progress(enrollment_id: uuid.UUID, user: CurrentUser, c: ContainerDep) -> ProgressPublic:
    async with c.uow() as uow:
        return await progress.get_progress(
            uow=uow,
            documents=c.documents,
            principal=user,
            enrollment_id=enrollment_id,
            max_attempts=c.settings.quiz_max_attempts,
        )


handler = lambda_handler(router)
