"""GET /enrollments/{enrollment_id}/history: every state change with its time and actor."""

import uuid

from fastapi import APIRouter

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.schemas import HistoryEntry
from smartcourse.services import enrollment

router = APIRouter(tags=["enrollments"])


@router.get("/enrollments/{enrollment_id:uuid}/history", response_model=list[HistoryEntry])
async def enrollment_history(enrollment_id: uuid.UUID, user: CurrentUser, c: ContainerDep) -> list[HistoryEntry]:
    async with c.uow() as uow:
        return await enrollment.history(uow=uow, principal=user, enrollment_id=enrollment_id)


handler = lambda_handler(router)
