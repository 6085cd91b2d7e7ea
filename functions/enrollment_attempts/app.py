"""GET /enrollments/{enrollment_id}/attempts: every quiz attempt of an enrollment, newest first, a page at a time (its
student, the course's instructor or an admin)."""

import uuid

from fastapi import APIRouter, Depends, Request, Response

from smartcourse.api.app import lambda_handler, refuse_unknown_query
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.api.paging import DEFAULT_PAGE_SIZE, PAGE_HEADERS, Page, PageSize, set_page_headers
from smartcourse.schemas import QuizAttemptPublic
from smartcourse.services import progress

router = APIRouter(tags=["progress"], dependencies=[Depends(refuse_unknown_query)])


@router.get(
    "/enrollments/{enrollment_id:uuid}/attempts",
    response_model=list[QuizAttemptPublic],
    responses={200: {"headers": PAGE_HEADERS}},
)
async def enrollment_attempts(
    enrollment_id: uuid.UUID,
    request: Request,
    response: Response,
    user: CurrentUser,
    c: ContainerDep,
    page: Page = 1,
    page_size: PageSize = DEFAULT_PAGE_SIZE,
) -> list[QuizAttemptPublic]:
    """Scores, answers and times of every submission, those of a quiz rewritten since included
    (`on_the_quiz_as_it_is: false`): the progress counts only the attempts on the quiz as it is now."""
    async with c.uow() as uow:
        found, total = await progress.attempts(
            uow=uow, documents=c.documents, principal=user, enrollment_id=enrollment_id, page=page, page_size=page_size
        )
    set_page_headers(request, response, total=total, page=page, page_size=page_size)
    return found


handler = lambda_handler(router)
