"""GET /analytics/dashboard: the platform metrics as the event consumers counted them (admin)."""

from typing import Any

from fastapi import APIRouter, Depends

from smartcourse.api.app import lambda_handler, refuse_unknown_query
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.schemas import AnalyticsDashboard
from smartcourse.services import analytics

router = APIRouter(tags=["analytics"], dependencies=[Depends(refuse_unknown_query)])


@router.get("/analytics/dashboard", response_model=AnalyticsDashboard)
async def analytics_dashboard(user: CurrentUser, c: ContainerDep) -> dict[str, Any]:
    async with c.uow() as uow:
        return await analytics.dashboard(uow=uow, principal=user)


handler = lambda_handler(router)
