"""GET /analytics/reconcile: recompute the metrics from the source tables and report the drift (admin)."""

from typing import Any

from fastapi import APIRouter, Depends

from smartcourse.api.app import lambda_handler, refuse_unknown_query
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.schemas import Reconcile
from smartcourse.services import analytics

router = APIRouter(tags=["analytics"], dependencies=[Depends(refuse_unknown_query)])


@router.get("/analytics/reconcile", response_model=Reconcile)
async def analytics_reconcile(user: CurrentUser, c: ContainerDep) -> dict[str, Any]:
    async with c.uow() as uow:
        return await analytics.reconcile(uow=uow, principal=user)


handler = lambda_handler(router)
