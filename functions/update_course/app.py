"""PUT /courses/{course_id}: change a course's details (owner or admin)."""

import uuid

from fastapi import APIRouter

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.schemas import CourseDetail, CourseUpdateIn
from smartcourse.services import courses

router = APIRouter(tags=["courses"])


@router.put("/courses/{course_id:uuid}", response_model=CourseDetail)
async def update_course(course_id: uuid.UUID, body: CourseUpdateIn, user: CurrentUser, c: ContainerDep) -> CourseDetail:
    async with c.uow() as uow:
        detail = await courses.update_course(
            uow=uow, documents=c.documents, principal=user, course_id=course_id, data=body
        )
    await c.invalidate_course_cache(course_id)
    return detail


handler = lambda_handler(router)
