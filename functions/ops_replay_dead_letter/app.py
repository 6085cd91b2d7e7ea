"""POST /ops/dead-letters/{dead_letter_id}/replay: apply a dead-lettered event (or task) again, once (admin)."""

import uuid
from typing import Any

from fastapi import APIRouter

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.consumers import registry
from smartcourse.services import operations
from smartcourse.tasks import app as celery_app
from smartcourse.tasks import ensure_configured

router = APIRouter(tags=["operations"])


def send_task(name: str, args: list[Any], kwargs: dict[str, Any]) -> None:
    ensure_configured(celery_app).send_task(name, args=args, kwargs=kwargs)


@router.post("/ops/dead-letters/{dead_letter_id:uuid}/replay")
async def ops_replay_dead_letter(dead_letter_id: uuid.UUID, user: CurrentUser, c: ContainerDep) -> dict[str, Any]:
    return await operations.replay_dead_letter(
        sessionmaker=c.sessionmaker,
        principal=user,
        dead_letter_id=dead_letter_id,
        consumers=registry(),
        send_task=send_task,
    )


handler = lambda_handler(router)
