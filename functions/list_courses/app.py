"""GET /courses: the catalogue, paginated, searchable by text and category."""

from typing import Annotated

from fastapi import APIRouter, Query

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, OptionalUser
from smartcourse.schemas import CoursePage
from smartcourse.services import courses

router = APIRouter(tags=["courses"])


@router.get("/courses", response_model=CoursePage)
async def list_courses(
    c: ContainerDep,
    user: OptionalUser,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
    q: Annotated[str | None, Query(max_length=200, pattern=r"^[^\x00]*$")] = None,
    category: Annotated[str | None, Query(max_length=100, pattern=r"^[^\x00]*$")] = None,
    mine: bool = False,
) -> CoursePage:
    async with c.uow() as uow:
        return await courses.list_courses(
            uow=uow, principal=user, page=page, page_size=page_size, q=q, category=category, mine=mine
        )


handler = lambda_handler(router)
