"""GET /courses/{course_id}/search: passages of the course's live version (enrolled students, owner, admin)."""

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.schemas import ContentSearchResult
from smartcourse.services import search

router = APIRouter(tags=["search"])


@router.get("/courses/{course_id:uuid}/search", response_model=ContentSearchResult)
async def search_course(
    course_id: uuid.UUID,
    user: CurrentUser,
    c: ContainerDep,
    q: Annotated[str, Query(min_length=1, max_length=500, pattern=r"^[^\x00]*[^\x00\s][^\x00]*$")],
    k: Annotated[int, Query(ge=1, le=50)] = 10,
    mode: Literal["hybrid", "vector", "keyword"] = "hybrid",
) -> ContentSearchResult:
    return await search.search_course(c, principal=user, course_id=course_id, q=q, k=k, mode=mode)


handler = lambda_handler(router)
