"""GET /analytics/completions: completions per period, their average time to complete, the completion rate."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from smartcourse.api.app import lambda_handler, refuse_unknown_query
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.schemas import CompletionSeries, IsoDay
from smartcourse.services import analytics

router = APIRouter(tags=["analytics"], dependencies=[Depends(refuse_unknown_query)])


@router.get("/analytics/completions", response_model=CompletionSeries)
async def analytics_completions(
    user: CurrentUser,
    c: ContainerDep,
    interval: Literal["day", "week", "month"] = "day",
    from_: Annotated[
        IsoDay | None, Query(alias="from", description="first UTC day, YYYY-MM-DD (default: 29 days before to)")
    ] = None,
    to: Annotated[IsoDay | None, Query(description="last UTC day, inclusive (default: today)")] = None,
) -> dict[str, Any]:
    async with c.uow() as uow:
        return await analytics.completion_series(uow=uow, principal=user, interval=interval, start=from_, end=to)


handler = lambda_handler(router)
