"""GET /instructors/{instructor_id}: an instructor's public profile, newest 20 published courses and their total."""

import uuid

from fastapi import APIRouter

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep
from smartcourse.schemas import InstructorPublic
from smartcourse.services import accounts

router = APIRouter(tags=["users"])


@router.get("/instructors/{instructor_id:uuid}", response_model=InstructorPublic)
async def get_instructor(instructor_id: uuid.UUID, c: ContainerDep) -> InstructorPublic:
    """The public profile (no email) with the instructor's newest 20 published courses in `courses` (newest created
    first, then id) and how many published courses there are in `courses_total`. `courses` is page 1 of
    `GET /courses?instructor_id={instructor_id}` (page size 20): when `courses_total` is larger, list the rest there
    from `page=2` (or walk it from page 1 with another `page_size`). 404 `instructor_not_found` when the id names
    no instructor."""
    async with c.uow() as uow:
        return await accounts.get_instructor(uow=uow, instructor_id=instructor_id)


handler = lambda_handler(router)
