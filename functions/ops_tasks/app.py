"""GET /ops/tasks: Celery task outcomes (failed, retrying, succeeded) with error and trace id (admin)."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from smartcourse.api.app import lambda_handler, refuse_unknown_query
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.api.filters import TaskStatusFilter
from smartcourse.schemas import INSTANT_NOTE
from smartcourse.services import operations

router = APIRouter(tags=["operations"], dependencies=[Depends(refuse_unknown_query)])


@router.get("/ops/tasks")
async def ops_tasks(
    user: CurrentUser,
    c: ContainerDep,
    status: TaskStatusFilter = "failed",
    task: Annotated[
        str | None, Query(max_length=200, pattern=r"^[^\x00]*$", description="e.g. notifications.send_email")
    ] = None,
    since: Annotated[
        datetime | None, Query(description="only outcomes recorded at or after this time" + INSTANT_NOTE)
    ] = None,
    limit: Annotated[int, Query(ge=1, le=operations.MAX_LIMIT)] = 50,
) -> dict[str, Any]:
    async with c.uow() as uow:
        return await operations.list_tasks(uow=uow, principal=user, status=status, task=task, since=since, limit=limit)


handler = lambda_handler(router)
