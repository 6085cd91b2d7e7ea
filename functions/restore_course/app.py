"""POST /courses/{course_id}/restore: undo an archive (owner or admin); a published course goes live again."""

import uuid

from fastapi import APIRouter

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.schemas import CourseSummary
from smartcourse.services import courses

router = APIRouter(tags=["courses"])


@router.post("/courses/{course_id:uuid}/restore", response_model=CourseSummary)
async def restore_course(course_id: uuid.UUID, user: CurrentUser, c: ContainerDep) -> CourseSummary:
    async with c.uow() as uow:
        summary = await courses.restore_course(uow=uow, principal=user, course_id=course_id)
    await c.invalidate_course_cache(course_id)
    return summary


handler = lambda_handler(router)
