"""GET /ops/workflows: workflow runs by outcome, with the failing step, error and trace id (admin)."""

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from smartcourse.api.app import lambda_handler, refuse_unknown_query
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.api.filters import WorkflowStatusFilter
from smartcourse.schemas import INSTANT_NOTE
from smartcourse.services import operations

router = APIRouter(tags=["operations"], dependencies=[Depends(refuse_unknown_query)])


@router.get("/ops/workflows")
async def ops_workflows(
    user: CurrentUser,
    c: ContainerDep,
    status: WorkflowStatusFilter = "failed",
    kind: Annotated[
        Literal["course_publishing", "enrollment", "certificate"] | None,
        Query(description="the runs of one kind only (another value: 422 validation_error, as for status)"),
    ] = None,
    subject: Annotated[
        str | None,
        Query(
            max_length=200,
            pattern=r"^[^\x00]*$",
            description="what the run is about: course:<id> or enrollment:<id>",
        ),
    ] = None,
    since: Annotated[
        datetime | None, Query(description="only runs that changed at or after this time" + INSTANT_NOTE)
    ] = None,
    limit: Annotated[int, Query(ge=1, le=operations.MAX_LIMIT)] = 50,
) -> dict[str, Any]:
    async with c.uow() as uow:
        return await operations.list_workflows(
            uow=uow, principal=user, status=status, kind=kind, subject=subject, since=since, limit=limit
        )


handler = lambda_handler(router)
