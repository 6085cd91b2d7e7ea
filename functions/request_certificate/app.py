"""POST /enrollments/{enrollment_id}/certificate: the certificate (issued now if due), or 409 before completion."""

import uuid

from fastapi import APIRouter, Response

from smartcourse.api.app import lambda_handler
from smartcourse.api.created import LOCATION, created_at
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.schemas import CertificatePublic
from smartcourse.services import certificates

router = APIRouter(tags=["certificates"])


@router.post(
    "/enrollments/{enrollment_id:uuid}/certificate",
    response_model=CertificatePublic,
    responses={201: {"model": CertificatePublic, "description": "issued by this request", "headers": LOCATION}},
)
async def request_certificate(
    enrollment_id: uuid.UUID, user: CurrentUser, c: ContainerDep, response: Response
) -> CertificatePublic:
    async with c.uow() as uow:
        cert, created = await certificates.request_for_enrollment(uow=uow, principal=user, enrollment_id=enrollment_id)
    response.status_code = 201 if created else 200
    if created:
        created_at(response, f"/certificates/{cert.id}")
    return CertificatePublic.of(cert, c.settings.public_base_url)


handler = lambda_handler(router)
