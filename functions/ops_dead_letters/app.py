"""GET /ops/dead-letters: events the consumers could not apply and tasks out of retries (admin)."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from smartcourse.api.app import lambda_handler, refuse_unknown_query
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.api.filters import DeadLetterStatusFilter
from smartcourse.consumers import registry
from smartcourse.schemas import INSTANT_NOTE
from smartcourse.services import operations

router = APIRouter(tags=["operations"], dependencies=[Depends(refuse_unknown_query)])


@router.get("/ops/dead-letters")
async def ops_dead_letters(
    user: CurrentUser,
    c: ContainerDep,
    status: DeadLetterStatusFilter = "pending",
    consumer: Annotated[
        str | None,
        Query(max_length=100, pattern=r"^[^\x00]*$", description="analytics, recommendations, celery:<task>..."),
    ] = None,
    since: Annotated[
        datetime | None, Query(description="only dead letters written at or after this time" + INSTANT_NOTE)
    ] = None,
    limit: Annotated[int, Query(ge=1, le=operations.MAX_LIMIT)] = 50,
) -> dict[str, Any]:
    async with c.uow() as uow:
        return await operations.list_dead_letters(
            uow=uow,
            principal=user,
            status=status,
            consumer=consumer,
            since=since,
            limit=limit,
            consumers=[each.name for each in registry()],
        )


handler = lambda_handler(router)
