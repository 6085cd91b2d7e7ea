"""GET /courses/{course_id}: a course with its modules and lessons in order (no quiz answers for students)."""

import uuid

from fastapi import APIRouter

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, OptionalUser
from smartcourse.schemas import CourseDetail
from smartcourse.services import courses

router = APIRouter(tags=["courses"])


@router.get("/courses/{course_id}", response_model=CourseDetail, response_model_exclude_none=True)
async def get_course(course_id: uuid.UUID, user: OptionalUser, c: ContainerDep) -> CourseDetail:
    async with c.uow() as uow:
        return await courses.get_course(uow=uow, documents=c.documents, principal=user, course_id=course_id)


handler = lambda_handler(router)
