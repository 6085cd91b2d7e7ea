"""GET /instructors/{instructor_id}: an instructor's public profile and published courses."""

import uuid

from fastapi import APIRouter

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep
from smartcourse.schemas import InstructorPublic
from smartcourse.services import accounts

router = APIRouter(tags=["users"])


@router.get("/instructors/{instructor_id:uuid}", response_model=InstructorPublic)
async def get_instructor(instructor_id: uuid.UUID, c: ContainerDep) -> InstructorPublic:
    async with c.uow() as uow:
        return await accounts.get_instructor(uow=uow, instructor_id=instructor_id)


handler = lambda_handler(router)
