"""GET /certificates/verify/{code}: public check that a certificate is genuine (no login)."""

from typing import Annotated

from fastapi import APIRouter, Path

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep
from smartcourse.schemas import CertificateVerification
from smartcourse.services import certificates

router = APIRouter(tags=["certificates"])


@router.get("/certificates/verify/{code}", response_model=CertificateVerification, response_model_exclude_none=True)
async def verify_certificate(code: Annotated[str, Path(max_length=64)], c: ContainerDep) -> CertificateVerification:
    async with c.uow() as uow:
        cert = await certificates.verify(uow=uow, code=code)
    if cert is None:
        return CertificateVerification(valid=False)
    return CertificateVerification(
        valid=True, student_name=cert.student_name, course_title=cert.course_title, issued_at=cert.issued_at
    )


handler = lambda_handler(router)
