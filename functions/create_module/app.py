"""POST /courses/{course_id}/modules: add a module (owner or admin)."""

import uuid

from fastapi import APIRouter, Response

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.api.idempotency import REPLAYED_HEADER, IdempotencyKey, claim
from smartcourse.schemas import ModuleIn, ModulePublic
from smartcourse.services import courses

router = APIRouter(tags=["modules"])


@router.post(
    "/courses/{course_id:uuid}/modules",
    status_code=201,
    responses={201: {"headers": REPLAYED_HEADER}},
    response_model=ModulePublic,
    description="Adds a module at the end of the course, or at `position`. The answer has no `Location`: a module "
    "has no GET of its own (`GET /courses/{course_id}` shows it); `PUT` and `DELETE` address it at "
    "`/courses/{course_id}/modules/{id}`.",
)
async def create_module(
    course_id: uuid.UUID, body: ModuleIn, user: CurrentUser, c: ContainerDep, idempotency_key: IdempotencyKey = None
) -> ModulePublic | Response:
    route = f"POST /courses/{course_id}/modules"
    async with c.uow() as uow:
        keyed = await claim(uow, user, idempotency_key, route, body, keep_hours=c.settings.idempotency_key_hours)
        if keyed.earlier is not None:
            return keyed.replay()
        module = await courses.add_module(uow=uow, principal=user, course_id=course_id, data=body)
        await keyed.answer(201, module)
    return module


handler = lambda_handler(router)
