"""Activities of EnrollmentWorkflow: thin calls into the enrollment service, each safe to repeat."""

from __future__ import annotations

import asyncio
import uuid

from temporalio import activity

from smartcourse.bootstrap import Container
from smartcourse.faults import hold_point
from smartcourse.services import enrollment
from smartcourse.tasks import enqueue_email
from workflows.enrollment.workflow import EnrollmentInput


class EnrollmentActivities:
    def __init__(self, container: Container) -> None:
        self.c = container

    @activity.defn(name="enroll.initialize_progress")
    async def initialize_progress(self, inp: EnrollmentInput) -> int:
        async with self.c.uow() as uow:
            return await enrollment.initialize_progress(
                uow=uow, documents=self.c.documents, enrollment_id=uuid.UUID(inp.enrollment_id)
            )

    @activity.defn(name="enroll.record_analytics")
    async def record_analytics(self, inp: EnrollmentInput) -> bool:
        async with self.c.uow() as uow:
            return await enrollment.record_analytics(uow=uow, enrollment_id=uuid.UUID(inp.enrollment_id))

    @activity.defn(name="enroll.activate")
    async def activate(self, inp: EnrollmentInput) -> str:
        await hold_point(f"enroll.activate.{inp.enrollment_id}")
        async with self.c.uow() as uow:
            return await enrollment.activate(uow=uow, enrollment_id=uuid.UUID(inp.enrollment_id))

    @activity.defn(name="enroll.welcome_notification")
    async def welcome_notification(self, inp: EnrollmentInput) -> str | None:
        async with self.c.uow() as uow:
            notification_id = await enrollment.welcome(uow=uow, enrollment_id=uuid.UUID(inp.enrollment_id))
        if notification_id is not None:
            # Off the event loop: a broker round trip would stall the workflows this worker runs. The task is
            # idempotent, so a repeated enqueue still sends once.
            await asyncio.to_thread(enqueue_email, notification_id)
        return str(notification_id) if notification_id else None

    def all(self) -> list[object]:
        return [self.initialize_progress, self.record_analytics, self.activate, self.welcome_notification]
