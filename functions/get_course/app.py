"""GET /courses/{course_id}: the course; bodies for enrolled students, owner and admin; else the outline."""

import uuid
from collections.abc import Awaitable, Callable

from fastapi import APIRouter

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, OptionalUser
from smartcourse.schemas import CourseDetail
from smartcourse.services import catalog_cache, courses

router = APIRouter(tags=["courses"])


@router.get("/courses/{course_id}", response_model=CourseDetail, response_model_exclude_none=True)
async def get_course(course_id: uuid.UUID, user: OptionalUser, c: ContainerDep) -> CourseDetail:
    async def view_cache(view: str, compute: Callable[[], Awaitable[CourseDetail]]) -> CourseDetail:
        return await catalog_cache.cached_course(c, course_id=course_id, view=view, model=CourseDetail, compute=compute)

    async with c.uow() as uow:
        return await courses.get_course(
            uow=uow, documents=c.documents, principal=user, course_id=course_id, view_cache=view_cache
        )


handler = lambda_handler(router)
