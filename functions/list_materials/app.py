"""GET /courses/{course_id}/materials: the course's materials (owner/admin: all; enrolled students: the live ones).

A page at a time (docs/api.md, "Pagination")."""

import uuid

from fastapi import APIRouter, Depends, Request, Response

from smartcourse.api.app import lambda_handler, refuse_unknown_query
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.api.paging import DEFAULT_PAGE_SIZE, PAGE_HEADERS, Page, PageSize, set_page_headers
from smartcourse.schemas import MaterialList
from smartcourse.services import materials

router = APIRouter(tags=["materials"], dependencies=[Depends(refuse_unknown_query)])


@router.get(
    "/courses/{course_id:uuid}/materials", response_model=MaterialList, responses={200: {"headers": PAGE_HEADERS}}
)
async def list_materials(
    course_id: uuid.UUID,
    user: CurrentUser,
    c: ContainerDep,
    request: Request,
    response: Response,
    page: Page = 1,
    page_size: PageSize = DEFAULT_PAGE_SIZE,
) -> MaterialList:
    async with c.uow() as uow:
        found = await materials.list_materials(
            uow=uow, documents=c.documents, principal=user, course_id=course_id, page=page, page_size=page_size
        )
    set_page_headers(request, response, total=found.total, page=page, page_size=page_size)
    return found


handler = lambda_handler(router)
