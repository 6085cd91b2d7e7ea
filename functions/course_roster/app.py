"""GET /courses/{course_id}/enrollments: the course's enrollments with each student's name, found and sorted by it
(owner or admin)."""

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from smartcourse.api.app import lambda_handler, refuse_unknown_query
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.api.filters import FILLED
from smartcourse.api.paging import DEFAULT_PAGE_SIZE, Page, PageSize
from smartcourse.schemas import INSTANT_NOTE, UPDATED_SINCE, EnrollmentStatus, RosterPage
from smartcourse.services import enrollment

router = APIRouter(tags=["enrollments"], dependencies=[Depends(refuse_unknown_query)])


@router.get("/courses/{course_id:uuid}/enrollments", response_model=RosterPage)
async def course_roster(
    course_id: uuid.UUID,
    user: CurrentUser,
    c: ContainerDep,
    status: EnrollmentStatus | None = None,
    q: Annotated[
        str | None,
        Query(max_length=200, pattern=FILLED, description="part of the student's name (not blank; any case or accent)"),
    ] = None,
    sort: Annotated[
        Literal["newest", "name"] | None,
        Query(description="newest first (the default; the waitlist in its order) or by the student's name"),
    ] = None,
    updated_since: Annotated[datetime | None, Query(description=UPDATED_SINCE + INSTANT_NOTE)] = None,
    page: Page = 1,
    page_size: PageSize = DEFAULT_PAGE_SIZE,
) -> RosterPage:
    async with c.uow() as uow:
        return await enrollment.roster(
            uow=uow,
            principal=user,
            course_id=course_id,
            status=status,
            q=q,
            sort=sort,
            updated_since=updated_since,
            page=page,
            page_size=page_size,
            documents=c.documents,
        )


handler = lambda_handler(router)
