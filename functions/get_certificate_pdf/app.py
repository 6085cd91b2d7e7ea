"""GET /certificates/{certificate_id}/pdf: the certificate as a PDF."""

import uuid

from fastapi import APIRouter, Response

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.errors import Conflict, Forbidden, NotFound
from smartcourse.models import iso
from smartcourse.services import certificates

router = APIRouter(tags=["certificates"])


@router.get(
    "/certificates/{certificate_id:uuid}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}}},
)
async def get_certificate_pdf(certificate_id: uuid.UUID, user: CurrentUser, c: ContainerDep) -> Response:
    async with c.uow() as uow:
        cert = await certificates.get_certificate(uow=uow, principal=user, certificate_id=certificate_id, teaching=True)
    if not (user.is_admin or cert.student_id == user.user_id):
        # The course's instructor reads the certificate but not its PDF, the student's document: said, not the 404
        # of a certificate they had just read (explore59 F6).
        raise Forbidden(
            "the PDF of a certificate is its student's (and admins'); its instructor reads the certificate itself",
            code="not_certificate_student",
        )
    if cert.revoked_at is not None and not user.is_admin:  # a revoked certificate is not handed out any more
        raise Conflict(
            "this certificate was revoked: it is no longer valid, and its PDF is not given out",
            code="certificate_revoked",
            details={"revoked_at": iso(cert.revoked_at)},
        )
    if cert.withdrawn_at is not None:  # withdrawn by its holder or with their account's erasure: the PDF is gone
        raise Conflict(
            "this certificate was withdrawn from the public check: it has no PDF any more",
            code="certificate_withdrawn",
            details={"withdrawn_at": iso(cert.withdrawn_at)},
        )
    if not cert.pdf_key:
        raise NotFound("the PDF is still being generated", code="certificate_pdf_pending")
    data = await c.files.get(cert.pdf_key)
    return Response(
        data,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{certificates.pdf_filename(cert.code)}"'},
    )


handler = lambda_handler(router)
