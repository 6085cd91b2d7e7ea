"""POST /ai/ask: answer a question from the course's material, with checked citations (or clarify / refuse)."""

from typing import Any

from fastapi import APIRouter, Request, Response

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.api.disconnect import unless_client_leaves
from smartcourse.assistant.schemas import AskIn, AskOut
from smartcourse.services import assistant

router = APIRouter(tags=["assistant"])

#: Codes raised behind the assistant's run object, which `devtools.error_codes` cannot follow (OpenAPI, errors.md).
RAISED_THROUGH_OBJECTS = {503: ("assistant_failed",)}


@router.post("/ai/ask", response_model=AskOut)
async def ai_ask(body: AskIn, request: Request, response: Response, user: CurrentUser, c: ContainerDep) -> Any:
    run = await assistant.prepare_ask(c, principal=user, body=body, streamed=False)
    response.headers.update(run.quota_headers)  # what is left of the caller's quota (RateLimit-*)
    return await unless_client_leaves(request, assistant.answer(run))


handler = lambda_handler(router)
