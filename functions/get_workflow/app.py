"""GET /workflows/{workflow_id}: a workflow's status and steps, for the user who started it."""

from typing import Annotated

from fastapi import APIRouter, Path

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.schemas import WorkflowStatus
from smartcourse.services import publishing

router = APIRouter(tags=["workflows"])


@router.get("/workflows/{workflow_id}", response_model=WorkflowStatus)
async def get_workflow(
    workflow_id: Annotated[str, Path(max_length=200, pattern=r"^[A-Za-z0-9_.:-]+$")], user: CurrentUser, c: ContainerDep
) -> WorkflowStatus:
    return await publishing.workflow_status(container=c, principal=user, workflow_id=workflow_id)


handler = lambda_handler(router)
