"""POST /notifications/{notification_id}/read: mark one of the caller's notifications read (idempotent)."""

import uuid

from fastapi import APIRouter

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.schemas import NotificationPublic
from smartcourse.services import notifications

router = APIRouter(tags=["notifications"])


@router.post("/notifications/{notification_id:uuid}/read", response_model=NotificationPublic)
async def read_notification(notification_id: uuid.UUID, user: CurrentUser, c: ContainerDep) -> NotificationPublic:
    async with c.uow() as uow:
        return await notifications.mark_read(uow=uow, principal=user, notification_id=notification_id)


handler = lambda_handler(router)
