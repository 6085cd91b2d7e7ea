"""DELETE /enrollments/{enrollment_id}: drop (the student or an admin); the seat goes to the waitlist."""

import uuid

from fastapi import APIRouter

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.schemas import EnrollmentPublic
from smartcourse.services import learning

router = APIRouter(tags=["enrollments"])


@router.delete("/enrollments/{enrollment_id:uuid}", response_model=EnrollmentPublic)
async def drop_enrollment(enrollment_id: uuid.UUID, user: CurrentUser, c: ContainerDep) -> EnrollmentPublic:
    return await learning.drop(container=c, principal=user, enrollment_id=enrollment_id)


handler = lambda_handler(router)
