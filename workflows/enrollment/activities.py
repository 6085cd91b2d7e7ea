"""The activity of EnrollmentWorkflow: the four steps in one transaction, then the welcome e-mail's enqueue."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from temporalio import activity

from smartcourse.bootstrap import Container
from smartcourse.faults import hold_point
from smartcourse.services import enrollment
from smartcourse.tasks import EmailBatcher, enqueue_email
from workflows.enrollment.workflow import SET_UP, EnrollmentInput


class EnrollmentActivities:
    def __init__(self, container: Container, emails: EmailBatcher | None = None) -> None:
        self.c = container
        self.lessons = enrollment.LessonIds(container.documents)
        # A burst's welcome e-mails go out several per Celery task.
        self.emails = emails or EmailBatcher()

    @activity.defn(name=SET_UP)
    async def set_up(self, inp: EnrollmentInput) -> dict[str, Any]:
        """initialize_progress, record_analytics, activate and welcome_notification commit together; the e-mail is
        enqueued after the commit (`EmailBatcher`). Safe to repeat at any point: a repeat finds every write done and
        enqueues the same notification's e-mail again, which the Celery task sends once."""
        eid = inp.enrollment_id
        async with self.c.uow() as uow:
            done = await enrollment.set_up(uow=uow, lessons=self.lessons, enrollment_id=uuid.UUID(eid))
            await hold_point(f"enroll.set_up.{eid}")  # tests: killed with the transaction open
            await uow.commit()
        if done.notification_id is not None:
            await hold_point(f"enroll.welcome_email.{eid}")  # tests: killed after the commit, before the enqueue
            # With the set-ups' e-mails of the last 100 ms in one Celery task; returns once it is on the broker.
            await self.emails.enqueue(done.notification_id)
        return {
            "lessons": done.lessons,
            "analytics_recorded": done.analytics_recorded,
            "status": done.status,
            "notification_id": str(done.notification_id) if done.notification_id else None,
        }

    # --- the four activities of runs started before the one-transaction set-up (replay only; remove with it) ---

    @activity.defn(name="enroll.initialize_progress")
    async def initialize_progress(self, inp: EnrollmentInput) -> int:
        async with self.c.uow() as uow:
            return await enrollment.legacy_initialize_progress(
                uow=uow, documents=self.c.documents, enrollment_id=uuid.UUID(inp.enrollment_id)
            )

    @activity.defn(name="enroll.record_analytics")
    async def record_analytics(self, inp: EnrollmentInput) -> bool:
        async with self.c.uow() as uow:
            return await enrollment.legacy_record_analytics(uow=uow, enrollment_id=uuid.UUID(inp.enrollment_id))

    @activity.defn(name="enroll.activate")
    async def activate(self, inp: EnrollmentInput) -> str:
        async with self.c.uow() as uow:
            return await enrollment.legacy_activate(uow=uow, enrollment_id=uuid.UUID(inp.enrollment_id))

    @activity.defn(name="enroll.welcome_notification")
    async def welcome_notification(self, inp: EnrollmentInput) -> str | None:
        async with self.c.uow() as uow:
            notification_id = await enrollment.legacy_welcome(uow=uow, enrollment_id=uuid.UUID(inp.enrollment_id))
        if notification_id is not None:
            await asyncio.to_thread(enqueue_email, notification_id)
        return str(notification_id) if notification_id else None

    def all(self) -> list[Any]:
        """Registered as local activities (`set_up`) and as activities (all, the legacy ones included)."""
        return [self.set_up, self.initialize_progress, self.record_analytics, self.activate, self.welcome_notification]
