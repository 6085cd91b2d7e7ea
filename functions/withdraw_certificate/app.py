"""POST /certificates/{certificate_id}/withdraw: take a certificate out of the public check (its student or an
admin)."""

import uuid

from fastapi import APIRouter

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.schemas import CertificatePublic
from smartcourse.services import certificates

router = APIRouter(tags=["certificates"])


@router.post("/certificates/{certificate_id:uuid}/withdraw", response_model=CertificatePublic)
async def withdraw_certificate(certificate_id: uuid.UUID, user: CurrentUser, c: ContainerDep) -> CertificatePublic:
    """The public check then answers `withdrawn` and nothing else (no name, no course), and the PDF is deleted; the
    completion stands. At the holder's request (the student, or an admin for them); not undone. Idempotent."""
    async with c.uow() as uow:
        cert = await certificates.withdraw(uow=uow, principal=user, files=c.files, certificate_id=certificate_id)
    return CertificatePublic.of(cert, c.settings.public_base_url, user)


handler = lambda_handler(router)
