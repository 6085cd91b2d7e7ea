"""GET /courses/{course_id}/availability: the seats now (capacity, seats left, waitlist; whoever sees the course)."""

import uuid

from fastapi import APIRouter

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import PUBLIC_OR_SIGNED, ContainerDep, OptionalUser
from smartcourse.schemas import CourseAvailability
from smartcourse.services import courses

router = APIRouter(tags=["courses"])


@router.get("/courses/{course_id:uuid}/availability", response_model=CourseAvailability, openapi_extra=PUBLIC_OR_SIGNED)
async def course_availability(course_id: uuid.UUID, user: OptionalUser, c: ContainerDep) -> CourseAvailability:
    """Whether a student can enroll now and how many seats are left, read fresh from the database (the catalogue's
    cached answers say nothing of seats: they may be minutes old). Anyone for a live course; the owner and admins
    for any; its students for an archived one (`closed`); 404 `course_not_found` for everyone else. `state` says
    what `POST /enrollments` would do now for a student who meets the prerequisites; the admission itself decides."""
    async with c.uow() as uow:
        return await courses.availability(uow=uow, principal=user, course_id=course_id)


handler = lambda_handler(router)
