"""GET /courses: the catalogue, paginated, filtered by text, category, level, tags and instructor (cached in Redis)."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from smartcourse.api.app import lambda_handler
from smartcourse.api.caching import CONDITIONAL, cached_json
from smartcourse.api.deps import PUBLIC_OR_SIGNED, ContainerDep, SignedCaller
from smartcourse.api.filters import CategoryFilter, CourseStatusesFilter, TagsFilter, course_statuses
from smartcourse.schemas import CoursePage, LevelFilter
from smartcourse.services import courses, search
from smartcourse.services.catalog_cache import CachedJson

router = APIRouter(tags=["courses"])


@router.get("/courses", response_model=CoursePage, openapi_extra=PUBLIC_OR_SIGNED, responses=CONDITIONAL)
async def list_courses(
    request: Request,
    c: ContainerDep,
    caller: SignedCaller,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
    q: Annotated[
        str | None,
        Query(
            max_length=200,
            pattern=r"^[^\x00]*$",
            description="each word inside the title or the description (any case, accents folded, any order); a "
            "ranked search of the content too: GET /search",
        ),
    ] = None,
    category: CategoryFilter = None,
    level: Annotated[
        LevelFilter, Query(description="beginner, intermediate or advanced (any case); blank: any")
    ] = None,
    tags: TagsFilter = None,
    mine: bool = False,
    instructor_id: Annotated[
        uuid.UUID | None,
        Query(
            description="only this instructor's courses (a UUID, else 422); an id with no course: an empty page. "
            "`GET /instructors/{id}` embeds the newest 20 and `courses_total`: list the rest here"
        ),
    ] = None,
    status: CourseStatusesFilter = None,
) -> CoursePage | Response:
    tag_list = search.tag_filter(tags)
    result = await courses.catalogue_page(
        c,
        caller=caller,
        page=page,
        page_size=page_size,
        q=q,
        category=category,
        level=level,
        tags=tag_list,
        mine=mine,
        instructor_id=instructor_id,
        statuses=course_statuses(status),
    )
    return cached_json(request, result) if isinstance(result, CachedJson) else result


handler = lambda_handler(router)
