"""DELETE /courses/{course_id}/modules/{module_id}/lessons/{lesson_id}: remove a lesson."""

import uuid

from fastapi import APIRouter, Response

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.services import courses

router = APIRouter(tags=["lessons"])


@router.delete(
    "/courses/{course_id:uuid}/modules/{module_id:uuid}/lessons/{lesson_id:uuid}",
    status_code=204,
    response_class=Response,
)
async def delete_lesson(
    course_id: uuid.UUID, module_id: uuid.UUID, lesson_id: uuid.UUID, user: CurrentUser, c: ContainerDep
) -> Response:
    async with c.uow() as uow:
        await courses.delete_lesson(
            uow=uow,
            documents=c.documents,
            principal=user,
            course_id=course_id,
            module_id=module_id,
            lesson_id=lesson_id,
        )
    return Response(status_code=204)


handler = lambda_handler(router)
