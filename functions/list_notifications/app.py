"""GET /notifications: the caller's notifications, newest first."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.schemas import NotificationPublic
from smartcourse.services import notifications

router = APIRouter(tags=["notifications"])


@router.get("/notifications", response_model=list[NotificationPublic])
async def list_notifications(
    user: CurrentUser,
    c: ContainerDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    before: Annotated[datetime | None, Query(description="page back: only notifications created before this")] = None,
) -> list[NotificationPublic]:
    async with c.uow() as uow:
        return await notifications.list_notifications(uow=uow, principal=user, limit=limit, before=before)


handler = lambda_handler(router)
