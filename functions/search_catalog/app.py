"""GET /search: published, ready courses ranked by their metadata and content, with highlights (anyone)."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from smartcourse.api.app import lambda_handler
from smartcourse.api.caching import CONDITIONAL, cached_json
from smartcourse.api.deps import ContainerDep
from smartcourse.api.filters import CategoryFilter, TagsFilter
from smartcourse.schemas import CatalogSearchPage, LevelFilter
from smartcourse.services import catalog_cache, search

router = APIRouter(tags=["search"])

Text = Annotated[str | None, Query(max_length=200, pattern=r"^[^\x00]*$")]


@router.get("/search", response_model=CatalogSearchPage, responses=CONDITIONAL)
async def search_catalog(
    request: Request,
    c: ContainerDep,
    q: Text = None,
    category: CategoryFilter = None,
    level: Annotated[
        LevelFilter, Query(description="beginner, intermediate or advanced (any case); blank: any")
    ] = None,
    tags: TagsFilter = None,
    instructor_id: Annotated[
        uuid.UUID | None, Query(description="only this instructor's courses (a UUID, else 422), as on GET /courses")
    ] = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    tag_list = search.tag_filter(tags)

    async def compute() -> CatalogSearchPage:
        async with c.uow() as uow:
            return await search.search_catalog(
                uow=uow,
                q=q,
                category=category,
                level=level,
                tags=tag_list,
                page=page,
                page_size=page_size,
                instructor_id=instructor_id,
            )

    params = {
        "q": q,
        "category": category,
        "level": level,
        "tags": tag_list,
        "instructor": str(instructor_id) if instructor_id else None,
        "page": page,
        "size": page_size,
    }
    return cached_json(request, await catalog_cache.cached_page(c, kind="search", params=params, compute=compute))


handler = lambda_handler(router)
