"""POST /certificates/{certificate_id}/revoke: revoke a certificate, with the reason (admin); its check says revoked."""

import uuid

from fastapi import APIRouter

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.schemas import CertificatePublic, RevokeIn
from smartcourse.services import certificates

router = APIRouter(tags=["certificates"])


@router.post(
    "/certificates/{certificate_id:uuid}/revoke",
    response_model=CertificatePublic,
    description="Revokes the certificate: its public check answers `revoked` from now on, and the student is told "
    "the reason (in-app and by e-mail). Idempotent: revoking a revoked certificate answers it as it is, with its "
    "first reason, date and admin (a different `reason` is not recorded). Not undone through the API.",
)
async def revoke_certificate(
    certificate_id: uuid.UUID, body: RevokeIn, user: CurrentUser, c: ContainerDep
) -> CertificatePublic:
    async with c.uow() as uow:
        cert = await certificates.revoke(uow=uow, principal=user, certificate_id=certificate_id, reason=body.reason)
    return CertificatePublic.of(cert, c.settings.public_base_url)


handler = lambda_handler(router)
