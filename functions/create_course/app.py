"""POST /courses: an instructor creates a draft course."""

from fastapi import APIRouter, Response

from smartcourse.api.app import lambda_handler
from smartcourse.api.created import LOCATION, created_at
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.schemas import CourseDetail, CourseIn
from smartcourse.services import courses

router = APIRouter(tags=["courses"])


@router.post("/courses", status_code=201, response_model=CourseDetail, responses={201: {"headers": LOCATION}})
async def create_course(body: CourseIn, user: CurrentUser, c: ContainerDep, response: Response) -> CourseDetail:
    async with c.uow() as uow:
        course = await courses.create_course(uow=uow, principal=user, data=body)
    created_at(response, f"/courses/{course.id}")
    return course


handler = lambda_handler(router)
