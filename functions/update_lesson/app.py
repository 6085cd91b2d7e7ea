"""PUT /courses/{course_id}/modules/{module_id}/lessons/{lesson_id}: change a lesson."""

import uuid

from fastapi import APIRouter

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.schemas import LessonPublic, LessonUpdateIn
from smartcourse.services import courses

router = APIRouter(tags=["lessons"])


@router.put(
    "/courses/{course_id:uuid}/modules/{module_id:uuid}/lessons/{lesson_id:uuid}",
    response_model=LessonPublic,
)
async def update_lesson(
    course_id: uuid.UUID,
    module_id: uuid.UUID,
    lesson_id: uuid.UUID,
    body: LessonUpdateIn,
    user: CurrentUser,
    c: ContainerDep,
) -> LessonPublic:
    async with c.uow() as uow:
        return await courses.update_lesson(
            uow=uow,
            documents=c.documents,
            principal=user,
            course_id=course_id,
            module_id=module_id,
            lesson_id=lesson_id,
            data=body,
        )


handler = lambda_handler(router)
