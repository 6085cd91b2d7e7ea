"""GET /courses/{course_id}: the course; bodies for enrolled students, owner and admin; else the outline."""

import uuid

from fastapi import APIRouter, Request, Response

from smartcourse.api.app import lambda_handler
from smartcourse.api.caching import CONDITIONAL, cached_json
from smartcourse.api.deps import PUBLIC_OR_SIGNED, ContainerDep, SignedCaller
from smartcourse.schemas import CourseDetail
from smartcourse.services import courses
from smartcourse.services.catalog_cache import CachedJson

router = APIRouter(tags=["courses"])


@router.get(
    "/courses/{course_id:uuid}", response_model=CourseDetail, openapi_extra=PUBLIC_OR_SIGNED, responses=CONDITIONAL
)
async def get_course(
    course_id: uuid.UUID, request: Request, caller: SignedCaller, c: ContainerDep
) -> CourseDetail | Response:
    result = await courses.read_course(c, caller=caller, course_id=course_id)
    return cached_json(request, result) if isinstance(result, CachedJson) else result


handler = lambda_handler(router)
