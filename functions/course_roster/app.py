"""GET /courses/{course_id}/enrollments: the course's enrollments with each student's name (owner or admin)."""

import uuid

from fastapi import APIRouter, Depends

from smartcourse.api.app import lambda_handler, refuse_unknown_query
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.api.paging import DEFAULT_PAGE_SIZE, Page, PageSize
from smartcourse.schemas import EnrollmentStatus, RosterPage
from smartcourse.services import enrollment

router = APIRouter(tags=["enrollments"], dependencies=[Depends(refuse_unknown_query)])


@router.get("/courses/{course_id:uuid}/enrollments", response_model=RosterPage)
async def course_roster(
    course_id: uuid.UUID,
    user: CurrentUser,
    c: ContainerDep,
    status: EnrollmentStatus | None = None,
    page: Page = 1,
    page_size: PageSize = DEFAULT_PAGE_SIZE,
) -> RosterPage:
    async with c.uow() as uow:
        return await enrollment.roster(
            uow=uow,
            principal=user,
            course_id=course_id,
            status=status,
            page=page,
            page_size=page_size,
            documents=c.documents,
        )


handler = lambda_handler(router)
