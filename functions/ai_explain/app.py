"""POST /ai/explain: a concept explained at a level from the course's passages, with citations (owner, admin)."""

from typing import Any

from fastapi import APIRouter, Request, Response

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.api.disconnect import unless_client_leaves
from smartcourse.assistant.schemas import ExplainIn, GenerationOut
from smartcourse.assistant.sse import SSE_OR_JSON, generation_events, stream_response, wants_stream
from smartcourse.services import assistant

router = APIRouter(tags=["assistant"])

#: Codes raised behind the assistant's run object, which `devtools.error_codes` cannot follow (OpenAPI, errors.md).
RAISED_THROUGH_OBJECTS = {503: ("ai_output_invalid", "assistant_failed")}


@router.post("/ai/explain", response_model=GenerationOut, responses={200: SSE_OR_JSON})
async def ai_explain(body: ExplainIn, request: Request, response: Response, user: CurrentUser, c: ContainerDep) -> Any:
    run = await assistant.prepare_generation(
        c, principal=user, kind="explain", course_id=body.course_id, concept=body.concept, level=body.level
    )
    if wants_stream(request):
        return stream_response(lambda stopping: generation_events(run, stopping), headers=run.quota_headers)
    response.headers.update(run.quota_headers)
    return await unless_client_leaves(request, run.execute())


handler = lambda_handler(router)
