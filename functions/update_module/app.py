"""PUT /courses/{course_id}/modules/{module_id}: rename or move a module."""

import uuid

from fastapi import APIRouter

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.schemas import ModulePublic, ModuleUpdateIn
from smartcourse.services import courses

router = APIRouter(tags=["modules"])


@router.put("/courses/{course_id:uuid}/modules/{module_id:uuid}", response_model=ModulePublic)
async def update_module(
    course_id: uuid.UUID, module_id: uuid.UUID, body: ModuleUpdateIn, user: CurrentUser, c: ContainerDep
) -> ModulePublic:
    async with c.uow() as uow:
        return await courses.update_module(
            uow=uow,
            documents=c.documents,
            principal=user,
            course_id=course_id,
            module_id=module_id,
            data=body,
        )


handler = lambda_handler(router)
