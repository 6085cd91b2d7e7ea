"""Activities of CoursePublishingWorkflow: thin, idempotent calls into the publishing service."""

from __future__ import annotations

import uuid

from temporalio import activity
from temporalio.exceptions import ApplicationError

from smartcourse.bootstrap import Container
from smartcourse.errors import DomainError
from smartcourse.services import publishing
from workflows.publishing.workflow import PublishInput


def _non_retryable(exc: DomainError) -> ApplicationError:
    """A rule violation will fail the same way every time: do not retry it."""
    return ApplicationError(exc.message, type=exc.code, non_retryable=True)


class PublishingActivities:
    def __init__(self, container: Container) -> None:
        self.c = container

    @activity.defn(name="publish.validate")
    async def validate(self, inp: PublishInput) -> None:
        try:
            async with self.c.uow() as uow:
                await publishing.validate_for_publish(uow=uow, course_id=uuid.UUID(inp.course_id))
        except DomainError as exc:
            raise _non_retryable(exc) from exc

    @activity.defn(name="publish.snapshot")
    async def snapshot(self, inp: PublishInput) -> str:
        async with self.c.uow() as uow:
            return await publishing.snapshot_version(
                uow=uow, documents=self.c.documents, course_id=uuid.UUID(inp.course_id), version=inp.version
            )

    @activity.defn(name="publish.mark_published")
    async def mark_published(self, inp: PublishInput) -> bool:
        try:
            async with self.c.uow() as uow:
                return await publishing.mark_published(
                    uow=uow,
                    course_id=uuid.UUID(inp.course_id),
                    version=inp.version,
                    workflow_id=inp.workflow_id,
                )
        except DomainError as exc:
            raise _non_retryable(exc) from exc

    @activity.defn(name="publish.revert")
    async def revert(self, inp: PublishInput) -> None:
        async with self.c.uow() as uow:
            await publishing.revert_publish(uow=uow, course_id=uuid.UUID(inp.course_id), workflow_id=inp.workflow_id)

    def all(self) -> list[object]:
        return [self.validate, self.snapshot, self.mark_published, self.revert]
