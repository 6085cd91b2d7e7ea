"""POST /courses/{course_id}/publish/cancel: stop the course's running publish; the course is back at once."""

import uuid

from fastapi import APIRouter

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.schemas import CoursePublishCanceled
from smartcourse.services import publishing

router = APIRouter(tags=["courses"])


@router.post("/courses/{course_id:uuid}/publish/cancel", response_model=CoursePublishCanceled)
async def cancel_publish(course_id: uuid.UUID, user: CurrentUser, c: ContainerDep) -> CoursePublishCanceled:
    """The course returns to its live version (or the draft) and may be edited, deleted or archived; the run ends
    `canceled` once its workflow has stopped its step and dropped what the version built (GET /workflows/{id})."""
    return await publishing.cancel_publish(container=c, principal=user, course_id=course_id)


handler = lambda_handler(router)
