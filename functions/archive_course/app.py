"""DELETE /courses/{course_id}: archive a course (owner or admin); enrolled learners keep reading and learning it."""

import uuid

from fastapi import APIRouter

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.schemas import CourseSummary
from smartcourse.services import courses

router = APIRouter(tags=["courses"])


@router.delete("/courses/{course_id:uuid}", response_model=CourseSummary)
async def archive_course(course_id: uuid.UUID, user: CurrentUser, c: ContainerDep) -> CourseSummary:
    async with c.uow() as uow:
        summary = await courses.archive_course(uow=uow, principal=user, course_id=course_id)
    await c.invalidate_course_cache(course_id)
    return summary


handler = lambda_handler(router)
