"""GET /analytics/course/{course_id}: one course's enrollments, completions, engagement and assistant usage
(its instructor or an admin)."""

import uuid
from typing import Any

from fastapi import APIRouter, Depends

from smartcourse.api.app import lambda_handler, refuse_unknown_query
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.schemas import CourseAnalytics
from smartcourse.services import analytics

router = APIRouter(tags=["analytics"], dependencies=[Depends(refuse_unknown_query)])


@router.get("/analytics/course/{course_id:uuid}", response_model=CourseAnalytics)
async def analytics_course(course_id: uuid.UUID, user: CurrentUser, c: ContainerDep) -> dict[str, Any]:
    async with c.uow() as uow:
        return await analytics.course_view(uow=uow, principal=user, course_id=course_id)


handler = lambda_handler(router)
