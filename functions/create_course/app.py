"""POST /courses: an instructor creates a draft course."""

from fastapi import APIRouter, Response

from smartcourse.api.app import lambda_handler
from smartcourse.api.created import LOCATION, created_at
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.api.idempotency import REPLAYED_HEADER, IdempotencyKey, claim
from smartcourse.schemas import CourseDetail, CourseIn
from smartcourse.services import courses

router = APIRouter(tags=["courses"])


@router.post(
    "/courses",
    status_code=201,
    response_model=CourseDetail,
    responses={201: {"headers": {**LOCATION, **REPLAYED_HEADER}}},
)
async def create_course(
    body: CourseIn, user: CurrentUser, c: ContainerDep, response: Response, idempotency_key: IdempotencyKey = None
) -> CourseDetail | Response:
    async with c.uow() as uow:
        keyed = await claim(
            uow, user, idempotency_key, "POST /courses", body, keep_hours=c.settings.idempotency_key_hours
        )
        if keyed.earlier is not None:
            return keyed.replay()
        course = await courses.create_course(uow=uow, principal=user, data=body, documents=c.documents)
        created_at(response, f"/courses/{course.id}")
        await keyed.answer(201, course, response)
    return course


handler = lambda_handler(router)
