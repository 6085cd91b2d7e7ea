"""GET /enrollments/{enrollment_id}: status, progress and the enrollment workflow's steps."""

import uuid

from fastapi import APIRouter

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.schemas import EnrollmentDetail
from smartcourse.services import learning

router = APIRouter(tags=["enrollments"])


@router.get("/enrollments/{enrollment_id:uuid}", response_model=EnrollmentDetail)
async def get_enrollment(enrollment_id: uuid.UUID, user: CurrentUser, c: ContainerDep) -> EnrollmentDetail:
    return await learning.detail(container=c, principal=user, enrollment_id=enrollment_id)


handler = lambda_handler(router)
