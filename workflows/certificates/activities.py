"""Activities of CertificateWorkflow: each safe to repeat."""

from __future__ import annotations

import asyncio
import uuid

from temporalio import activity
from temporalio.exceptions import ApplicationError

from smartcourse.bootstrap import Container
from smartcourse.errors import DomainError
from smartcourse.services import certificates
from smartcourse.tasks import enqueue_email


class CertificateActivities:
    def __init__(self, container: Container) -> None:
        self.c = container

    @activity.defn(name="certificate.issue")
    async def issue(self, enrollment_id: str) -> str:
        try:
            async with self.c.uow() as uow:
                return str(await certificates.issue(uow=uow, enrollment_id=uuid.UUID(enrollment_id)))
        except DomainError as exc:
            raise ApplicationError(exc.message, type=exc.code, non_retryable=True) from exc

    @activity.defn(name="certificate.render_pdf")
    async def render_pdf(self, certificate_id: str) -> str:
        async with self.c.uow() as uow:
            return await certificates.store_pdf(
                uow=uow,
                files=self.c.files,
                certificate_id=uuid.UUID(certificate_id),
                base_url=self.c.settings.public_base_url,
            )

    @activity.defn(name="certificate.notify")
    async def notify(self, certificate_id: str) -> str:
        async with self.c.uow() as uow:
            notification_id = await certificates.notify(
                uow=uow, certificate_id=uuid.UUID(certificate_id), base_url=self.c.settings.public_base_url
            )
        if notification_id is None:
            return "revoked or withdrawn: no notice"  # a revocation tells the student itself; an erased one is nobody
        await asyncio.to_thread(enqueue_email, notification_id)  # off the event loop (a broker round trip)
        return str(notification_id)

    def all(self) -> list[object]:
        return [self.issue, self.render_pdf, self.notify]
