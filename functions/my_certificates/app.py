"""GET /certificates/my: the caller's certificates, newest first, a page at a time."""

from fastapi import APIRouter, Depends, Request, Response

from smartcourse.api.app import lambda_handler, refuse_unknown_query
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.api.paging import DEFAULT_PAGE_SIZE, PAGE_HEADERS, Page, PageSize, set_page_headers
from smartcourse.schemas import CertificatePublic
from smartcourse.services import certificates

router = APIRouter(tags=["certificates"], dependencies=[Depends(refuse_unknown_query)])


@router.get("/certificates/my", response_model=list[CertificatePublic], responses={200: {"headers": PAGE_HEADERS}})
async def my_certificates(
    request: Request,
    response: Response,
    user: CurrentUser,
    c: ContainerDep,
    page: Page = 1,
    page_size: PageSize = DEFAULT_PAGE_SIZE,
) -> list[CertificatePublic]:
    async with c.uow() as uow:
        found, total = await certificates.my_certificates(uow=uow, principal=user, page=page, page_size=page_size)
    set_page_headers(request, response, total=total, page=page, page_size=page_size)
    return [CertificatePublic.of(cert, c.settings.public_base_url) for cert in found]


handler = lambda_handler(router)
