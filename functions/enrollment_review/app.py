"""GET /enrollments/{enrollment_id}/review: lessons and sections to revisit (the student, the owner, admins)."""

import uuid

from fastapi import APIRouter

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.schemas import EnrollmentReview
from smartcourse.services import recommendations

router = APIRouter(tags=["recommendations"])


@router.get("/enrollments/{enrollment_id:uuid}/review", response_model=EnrollmentReview)
async def enrollment_review(enrollment_id: uuid.UUID, user: CurrentUser, c: ContainerDep) -> EnrollmentReview:
    return await recommendations.review(c, principal=user, enrollment_id=enrollment_id)


handler = lambda_handler(router)
