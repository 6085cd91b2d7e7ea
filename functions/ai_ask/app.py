"""POST /ai/ask: answer a question from the course's material, with checked citations (or clarify / refuse)."""

from fastapi import APIRouter

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.assistant.schemas import AskIn, AskOut
from smartcourse.services import assistant

router = APIRouter(tags=["assistant"])

#: Codes raised behind the assistant's run object, which `devtools.error_codes` cannot follow (OpenAPI, errors.md).
RAISED_THROUGH_OBJECTS = {503: ("assistant_failed",)}


@router.post("/ai/ask", response_model=AskOut)
async def ai_ask(body: AskIn, user: CurrentUser, c: ContainerDep) -> AskOut:
    return await assistant.ask(c, principal=user, body=body)


handler = lambda_handler(router)
