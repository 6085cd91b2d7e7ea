"""DELETE /courses/{course_id}/modules/{module_id}: remove a module and its lessons."""

import uuid

from fastapi import APIRouter, Response

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.services import courses

router = APIRouter(tags=["modules"])


@router.delete("/courses/{course_id:uuid}/modules/{module_id:uuid}", status_code=204, response_class=Response)
async def delete_module(course_id: uuid.UUID, module_id: uuid.UUID, user: CurrentUser, c: ContainerDep) -> Response:
    async with c.uow() as uow:
        await courses.delete_module(
            uow=uow, documents=c.documents, principal=user, course_id=course_id, module_id=module_id
        )
    return Response(status_code=204)


handler = lambda_handler(router)
