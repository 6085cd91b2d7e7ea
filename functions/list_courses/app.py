"""GET /courses: the catalogue, paginated, filtered by text, category, level and tags (cached in Redis)."""

from typing import Annotated

from fastapi import APIRouter, Query

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, OptionalUser
from smartcourse.schemas import CoursePage
from smartcourse.services import catalog_cache, courses

router = APIRouter(tags=["courses"])


@router.get("/courses", response_model=CoursePage)
async def list_courses(
    c: ContainerDep,
    user: OptionalUser,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
    q: Annotated[str | None, Query(max_length=200, pattern=r"^[^\x00]*$")] = None,
    category: Annotated[str | None, Query(max_length=100, pattern=r"^[^\x00]*$")] = None,
    level: Annotated[str | None, Query(max_length=20, pattern=r"^[^\x00]*$")] = None,
    tags: Annotated[list[str] | None, Query(max_length=20)] = None,
    mine: bool = False,
) -> CoursePage:
    tag_list = sorted({t.strip() for raw in tags or [] for t in raw.replace("\x00", "").split(",") if t.strip()})

    async def compute() -> CoursePage:
        async with c.uow() as uow:
            return await courses.list_courses(
                uow=uow,
                principal=user,
                page=page,
                page_size=page_size,
                q=q,
                category=category,
                level=level,
                tags=tag_list,
                mine=mine,
            )

    if user is not None and (user.is_admin or user.role == "instructor"):
        return await compute()  # their view includes drafts: not the shared catalogue page
    params = {"q": q, "category": category, "level": level, "tags": tag_list, "page": page, "size": page_size}
    return await catalog_cache.cached_page(c, kind="list", params=params, model=CoursePage, compute=compute)


handler = lambda_handler(router)
