"""GET /ai/conversations: the caller's assistant conversations, most recent first; `course_id` filters."""

import uuid

from fastapi import APIRouter, Depends

from smartcourse.api.app import lambda_handler, refuse_unknown_query
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.api.paging import DEFAULT_PAGE_SIZE, Page, PageSize
from smartcourse.schemas import ConversationPage
from smartcourse.services import conversations

router = APIRouter(tags=["assistant"], dependencies=[Depends(refuse_unknown_query)])


@router.get("/ai/conversations", response_model=ConversationPage)
async def ai_list_conversations(
    user: CurrentUser,
    c: ContainerDep,
    course_id: uuid.UUID | None = None,
    page: Page = 1,
    page_size: PageSize = DEFAULT_PAGE_SIZE,
) -> ConversationPage:
    async with c.uow() as uow:
        return await conversations.list_mine(
            uow=uow,
            principal=user,
            keep_days=c.settings.assistant_history_days,
            course_id=course_id,
            page=page,
            page_size=page_size,
        )


handler = lambda_handler(router)
