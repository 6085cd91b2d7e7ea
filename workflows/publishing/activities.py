"""Activities of CoursePublishingWorkflow: thin, idempotent calls into the publishing and content services."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from smartcourse import faults
from smartcourse.bootstrap import Container
from smartcourse.errors import DomainError
from smartcourse.services import content_index, learning, publishing
from smartcourse.services.learner_view import published_lessons_of
from workflows.publishing.workflow import GoLiveInput, PublishInput, RevertInput


def _non_retryable(exc: DomainError) -> ApplicationError:
    """A rule violation will fail the same way every time: do not retry it."""
    return ApplicationError(exc.message, exc.details, type=exc.code, non_retryable=True)


class _Heartbeat:
    """Progress for `GET /workflows/{id}`, and liveness: beats every few seconds while the step works (even inside
    one long library call), so a killed worker's step is retried elsewhere after the heartbeat timeout."""

    def __init__(self) -> None:
        # Four beats per heartbeat timeout: one lost beat (a busy loop) is not taken for a dead worker.
        timeout = activity.info().heartbeat_timeout
        self.every = max(0.25, timeout.total_seconds() / 4) if timeout else 5.0
        self.details: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None

    def __call__(self, done: int, total: int) -> None:
        self.details = {"done": done, "total": total}
        activity.heartbeat(self.details)

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            if self.details:
                activity.heartbeat(self.details)
            else:
                activity.heartbeat()

    async def __aenter__(self) -> _Heartbeat:
        self._task = asyncio.create_task(self._beat())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()


