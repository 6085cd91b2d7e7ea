"""POST /ai/generate-summary: a grounded summary of the course or of one lesson (owner, admin; SSE on request)."""

from typing import Any

from fastapi import APIRouter, Request, Response

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.api.disconnect import unless_client_leaves
from smartcourse.assistant.schemas import GenerateIn, GenerationOut
from smartcourse.assistant.sse import SSE_OR_JSON, generation_events, stream_response, wants_stream
from smartcourse.services import assistant

router = APIRouter(tags=["assistant"])

#: Codes raised behind the assistant's run object, which `devtools.error_codes` cannot follow (OpenAPI, errors.md).
RAISED_THROUGH_OBJECTS = {503: ("ai_output_invalid", "assistant_failed")}


@router.post("/ai/generate-summary", response_model=GenerationOut, responses={200: SSE_OR_JSON})
async def ai_generate_summary(
    body: GenerateIn, request: Request, response: Response, user: CurrentUser, c: ContainerDep
) -> Any:
    run = await assistant.prepare_generation(
        c, principal=user, kind="summary", course_id=body.course_id, lesson_id=body.lesson_id
    )
    if wants_stream(request):
        return stream_response(lambda stopping: generation_events(run, stopping), headers=run.quota_headers)
    response.headers.update(run.quota_headers)
    return await unless_client_leaves(request, run.execute())


handler = lambda_handler(router)
