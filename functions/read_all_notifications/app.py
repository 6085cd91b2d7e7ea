"""POST /notifications/read-all: mark every unread notification of the caller read (idempotent)."""

from fastapi import APIRouter

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.schemas import NotificationsRead
from smartcourse.services import notifications

router = APIRouter(tags=["notifications"])


@router.post("/notifications/read-all", response_model=NotificationsRead)
async def read_all_notifications(user: CurrentUser, c: ContainerDep) -> NotificationsRead:
    async with c.uow() as uow:
        return await notifications.mark_all_read(uow=uow, principal=user)


handler = lambda_handler(router)
