"""POST /courses/{course_id}/publish: start the durable publishing workflow (202)."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from smartcourse.api.app import lambda_handler
from smartcourse.api.created import LOCATION, created_at
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.schemas import WorkflowStarted
from smartcourse.services import publishing

router = APIRouter(tags=["courses"])


@router.post(
    "/courses/{course_id:uuid}/publish",
    status_code=202,
    response_model=WorkflowStarted,
    responses={202: {"headers": {"Location": {**LOCATION["Location"], "description": "the run: GET it to follow"}}}},
)
async def publish_course(
    course_id: uuid.UUID,
    user: CurrentUser,
    c: ContainerDep,
    response: Response,
    force: Annotated[
        bool, Query(description="publish a live course even when nothing changed (else 409 `no_changes`)")
    ] = False,
) -> WorkflowStarted:
    started = await publishing.start_publish(container=c, principal=user, course_id=course_id, force=force)
    await c.invalidate_course_cache(course_id)
    created_at(response, f"/workflows/{started.workflow_id}")
    return started


handler = lambda_handler(router)
