"""GET /ops/workflows: workflow runs by outcome, with the failing step, error and trace id (admin)."""

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import AfterValidator

from smartcourse.api.app import lambda_handler, refuse_unknown_query
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.schemas import INSTANT_NOTE
from smartcourse.services import operations

router = APIRouter(tags=["operations"], dependencies=[Depends(refuse_unknown_query)])


@router.get("/ops/workflows")
async def ops_workflows(
    user: CurrentUser,
    c: ContainerDep,
    status: Annotated[
        str,
        AfterValidator(operations.workflow_status_filter),  # a bad one: 422 validation_error, as /ops/tasks says
        Query(
            max_length=100,
            description="failed (failed and not resolved by a later success of its subject, or still retrying "
            "after a failure), resolved, retrying, running, completed, canceled or all; comma-separated",
            json_schema_extra={"pattern": operations.WORKFLOW_STATUS_PATTERN},
        ),
    ] = "failed",
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
