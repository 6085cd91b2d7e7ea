"""GET /courses/{course_id}/certificates: the certificates a course has issued, newest first (owner or admin)."""

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from smartcourse.api.app import lambda_handler, refuse_unknown_query
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.api.paging import DEFAULT_PAGE_SIZE, PAGE_HEADERS, Page, PageSize, set_page_headers
from smartcourse.schemas import INSTANT_NOTE, CertificatePublic
from smartcourse.services import certificates

# A parameter it does not read is refused, as on the roster (explore68 F5: `?issued_after=` and `?student_id=`
# answered every certificate, 200).
router = APIRouter(tags=["certificates"], dependencies=[Depends(refuse_unknown_query)])


@router.get(
    "/courses/{course_id:uuid}/certificates",
    response_model=list[CertificatePublic],
    responses={200: {"headers": PAGE_HEADERS}},
)
async def course_certificates(
    course_id: uuid.UUID,
    request: Request,
    response: Response,
    user: CurrentUser,
    c: ContainerDep,
    revoked: Annotated[
        bool | None,
        Query(description="only the revoked (true) or those in force (false: neither revoked nor withdrawn)"),
    ] = None,
    updated_since: Annotated[
        datetime | None,
        Query(
            description="only those issued, revoked, withdrawn or re-issued at or after this moment (a sync's last run)"
            + INSTANT_NOTE
        ),
    ] = None,
    page: Page = 1,
    page_size: PageSize = DEFAULT_PAGE_SIZE,
) -> list[CertificatePublic]:
    async with c.uow() as uow:
        found, total = await certificates.course_certificates(
            uow=uow,
            principal=user,
            course_id=course_id,
            revoked=revoked,
            page=page,
            page_size=page_size,
            updated_since=updated_since,
        )
    set_page_headers(request, response, total=total, page=page, page_size=page_size)
    # Why one was revoked is for its student and admins, as the public check says nothing of it.
    return [CertificatePublic.of(cert, c.settings.public_base_url, user) for cert in found]


handler = lambda_handler(router)
