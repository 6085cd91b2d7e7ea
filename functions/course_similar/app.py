"""GET /courses/{course_id}/similar: live courses near this one by content, co-enrollment and prerequisites (anyone)."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep
from smartcourse.schemas import RecommendationList
from smartcourse.services import recommendations

router = APIRouter(tags=["recommendations"])


@router.get("/courses/{course_id:uuid}/similar", response_model=RecommendationList)
async def course_similar(
    course_id: uuid.UUID, c: ContainerDep, k: Annotated[int, Query(ge=1, le=50)] = 10
) -> RecommendationList:
    return await recommendations.similar(c, course_id=course_id, k=k)


handler = lambda_handler(router)
