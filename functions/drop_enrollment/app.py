"""DELETE /enrollments/{enrollment_id}: drop (the student, its instructor or an admin); the seat goes to the queue."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.schemas import EnrollmentPublic
from smartcourse.services import learning

router = APIRouter(tags=["enrollments"])


@router.delete("/enrollments/{enrollment_id:uuid}", response_model=EnrollmentPublic)
async def drop_enrollment(
    enrollment_id: uuid.UUID,
    user: CurrentUser,
    c: ContainerDep,
    reason: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=500,
            # One line, as every label: no controls, line separators or bidi overrides, which spoofed the history
            # and the notice a removed student reads (explore13 F11).
            pattern=r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]*$",
            description="why (kept in the history; the instructor or an admin removing a student: told to the student)",
        ),
    ] = None,
) -> EnrollmentPublic:
    return await learning.drop(container=c, principal=user, enrollment_id=enrollment_id, reason=reason)


handler = lambda_handler(router)
