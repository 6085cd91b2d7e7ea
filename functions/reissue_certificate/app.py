"""POST /certificates/{certificate_id}/reissue: re-issue a certificate under its holder's corrected name (its student
or an admin)."""

import uuid

from fastapi import APIRouter

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.schemas import CertificatePublic
from smartcourse.services import certificates

router = APIRouter(tags=["certificates"])


@router.post("/certificates/{certificate_id:uuid}/reissue", response_model=CertificatePublic)
async def reissue_certificate(certificate_id: uuid.UUID, user: CurrentUser, c: ContainerDep) -> CertificatePublic:
    """The certificate under its student's name as their account has it now (correct the name first: `PUT
    /users/{id}`): same code and link, the public check shows the new name and `reissued_at`, the PDF is rendered
    again. A revoked or withdrawn certificate 409; under the same name it is answered as it is."""
    async with c.uow() as uow:
        cert = await certificates.reissue(
            uow=uow, principal=user, files=c.files, certificate_id=certificate_id, base_url=c.settings.public_base_url
        )
    return CertificatePublic.of(cert, c.settings.public_base_url, user)


handler = lambda_handler(router)
