"""GET /courses/facets: the catalogue's categories, levels and tags, with how many live courses each finds (cached)."""

from fastapi import APIRouter, Request, Response

from smartcourse.api.app import lambda_handler
from smartcourse.api.caching import CONDITIONAL, cached_json
from smartcourse.api.deps import ContainerDep
from smartcourse.schemas import CourseFacets
from smartcourse.services import courses

router = APIRouter(tags=["courses"])


@router.get("/courses/facets", response_model=CourseFacets, responses=CONDITIONAL)
async def course_facets(request: Request, c: ContainerDep) -> CourseFacets | Response:
    """A filter sidebar's options: each category, level and tag of the public catalogue (spelled as most of its
    courses spell it; the filters of `GET /courses` and `GET /search` match any case), with its number of live
    courses, most used first."""
    return cached_json(request, await courses.facets(c))


handler = lambda_handler(router)
