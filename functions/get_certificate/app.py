"""GET /certificates/{certificate_id}: a certificate of the caller, of a course the caller teaches (without the
revocation's reason), or any, for an admin."""

import uuid

from fastapi import APIRouter

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.schemas import CertificatePublic
from smartcourse.services import certificates

router = APIRouter(tags=["certificates"])


@router.get("/certificates/{certificate_id:uuid}", response_model=CertificatePublic)
async def get_certificate(certificate_id: uuid.UUID, user: CurrentUser, c: ContainerDep) -> CertificatePublic:
    async with c.uow() as uow:
        cert = await certificates.get_certificate(uow=uow, principal=user, certificate_id=certificate_id, teaching=True)
    return CertificatePublic.of(cert, c.settings.public_base_url, user)  # its course's instructor: not why revoked


handler = lambda_handler(router)