class PublishingActivities:
    def __init__(self, container: Container) -> None:
        self.c = container

    @activity.defn(name="publish.validate")
    async def validate(self, inp: PublishInput) -> None:
        await faults.hold_point(f"publish.validate.{inp.course_id}")  # tests: lessons deleted after the request
        try:
            async with self.c.uow() as uow:
                await publishing.validate_for_publish(
                    uow=uow, course_id=uuid.UUID(inp.course_id), documents=self.c.documents, version=inp.version
                )
        except DomainError as exc:
            raise _non_retryable(exc) from exc

    @activity.defn(name="publish.snapshot")
    async def snapshot(self, inp: PublishInput) -> str:
        await faults.hold_point(f"publish.snapshot.{inp.course_id}")  # tests: edits made while the publish runs
        try:
            async with self.c.uow() as uow:
                return await publishing.snapshot_version(
                    uow=uow,
                    documents=self.c.documents,
                    course_id=uuid.UUID(inp.course_id),
                    version=inp.version,
                    keep_existing=True,
                )
        except DomainError as exc:  # nothing left to publish: fails the run, as `validate` would
            raise _non_retryable(exc) from exc

    @activity.defn(name="publish.extract")
    async def extract(self, inp: PublishInput) -> dict[str, Any]:
        await faults.fail_point("publish.extract", inp.course_id)
        try:
            async with _Heartbeat(), self.c.uow() as uow:
                return await content_index.extract(
                    uow=uow,
                    documents=self.c.documents,
                    files=self.c.files,
                    course_id=uuid.UUID(inp.course_id),
                    version=inp.version,
                )
        except DomainError as exc:
            raise _non_retryable(exc) from exc

    @activity.defn(name="publish.chunk")
    async def chunk(self, inp: PublishInput) -> dict[str, Any]:
        s = self.c.settings
        async with _Heartbeat() as beat, self.c.uow() as uow:
            return await content_index.chunk(
                uow=uow,
                files=self.c.files,
                course_id=uuid.UUID(inp.course_id),
                version=inp.version,
                max_tokens=s.chunk_tokens,
                overlap_tokens=s.chunk_overlap_tokens,
                progress=beat,
            )

    @activity.defn(name="publish.embed")
    async def embed(self, inp: PublishInput) -> dict[str, Any]:
        await faults.fail_point("publish.embed", inp.course_id)
        async with _Heartbeat() as beat, self.c.uow() as uow:
            result = await content_index.embed(
                uow=uow,
                embedder=self.c.embedder(),
                course_id=uuid.UUID(inp.course_id),
                version=inp.version,
                progress=beat,
            )
            await faults.hold_point(f"publish.embed.done.{inp.course_id}")  # tests: the last progress, read
            return result

    @activity.defn(name="publish.index")
    async def index(self, inp: PublishInput) -> dict[str, Any]:
        await faults.fail_point("publish.index", inp.course_id)
        async with _Heartbeat() as beat:
            await faults.hold_point(f"publish.index.{inp.course_id}")
            async with self.c.uow() as uow:
                return await content_index.index(
                    uow=uow,
                    embedder=self.c.embedder(),
                    vector_index=self.c.vector_index(),
                    course_id=uuid.UUID(inp.course_id),
                    version=inp.version,
                    progress=beat,
                )

    @activity.defn(name="publish.verify")
    async def verify(self, inp: PublishInput) -> dict[str, Any]:
        try:
            async with self.c.uow() as uow:
                return await content_index.verify(
                    uow=uow,
                    vector_index=self.c.vector_index(),
                    embedder=self.c.embedder(),
                    course_id=uuid.UUID(inp.course_id),
                    version=inp.version,
                )
        except DomainError as exc:  # an incomplete index is rebuilt by a retry of the whole publish, not here
            raise _non_retryable(exc) from exc

    @activity.defn(name="publish.mark_published")
    async def mark_published(self, inp: GoLiveInput) -> bool:
        await faults.hold_point(f"publish.go_live.{inp.course_id}")
        course_id = uuid.UUID(inp.course_id)
        # The version's lessons, read before the transaction (the document store has a pool of its own): the
        # enrollments that have all of them done are completed at go-live.
        lessons = await published_lessons_of(self.c.documents, course_id, inp.version)
        completed: list[uuid.UUID] = []
        emails: list[uuid.UUID] = []
        try:
            async with self.c.uow() as uow:
                done = await publishing.mark_published(
                    uow=uow,
                    course_id=course_id,
                    version=inp.version,
                    workflow_id=inp.workflow_id,
                    report=inp.report,
                    lesson_ids=[lsn.lesson_id for lsn in lessons],
                    completed=completed,
                    emails=emails,
                )
            # Those a request held at go-live (skipped there): completed now that it has committed. Run at every
            # attempt of the step, so a retry after the go-live committed still does it.
            async with self.c.uow() as uow:
                completed += await publishing.complete_skipped_at_go_live(
                    uow=uow,
                    course_id=course_id,
                    version=inp.version,
                    lesson_ids=[lsn.lesson_id for lsn in lessons],
                )
        except DomainError as exc:
            raise _non_retryable(exc) from exc
        await self.c.invalidate_course_cache(course_id)
        if emails:  # the instructor's notice of unreadable files (explore11 F13: it waited for the sweeper)
            from smartcourse.tasks import enqueue_email

            for notification_id in emails:
                await asyncio.to_thread(enqueue_email, notification_id)
        for enrollment_id in completed:
            await learning.start_certificate(self.c, enrollment_id)
        return done

    @activity.defn(name="publish.cleanup")
    async def cleanup(self, inp: PublishInput) -> dict[str, Any]:
        async with self.c.uow() as uow:
            return await content_index.cleanup_old_versions(
                uow=uow,
                files=self.c.files,
                vector_index=self.c.vector_index(),
                course_id=uuid.UUID(inp.course_id),
                live_version=inp.version,
            )

    @activity.defn(name="publish.revert")
    async def revert(self, inp: RevertInput) -> None:
        """The course back (its live version, or the draft), the failure recorded and told, then what the version
        built dropped. In that order: the dropping can fail for the cause that failed the publish (an unwritable
        index), and first it kept the course in `publishing` for good, with no notice (explore18 F1). Each part is
        idempotent: a retry redoes what is left; what a failed drop leaves is a version no reader points at, which
        the next publish's cleanup removes."""
        course_id = uuid.UUID(inp.course_id)
        await faults.hold_point(f"publish.revert.{inp.course_id}")  # tests: a cancel during the compensation
        async with self.c.uow() as uow:  # nothing to record or tell for a run the API canceled (`record_failure`)
            notification_id = await content_index.record_failure(
                uow=uow,
                course_id=course_id,
                version=inp.version,
                workflow_id=inp.workflow_id,
                step=inp.step or "unknown",
                error=inp.error or "unknown error",
            )
        async with self.c.uow() as uow:
            await publishing.revert_publish(uow=uow, course_id=course_id, workflow_id=inp.workflow_id)
        # The catalogue's cached reads said `publishing` since the request: without this they went on saying it for
        # up to the cache's TTL after the course was back (explore36 F2; the go-live invalidates too).
        await self.c.invalidate_course_cache(course_id)
        if notification_id is not None:
            from smartcourse.tasks import enqueue_email

            await asyncio.to_thread(enqueue_email, notification_id)
        async with self.c.uow() as uow:
            await content_index.discard_version(
                uow=uow,
                files=self.c.files,
                vector_index=self.c.vector_index(),
                course_id=course_id,
                version=inp.version,
            )

    def all(self) -> list[object]:
        return [
            self.validate,
            self.snapshot,
            self.extract,
            self.chunk,
            self.embed,
            self.index,
            self.verify,
            self.mark_published,
            self.cleanup,
            self.revert,
        ]
