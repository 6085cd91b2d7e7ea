"""GET /ai/generated-quizzes: the generated quizzes the caller may save, newest first, a page at a time."""

import uuid

from fastapi import APIRouter, Depends

from smartcourse.api.app import lambda_handler, refuse_unknown_query
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.api.paging import DEFAULT_PAGE_SIZE, Page, PageSize
from smartcourse.assistant.schemas import GeneratedQuizPage
from smartcourse.services import assistant

router = APIRouter(tags=["assistant"], dependencies=[Depends(refuse_unknown_query)])


@router.get("/ai/generated-quizzes", response_model=GeneratedQuizPage)
async def ai_generated_quizzes(
    user: CurrentUser,
    c: ContainerDep,
    course_id: uuid.UUID | None = None,
    page: Page = 1,
    page_size: PageSize = DEFAULT_PAGE_SIZE,
) -> GeneratedQuizPage:
    """The caller's own; with `course_id`, of a course they teach, every one generated for it (an admin's for their
    course too); an admin reads any. A generation whose answer was lost is found here, with `saved_lesson_id`."""
    return await assistant.generated_quizzes(c, principal=user, course_id=course_id, page=page, page_size=page_size)


handler = lambda_handler(router)
