"""GET /courses/{course_id}/materials: the course's materials (owner/admin: all; enrolled students: the live ones)."""

import uuid

from fastapi import APIRouter

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.schemas import MaterialList
from smartcourse.services import materials

router = APIRouter(tags=["materials"])


@router.get("/courses/{course_id}/materials", response_model=MaterialList)
async def list_materials(course_id: uuid.UUID, user: CurrentUser, c: ContainerDep) -> MaterialList:
    async with c.uow() as uow:
        return await materials.list_materials(uow=uow, documents=c.documents, principal=user, course_id=course_id)


handler = lambda_handler(router)
