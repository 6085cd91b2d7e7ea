"""POST /ai/ask: answer a question from the course's material, with checked citations (or clarify / refuse)."""

from typing import Any

from fastapi import APIRouter, Request

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.api.disconnect import unless_client_leaves
from smartcourse.assistant.schemas import AskIn, AskOut
from smartcourse.services import assistant

router = APIRouter(tags=["assistant"])

#: Codes raised behind the assistant's run object, which `devtools.error_codes` cannot follow (OpenAPI, errors.md).
RAISED_THROUGH_OBJECTS = {503: ("assistant_failed",)}


@router.post("/ai/ask", response_model=AskOut)
async def ai_ask(body: AskIn, request: Request, user: CurrentUser, c: ContainerDep) -> Any:
    return await unless_client_leaves(request, assistant.ask(c, principal=user, body=body))


handler = lambda_handler(router)
