"""POST /enrollments: enroll the calling student, or an admin a named one (201 new, 200 existing, 202 waitlisted)."""

from typing import Annotated

from fastapi import APIRouter, Header, Response

from smartcourse.api.app import lambda_handler
from smartcourse.api.created import LOCATION, created_at
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.errors import DomainError
from smartcourse.metrics import ENROLLMENT_REQUESTS
from smartcourse.schemas import EnrollIn, EnrollmentPublic
from smartcourse.services import learning

router = APIRouter(tags=["enrollments"])


@router.post(
    "/enrollments",
    status_code=201,
    response_model=EnrollmentPublic,
    responses={
        201: {"headers": LOCATION},
        200: {"model": EnrollmentPublic, "description": "already enrolled (or the same Idempotency-Key again)"},
        202: {
            "model": EnrollmentPublic,
            "description": "waitlisted: `position` is the place in the queue",
            "headers": LOCATION,
        },
    },
)
async def enroll(
    body: EnrollIn,
    user: CurrentUser,
    c: ContainerDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200, pattern=r"^[\x21-\x7e]+$")] = None,
) -> EnrollmentPublic:
    try:
        result, created = await learning.enroll(
            container=c,
            principal=user,
            course_id=body.course_id,
            idempotency_key=idempotency_key,
            student_id=body.student_id,
        )
    except DomainError as exc:  # course full, prerequisites not met, not published, ...
        ENROLLMENT_REQUESTS.labels("refused", exc.code).inc()
        raise
    outcome = "repeat" if not created else "waitlisted" if result.status == "waitlisted" else "admitted"
    ENROLLMENT_REQUESTS.labels(outcome, "").inc()
    if not created:
        response.status_code = 200
    else:
        created_at(response, f"/enrollments/{result.id}")
        if result.status == "waitlisted":
            response.status_code = 202
    return result


handler = lambda_handler(router)
