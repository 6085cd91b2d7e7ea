"""GET /ai/conversations/{conversation_id}: one of the caller's assistant conversations, every turn."""

import uuid

from fastapi import APIRouter

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.schemas import ConversationDetail
from smartcourse.services import conversations

router = APIRouter(tags=["assistant"])


@router.get("/ai/conversations/{conversation_id:uuid}", response_model=ConversationDetail)
async def ai_get_conversation(conversation_id: uuid.UUID, user: CurrentUser, c: ContainerDep) -> ConversationDetail:
    async with c.uow() as uow:
        return await conversations.read_mine(
            uow=uow,
            principal=user,
            keep_days=c.settings.assistant_history_days,
            conversation_id=conversation_id,
        )


handler = lambda_handler(router)
