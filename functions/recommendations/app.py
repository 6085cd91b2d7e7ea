"""GET /recommendations: the calling student's next courses, each with its reason (students only)."""

from typing import Annotated

from fastapi import APIRouter, Query

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.schemas import RecommendationList
from smartcourse.services import recommendations

router = APIRouter(tags=["recommendations"])


@router.get("/recommendations", response_model=RecommendationList)
async def get_recommendations(
    user: CurrentUser, c: ContainerDep, k: Annotated[int, Query(ge=1, le=50)] = 10
) -> RecommendationList:
    return await recommendations.recommendations(c, principal=user, k=k)


handler = lambda_handler(router)
