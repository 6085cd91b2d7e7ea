"""GET /users/{user_id}/enrollments: one account's enrollments with progress and certificates (the account or an
admin)."""

import uuid

from fastapi import APIRouter, Depends, Request, Response

from smartcourse.api.app import lambda_handler, refuse_unknown_query
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.api.filters import CourseIdsFilter, StatusesFilter, course_ids, enrollment_statuses
from smartcourse.api.paging import DEFAULT_PAGE_SIZE, PAGE_HEADERS, Page, PageSize, set_page_headers
from smartcourse.schemas import MyCourse
from smartcourse.services import learning

router = APIRouter(tags=["users"], dependencies=[Depends(refuse_unknown_query)])


@router.get(
    "/users/{user_id:uuid}/enrollments", response_model=list[MyCourse], responses={200: {"headers": PAGE_HEADERS}}
)
async def user_enrollments(
    user_id: uuid.UUID,
    request: Request,
    response: Response,
    user: CurrentUser,
    c: ContainerDep,
    page: Page = 1,
    page_size: PageSize = DEFAULT_PAGE_SIZE,
    status: StatusesFilter = None,
    course_id: CourseIdsFilter = None,
) -> list[MyCourse]:
    """As `GET /enrollments/my-courses` answers the student: every course the account is or was in, newest first, with
    its percent and certificate; `status` filters. For an HR system's report of one employee (explore68 F4)."""
    items, total = await learning.course_cards(
        container=c,
        principal=user,
        page=page,
        page_size=page_size,
        statuses=enrollment_statuses(status),
        course_ids=course_ids(course_id),
        student_id=user_id,
    )
    set_page_headers(request, response, total=total, page=page, page_size=page_size)
    return items


handler = lambda_handler(router)
