"""GET /analytics/enrollments: new enrollments (admissions) per day, ISO week or month over a range (admin)."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from smartcourse.api.app import lambda_handler, refuse_unknown_query
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.schemas import EnrollmentSeries, IsoDay
from smartcourse.services import analytics

router = APIRouter(tags=["analytics"], dependencies=[Depends(refuse_unknown_query)])


@router.get("/analytics/enrollments", response_model=EnrollmentSeries)
async def analytics_enrollments(
    user: CurrentUser,
    c: ContainerDep,
    interval: Literal["day", "week", "month"] = "day",
    from_: Annotated[
        IsoDay | None, Query(alias="from", description="first UTC day, YYYY-MM-DD (default: 29 days before to)")
    ] = None,
    to: Annotated[IsoDay | None, Query(description="last UTC day, inclusive (default: today)")] = None,
) -> dict[str, Any]:
    async with c.uow() as uow:
        return await analytics.enrollment_series(uow=uow, principal=user, interval=interval, start=from_, end=to)


handler = lambda_handler(router)
