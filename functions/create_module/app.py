"""POST /courses/{course_id}/modules: add a module (owner or admin)."""

import uuid

from fastapi import APIRouter

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.schemas import ModuleIn, ModulePublic
from smartcourse.services import courses

router = APIRouter(tags=["modules"])


@router.post(
    "/courses/{course_id:uuid}/modules",
    status_code=201,
    response_model=ModulePublic,
    description="Adds a module at the end of the course, or at `position`. The answer has no `Location`: a module "
    "has no GET of its own (`GET /courses/{course_id}` shows it); `PUT` and `DELETE` address it at "
    "`/courses/{course_id}/modules/{id}`.",
)
async def create_module(course_id: uuid.UUID, body: ModuleIn, user: CurrentUser, c: ContainerDep) -> ModulePublic:
    async with c.uow() as uow:
        return await courses.add_module(uow=uow, principal=user, course_id=course_id, data=body)


handler = lambda_handler(router)
