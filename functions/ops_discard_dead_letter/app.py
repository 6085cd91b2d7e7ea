"""POST /ops/dead-letters/{dead_letter_id}/discard: set a dead letter aside, unreplayed, with a reason (admin)."""

import uuid
from typing import Any

from fastapi import APIRouter

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.schemas import DiscardIn
from smartcourse.services import operations

router = APIRouter(tags=["operations"])


@router.post("/ops/dead-letters/{dead_letter_id:uuid}/discard")
async def ops_discard_dead_letter(
    dead_letter_id: uuid.UUID, body: DiscardIn, user: CurrentUser, c: ContainerDep
) -> dict[str, Any]:
    return await operations.discard_dead_letter(
        sessionmaker=c.sessionmaker, principal=user, dead_letter_id=dead_letter_id, reason=body.reason
    )


handler = lambda_handler(router)
