"""GET /courses/{course_id}/search: passages of the course's live version (enrolled students, owner, admin)."""

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import AfterValidator

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.domain.text import as_indexed
from smartcourse.schemas import ContentSearchResult
from smartcourse.services import search

router = APIRouter(tags=["search"])


def _searchable(q: str) -> str:
    """`q` as the index has its text; one of only invisible characters (a zero-width space) is refused like one of
    only spaces, not answered with nothing found (explore25 F5)."""
    text = as_indexed(q).strip()
    if not text:
        raise ValueError("the query has no visible characters")
    return text


@router.get("/courses/{course_id:uuid}/search", response_model=ContentSearchResult)
async def search_course(
    course_id: uuid.UUID,
    user: CurrentUser,
    c: ContainerDep,
    q: Annotated[
        str, Query(min_length=1, max_length=500, pattern=r"^[^\x00]*[^\x00\s][^\x00]*$"), AfterValidator(_searchable)
    ],
    k: Annotated[int, Query(ge=1, le=50)] = 10,
    mode: Literal["hybrid", "vector", "keyword"] = "hybrid",
) -> ContentSearchResult:
    return await search.search_course(c, principal=user, course_id=course_id, q=q, k=k, mode=mode)


handler = lambda_handler(router)
