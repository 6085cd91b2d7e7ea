"""POST /courses/{course_id}/modules/{module_id}/lessons: add a text, video or quiz lesson."""

import uuid

from fastapi import APIRouter, Response

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.api.idempotency import REPLAYED_HEADER, IdempotencyKey, claim
from smartcourse.schemas import LessonIn, LessonPublic
from smartcourse.services import courses

router = APIRouter(tags=["lessons"])


@router.post(
    "/courses/{course_id:uuid}/modules/{module_id:uuid}/lessons",
    status_code=201,
    responses={201: {"headers": REPLAYED_HEADER}},
    response_model=LessonPublic,
    description="Adds a lesson at the end of the module, or at `position`. The answer has no `Location`: a "
    "lesson has no GET of its own (`GET /courses/{course_id}` shows it); `PUT` and `DELETE` address it at "
    "`/courses/{course_id}/modules/{module_id}/lessons/{id}`.",
)
async def create_lesson(
    course_id: uuid.UUID,
    module_id: uuid.UUID,
    body: LessonIn,
    user: CurrentUser,
    c: ContainerDep,
    idempotency_key: IdempotencyKey = None,
) -> LessonPublic | Response:
    route = f"POST /courses/{course_id}/modules/{module_id}/lessons"
    async with c.uow() as uow:
        keyed = await claim(uow, user, idempotency_key, route, body, keep_hours=c.settings.idempotency_key_hours)
        if keyed.earlier is not None:
            return keyed.replay()
        lesson = await courses.add_lesson(
            uow=uow,
            documents=c.documents,
            principal=user,
            course_id=course_id,
            module_id=module_id,
            data=body,
        )
        await keyed.answer(201, lesson)
    return lesson


handler = lambda_handler(router)
