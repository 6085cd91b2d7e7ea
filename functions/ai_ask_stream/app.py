"""POST /ai/ask-stream: the /ai/ask answer as Server-Sent Events (token*, reset, citations, done | error)."""

from fastapi import APIRouter
from sse_starlette import EventSourceResponse

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.assistant.schemas import AskIn
from smartcourse.assistant.sse import sse_events, stream_response
from smartcourse.services import assistant

router = APIRouter(tags=["assistant"])


@router.post(
    "/ai/ask-stream",
    response_class=EventSourceResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "token* (a `reset` says: drop the tokens so far), citations, done (or error); see "
            "docs/assistant.md",
        }
    },
)
async def ai_ask_stream(body: AskIn, user: CurrentUser, c: ContainerDep) -> EventSourceResponse:
    run = await assistant.prepare_ask(c, principal=user, body=body, streamed=True)
    # Before any event: a client cut off or cancelling mid-answer still has the interaction to look up, and the
    # conversation to go on in once an answer of it was written (explore72 F11: only `done` carried them).
    ids = {"X-Interaction-Id": str(run.interaction.id), "X-Conversation-Id": str(run.interaction.conversation_id)}
    headers = {**ids, **run.quota_headers}  # and what is left of the caller's quota (RateLimit-*)
    return stream_response(lambda stopping: sse_events(run.events(), stopping), headers=headers)


handler = lambda_handler(router)
