"""GET /ai/interactions/{interaction_id}: one assistant interaction and, if it failed, why (its caller, the course's
owner, admins)."""

import uuid

from fastapi import APIRouter

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.assistant.schemas import InteractionOut
from smartcourse.services import assistant

router = APIRouter(tags=["assistant"])


@router.get("/ai/interactions/{interaction_id:uuid}", response_model=InteractionOut)
async def ai_get_interaction(interaction_id: uuid.UUID, user: CurrentUser, c: ContainerDep) -> InteractionOut:
    return await assistant.get_interaction(c, principal=user, interaction_id=interaction_id)


handler = lambda_handler(router)
