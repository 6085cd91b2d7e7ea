"""POST /certificates/{certificate_id}/revoke: revoke a certificate, with the reason (admin); its check says revoked."""

from typing import Annotated

from fastapi import APIRouter, Path

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.schemas import CertificatePublic, RevokeIn
from smartcourse.services import certificates

router = APIRouter(tags=["certificates"])


_ID_OR_CODE = Path(
    max_length=64,
    description="The certificate's id, or its code (`SC-XXXX-XXXX-XXXX-XXXX`, as printed and as the public check "
    "takes it): a report of a certificate quotes its code, and neither the PDF nor the check shows the id.",
)


@router.post(
    "/certificates/{certificate_id}/revoke",
    response_model=CertificatePublic,
    description="Revokes the certificate: its public check answers `revoked` from now on, and the student is told "
    "the reason (in-app and by e-mail). Idempotent: revoking a revoked certificate answers it as it is, with its "
    "first reason, date and admin (a different `reason` is not recorded). Not undone through the API.",
)
async def revoke_certificate(
    certificate_id: Annotated[str, _ID_OR_CODE], body: RevokeIn, user: CurrentUser, c: ContainerDep
) -> CertificatePublic:
    async with c.uow() as uow:
        cert = await certificates.revoke(uow=uow, principal=user, certificate=certificate_id, reason=body.reason)
    return CertificatePublic.of(cert, c.settings.public_base_url)


handler = lambda_handler(router)
