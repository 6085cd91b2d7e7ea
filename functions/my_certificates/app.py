"""GET /certificates/my: the caller's certificates, newest first."""

from fastapi import APIRouter

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep, CurrentUser
from smartcourse.schemas import CertificatePublic
from smartcourse.services import certificates

router = APIRouter(tags=["certificates"])


@router.get("/certificates/my", response_model=list[CertificatePublic])
async def my_certificates(user: CurrentUser, c: ContainerDep) -> list[CertificatePublic]:
    async with c.uow() as uow:
        found = await certificates.my_certificates(uow=uow, principal=user)
    return [CertificatePublic.of(cert, c.settings.public_base_url) for cert in found]


handler = lambda_handler(router)
