"""GET /enrollments/my-courses: the calling student's enrollments with progress."""

from fastapi import APIRouter

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.schemas import EnrollmentDetail
from smartcourse.services import enrollment

router = APIRouter(tags=["enrollments"])


@router.get("/enrollments/my-courses", response_model=list[EnrollmentDetail])
async def my_courses(user: CurrentUser, c: ContainerDep) -> list[EnrollmentDetail]:
    async with c.uow() as uow:
        return await enrollment.my_courses(uow=uow, documents=c.documents, principal=user)


handler = lambda_handler(router)
