"""GET /analytics/student/{student_id}: one student's enrollments, completions, activity and assistant usage
(that student or an admin)."""

import uuid
from typing import Any

from fastapi import APIRouter, Depends

from smartcourse.api.app import lambda_handler, refuse_unknown_query
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.schemas import StudentAnalytics
from smartcourse.services import analytics

router = APIRouter(tags=["analytics"], dependencies=[Depends(refuse_unknown_query)])


@router.get("/analytics/student/{student_id:uuid}", response_model=StudentAnalytics)
async def analytics_student(student_id: uuid.UUID, user: CurrentUser, c: ContainerDep) -> dict[str, Any]:
    async with c.uow() as uow:
        return await analytics.student_view(uow=uow, principal=user, student_id=student_id)


handler = lambda_handler(router)
