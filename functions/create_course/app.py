"""POST /courses: an instructor creates a draft course."""

from fastapi import APIRouter

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.schemas import CourseDetail, CourseIn
from smartcourse.services import courses

router = APIRouter(tags=["courses"])


@router.post("/courses", status_code=201, response_model=CourseDetail)
async def create_course(body: CourseIn, user: CurrentUser, c: ContainerDep) -> CourseDetail:
    async with c.uow() as uow:
        return await courses.create_course(uow=uow, principal=user, data=body)


handler = lambda_handler(router)
