"""Publishing a course: the request (API side) and the idempotent steps the workflow's activities run."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Collection
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import case, select, update

from smartcourse.db import UnitOfWork
from smartcourse.domain import courses as rules
from smartcourse.domain import workflows as names
from smartcourse.domain.events import DomainEvent
from smartcourse.errors import Conflict, Invalid, NotFound, Unavailable
from smartcourse.models import Course, Lesson, WorkflowRun, iso, utcnow
from smartcourse.schemas import CoursePublishCanceled, WorkflowStarted, WorkflowStatus, WorkflowStep
from smartcourse.security import Principal
from smartcourse.services import operations, progress
from smartcourse.services.courses import (
    VERSIONS,
    build_structure,
    differs_from_live,
    ensure_course_owner,
    ensure_prerequisites_live,
    load_course,
    refuse_if_owner_erased,
    snapshot_materials,
    snapshot_modules,
    version_doc_id,
)
from smartcourse.services.materials import MATERIALS
from smartcourse.services.notifications import create_notification
from smartcourse.services.operations import without_paths
from smartcourse.services.workflows import DESCRIBE_BUDGET_SECONDS, describe

log = logging.getLogger(__name__)

PUBLISH_STEPS = ("validate", "snapshot", "extract", "chunk", "embed", "index", "verify", "go_live", "cleanup")


def publish_workflow_id(course_id: uuid.UUID, version: int) -> str:
    """Deterministic: a retried publish of the same version never starts a second run."""
    return f"publish-{course_id}-v{version}"


class PublishRequest(NamedTuple):
    workflow_id: str
    version: int
    new: bool  # this call made the attempt (False: a publish already under way, answered again)


#: How a publish's run may end without returning its course: its compensation failed too, or an operator ended it.
ENDED_WITHOUT_RETURN = frozenset({"failed", "terminated", "timed_out", "canceled"})


def _live_report(course: Course) -> dict[str, Any]:
    """`{"live": report}`: the report of the version students use, kept under the attempt that replaces the course's
    report, so a canceled or failed republish does not hide what the live version holds and lacks (its warnings: an
    unreadable file; explore74 F4). Empty before any version went live."""
    report = course.publish_report or {}
    if course.content_version <= 0:
        return {}
    if report.get("status") == "live" and report.get("version") == course.content_version:
        return {"live": report}
    return {"live": report["live"]} if "live" in report else {}


async def request_publish(
    *,
    uow: UnitOfWork,
    principal: Principal,
    course_id: uuid.UUID,
    documents: Any = None,
    run_status: Callable[[str], Awaitable[str]] | None = None,
    force: bool = False,
) -> PublishRequest:
    """Move the course to `publishing` (or find the publish already under way) and record the run: (workflow id,
    version, whether this call made the attempt; False for a publish already under way).

    With `documents` (the API's publish does), the version is frozen here, under the course's row lock, as the working
    copy is when the instructor asks: an edit made while the workflow runs belongs to the next version (explore11 F1:
    the workflow's `snapshot` step, moments later, shipped whatever was added or deleted in between). The step then
    keeps this snapshot; it takes one itself only for a run requested without it.

    A course that cannot be published (no lesson: 422 `course_not_publishable`; a prerequisite that is not live:
    422 `prerequisites_not_live`) is refused here, with nothing recorded: no version number spent, no workflow run,
    no failure notification. The workflow's `validate` step runs the same checks again (the structure may change,
    a prerequisite may be archived, before it runs).

    A live course whose working copy is what its live version holds, indexed and ready, is refused too (409
    `no_changes`): a second click on "publish" ran the whole pipeline again (extract, embed, index) and spent a version
    number for nothing. `force` publishes it anyway (to index it again with another embedding model, say)."""
    course = await load_course(uow, course_id, lock=True)
    await ensure_course_owner(uow, principal, course)
    if course.status == "archived":
        raise Conflict("an archived course cannot be published", code="course_archived")
    await refuse_if_owner_erased(uow, course, "publishing it")
    if course.status == "publishing" and course.publish_workflow_id:
        ended = await _ended_status(run_status, course.publish_workflow_id)
        if ended is None:
            return PublishRequest(
                course.publish_workflow_id,
                int((course.publish_report or {}).get("version") or course.content_version + 1),
                new=False,
            )
        # The run is over and the course still says `publishing`: its compensation could not return it (explore18
        # F1: an unwritable index failed the revert too, and only SQL freed the course). Returned here, as the
        # revert would have, then published anew under the next version number.
        log.warning("course %s was left publishing by the ended run %s", course.id, course.publish_workflow_id)
        now = utcnow()
        await uow.session.execute(  # and the run says it ended: it read `running` in /ops/workflows (explore21 F3)
            update(WorkflowRun)
            .where(WorkflowRun.workflow_id == course.publish_workflow_id, WorkflowRun.status != "failed")
            .values(
                status="failed",
                error=f"the run ended ({ended}) without returning the course; the next publish did",
                finished_at=now,
                updated_at=now,
            )
        )
        await uow.session.execute(update(Course).where(Course.id == course.id).values(**_RETURNED))
        await uow.session.refresh(course)
    await ensure_publishable(uow, course.id)
    if documents is not None and not force and course.status == "published" and course.index_status == "ready":
        structure = await build_structure(uow, documents, course.id)
        if not await differs_from_live(documents, course, structure):
            raise Conflict(
                f"nothing changed since version {course.content_version} went live; "
                "publish with ?force=true to build and index it again",
                code="no_changes",
                details={"version": course.content_version},
            )
    # A failed attempt used its version number (and its workflow id): the next attempt takes the next one.
    attempted = int((course.publish_report or {}).get("version") or 0)
    version = max(course.content_version, attempted) + 1
    workflow_id = publish_workflow_id(course.id, version)
    course.status = "publishing"
    course.publish_workflow_id = workflow_id
    course.index_status = "indexing"
    course.publish_report = {
        "version": version,
        "workflow_id": workflow_id,
        "status": "running",
        **_live_report(course),
    }
    course.updated_at = utcnow()
    if documents is not None:
        # Replaces whatever a reverted attempt at this version number left (revert_publish does not spend it).
        doc_id = await snapshot_version(uow=uow, documents=documents, course_id=course.id, version=version)
        _ensure_some_text(await documents.get(VERSIONS, doc_id) or {})
    if await uow.session.get(WorkflowRun, workflow_id) is None:
        uow.session.add(
            WorkflowRun(
                workflow_id=workflow_id,
                kind="course_publishing",
                course_id=course.id,
                owner_id=principal.user_id,
                # The request's trace: the workflow continues it (a failure recorded later keeps its own).
                trace_id=operations.current_trace_id(),
                subject=f"course:{course.id}",
            )
        )
    await uow.commit()
    return PublishRequest(workflow_id, version, new=True)


async def _ended_status(run_status: Callable[[str], Awaitable[str]] | None, workflow_id: str) -> str | None:
    """How the run ended, when Temporal says it ended without success (`ENDED_WITHOUT_RETURN`); None when it did not
    or cannot say (no way to ask, the engine down, an id it does not know yet: a publish requested a moment ago)."""
    if run_status is None:
        return None
    try:
        status = await run_status(workflow_id)
    except Unavailable:
        return None
    return status if status in ENDED_WITHOUT_RETURN else None


async def start_publish(
    *, container: Any, principal: Principal, course_id: uuid.UUID, force: bool = False
) -> WorkflowStarted:
    """Request the publish, then start its workflow by name (idempotent by workflow id)."""
    async with container.uow() as uow:
        workflow_id, version, new = await request_publish(
            uow=uow,
            principal=principal,
            course_id=course_id,
            documents=container.documents,
            run_status=container.workflow_starter().status,
            force=force,
        )
    try:
        status = await container.workflow_starter().start(
            names.PUBLISHING,
            {
                "course_id": str(course_id),
                "version": version,
                "workflow_id": workflow_id,
                "heartbeat_seconds": container.settings.publish_heartbeat_seconds,
            },
            workflow_id=workflow_id,
        )
    except Unavailable as exc:
        # Only an attempt this request made is taken back: a publish already under way (a second click while the
        # engine is briefly away) may well be running, and reverting it failed that run at go_live (explore21 F1).
        if new:
            async with container.uow() as uow:
                await revert_publish(uow=uow, course_id=course_id, workflow_id=workflow_id, not_started=str(exc))
            await container.invalidate_course_cache(course_id)  # a read meanwhile cached `publishing`
        raise
    return WorkflowStarted(workflow_id=workflow_id, status=status)


async def cancel_publish(*, container: Any, principal: Principal, course_id: uuid.UUID) -> CoursePublishCanceled:
    """Stop the course's running publish: the course is back at once (its live version, or the draft: editable,
    deletable, archivable), the run says `canceled`, and Temporal is asked to cancel the workflow, which stops its
    step, drops what the version built and ends `canceled`. 409 `not_publishing` when no publish runs (it went live
    or failed meanwhile).

    The database decides, not the cancel request: once this commits, the run cannot go live (its go-live checks that
    the course is still being published by it), so a cancel that Temporal never delivers (the engine away) still
    stops the run at its go-live, where its compensation drops the version without telling of a failure. A
    cancel that comes after the go-live committed finds the course published: 409, nothing undone."""
    async with container.uow() as uow:
        course = await load_course(uow, course_id, lock=True)
        await ensure_course_owner(uow, principal, course)
        workflow_id = course.publish_workflow_id
        if course.status != "publishing" or not workflow_id:
            raise Conflict(
                f"no publish of this course is running (it is {course.status})",
                code="not_publishing",
                details={"status": course.status},
            )
        now = utcnow()
        by_admin = principal.user_id != course.instructor_id  # only the owner or an admin gets here
        await uow.session.execute(
            update(WorkflowRun)
            .where(WorkflowRun.workflow_id == workflow_id)
            .values(
                status=operations.CANCELED,
                error=f"canceled by {'an admin' if by_admin else 'the instructor'}",
                finished_at=now,
                updated_at=now,
            )
        )
        course.publish_report = {
            **(course.publish_report or {}),
            "status": operations.CANCELED,
            "canceled_by": str(principal.user_id),
            "finished_at": iso(now),
        }
        if by_admin:
            # An admin's cancel is news to the instructor: told in-app and e-mailed (handed over at the request's
            # commit, `api/emails.py`), as a revocation's notice is.
            version = course.publish_report.get("version")
            live = "The published version stays live." if course.content_version > 0 else "It is back to draft."
            await create_notification(
                uow.session,
                user_id=course.instructor_id,
                kind="publish_canceled",
                title=f"Publishing “{course.title}” was canceled",
                body=f"An admin canceled the publish of version {version} of “{course.title}”. {live} "
                "Publish again when it is ready.",
                dedupe_key=f"publish-canceled:{workflow_id}",
                data={"course_id": str(course.id), "version": version, "workflow_id": workflow_id},
            )
        await revert_publish(uow=uow, course_id=course.id, workflow_id=workflow_id)  # returned, as a failure would
        await uow.session.refresh(course)
        summary = CoursePublishCanceled.model_validate(course)
    await container.invalidate_course_cache(course_id)
    try:
        await container.workflow_starter().cancel(workflow_id)
    except Unavailable:  # stopped at its go-live instead (see above)
        log.warning("publish %s canceled; the workflow engine was not told: the run ends at its go-live", workflow_id)
    return summary


# --- the steps (called by activities; each is idempotent) -------------------------------------


async def ensure_publishable(uow: UnitOfWork, course_id: uuid.UUID) -> None:
    """The rules a course must meet to be published: at least one lesson (hence a module holding it), 422
    `course_not_publishable`; and every prerequisite live, 422 `prerequisites_not_live` naming the others (a draft
    may list the instructor's own drafts while it is authored, but once live nobody could enroll in it)."""
    lesson = await uow.session.scalar(select(Lesson.id).where(Lesson.course_id == course_id).limit(1))
    if lesson is None:
        raise Invalid(
            "a course needs at least one module with a lesson before it can be published",
            code="course_not_publishable",
        )
    await ensure_prerequisites_live(uow, course_id, doing="a published course")


def _ensure_some_text(snapshot: dict[str, Any]) -> None:
    """A version whose lessons have no text (video lessons without their transcript, quizzes without questions) and
    which has no material would fail at its extract step, a version spent and a failure e-mailed (explore57 F3: a
    course of videos was accepted with 202, then failed): 422 `course_not_publishable` now, before any run. With a
    material the extract step decides (its text is known once read)."""
    from smartcourse.content.extract import sections_from_snapshot

    if snapshot.get("materials") or any(s.text.strip() for s in sections_from_snapshot(snapshot)):
        return
    lessons = [lesson for m in snapshot.get("modules") or [] for lesson in m.get("lessons") or []]
    raise Invalid(
        "the course has no text for search and the assistant: add a transcript to a video lesson, a text lesson, "
        "quiz questions or a material, then publish",
        code="course_not_publishable",
        details={"lessons_without_text": [str(lesson.get("title") or "") for lesson in lessons][:20]},
    )


async def validate_for_publish(
    *, uow: UnitOfWork, course_id: uuid.UUID, documents: Any = None, version: int | None = None
) -> None:
    """The workflow's `validate` step: `request_publish` checked the same, but a prerequisite may be archived since.
    When the request froze the version (`documents`, `version` given and its snapshot there), the lessons checked are
    the snapshot's, not the working copy's: deleting lessons after the 202 must not fail the version asked for
    (explore12 F6); else (a run requested without a snapshot) the working copy's."""
    await load_course(uow, course_id)
    frozen = (
        documents is not None
        and version is not None
        and await documents.get(VERSIONS, version_doc_id(course_id, version)) is not None
    )
    if not frozen:
        await ensure_publishable(uow, course_id)
        return
    await ensure_prerequisites_live(uow, course_id, doing="a published course")


async def snapshot_version(
    *, uow: UnitOfWork, documents: Any, course_id: uuid.UUID, version: int, keep_existing: bool = False
) -> str:
    """Freeze the working copy as content version `version` (a whole-document upsert: safe to repeat), less its
    modules that have no lesson. `keep_existing`: the workflow's step, which keeps the snapshot the publish request
    took (`request_publish`)."""

    doc_id = version_doc_id(course_id, version)
    if keep_existing and await documents.get(VERSIONS, doc_id) is not None:
        return doc_id
    course = await load_course(uow, course_id)
    modules = await build_structure(uow, documents, course_id)
    if not any(m.lessons for m in modules):
        # The lessons went between the check and this read (a delete committed meanwhile, explore11 F1): a version
        # with nothing to learn never goes live.
        raise Invalid(
            "a course needs at least one module with a lesson before it can be published",
            code="course_not_publishable",
        )
    materials = await documents.find(MATERIALS, {"course_id": str(course_id)})
    await documents.put(
        VERSIONS,
        doc_id,
        {
            "course_id": str(course_id),
            "version": version,
            "title": course.title,
            "created_at": datetime.now(UTC).isoformat(),
            "modules": snapshot_modules(modules),
            "materials": snapshot_materials(materials),
        },
    )
    return doc_id


#: A publish that took longer than this is also e-mailed when it goes live (a quicker one: in the feed only).
PUBLISH_EMAIL_AFTER = timedelta(minutes=1)


async def mark_published(
    *,
    uow: UnitOfWork,
    course_id: uuid.UUID,
    version: int,
    workflow_id: str,
    report: dict[str, Any] | None = None,
    lesson_ids: Collection[uuid.UUID] = (),
    completed: list[uuid.UUID] | None = None,
    emails: list[uuid.UUID] | None = None,
) -> bool:
    """Make `version` live — its content and its index — and write `course.published`, in one transaction.
    Students searching switch from the previous index version to this one at this commit. False if done.

    In the same transaction, the active enrollments that have every lesson of the version (`lesson_ids`) done are
    completed (a republish that removed the lessons a student was missing): their ids are added to `completed`, for
    the caller to start their certificate workflows after the commit (the sweeper starts any it missed). The
    notification a version live without some of its files sends (or the one saying it is live, after a publish of
    over `PUBLISH_EMAIL_AFTER`) goes into `emails`, for the caller to enqueue its e-mail after the commit (the
    sweeper sends it if that enqueue is lost)."""
    course = await load_course(uow, course_id, lock=True)
    if course.content_version >= version:
        return False
    if course.status != "publishing" or course.publish_workflow_id != workflow_id:
        raise Conflict("the course is no longer being published by this run", code="publish_superseded")
    now = utcnow()
    first_live = course.content_version == 0  # a failed first attempt spends a version: this may be 2 or more
    previous_index = course.index_version  # what students searched until this commit: the cleanup keeps it a while
    course.status = "published"
    course.content_version = version
    course.index_version = version
    course.index_status = "ready"
    course.publish_report = {
        **{k: v for k, v in (course.publish_report or {}).items() if k != "live"},  # this one is live now
        **(report or {}),
        "version": version,
        "status": "live",
        "finished_at": iso(now),
        "previous_index_version": previous_index,
    }
    course.published_at = now
    course.updated_at = now
    await uow.session.execute(
        update(WorkflowRun)
        .where(WorkflowRun.workflow_id == workflow_id)
        .values(status="completed", finished_at=now, updated_at=now)  # the last failure stays readable (explore55 F8)
    )
    finished: list[uuid.UUID] = []
    if not first_live:
        finished = list(await progress.complete_finished_enrollments(uow, course.id, lesson_ids))
        if completed is not None:
            completed.extend(finished)
    # What the go-live did to the cohort, said in the report and the instructor's notice (explore63 F3: a republish
    # that removed a lesson completed a student and issued their certificate, and nobody was told).
    course.publish_report = {**course.publish_report, "enrollments_completed": len(finished)}
    cohort = (
        f" It completed {len(finished)} enrollment{'s' if len(finished) != 1 else ''} whose students had done every "
        "lesson it keeps (their certificates are being issued)."
        if finished
        else ""
    )
    if skipped := course.publish_report.get("warnings"):
        # Live, but without some of its files: the instructor hears it as they hear of a failure (explore7 F11).
        listed = "; ".join(f"{s.get('filename')} ({s.get('message') or s.get('reason')})" for s in skipped[:10])
        more = f" and {len(skipped) - 10} more" if len(skipped) > 10 else ""
        notice = await create_notification(
            uow.session,
            user_id=course.instructor_id,
            kind="publish_warnings",
            title=f"“{course.title}” is live, but {len(skipped)} of its files could not be read"
            + ("" if all(s.get("reason") != "partly_unreadable" for s in skipped) else " in full"),
            body=f"Version {version} is live, but the text of these files (or of the pages named) could not be "
            f"read, so search and the assistant do not know it (students can still download them): {listed}{more}. "
            f"Upload them again in a readable form, then publish again.{cohort}",
            dedupe_key=f"publish-warnings:{workflow_id}",
            data={"course_id": str(course.id), "version": version, "workflow_id": workflow_id},
        )
        if emails is not None:
            emails.append(notice)
    else:
        # Live without a word said: learnt only by polling the workflow, after a publish that can take minutes
        # (explore57 F6). E-mailed when it took longer than `PUBLISH_EMAIL_AFTER`: the instructor has likely left.
        started = await uow.session.scalar(select(WorkflowRun.created_at).where(WorkflowRun.workflow_id == workflow_id))
        emailed = started is not None and now - started > PUBLISH_EMAIL_AFTER
        notice = await create_notification(
            uow.session,
            user_id=course.instructor_id,
            kind="publish_completed",
            title=f"“{course.title}” is live",
            body=f"Version {version} of “{course.title}” is live: students see it, and search and the assistant "
            f"know its content.{cohort}",
            dedupe_key=f"publish-completed:{workflow_id}",
            data={"course_id": str(course.id), "version": version, "workflow_id": workflow_id},
            email=emailed,
        )
        if emails is not None and emailed:
            emails.append(notice)
    uow.emit(
        DomainEvent(
            "course.published",
            str(course.id),
            {
                "course_id": str(course.id),
                "instructor_id": str(course.instructor_id),
                "version": version,
                "first_live": first_live,
                "title": course.title,
                "category": course.category,
            },
        )
    )
    await uow.commit()
    return True


async def complete_skipped_at_go_live(
    *, uow: UnitOfWork, course_id: uuid.UUID, version: int, lesson_ids: Collection[uuid.UUID]
) -> list[uuid.UUID]:
    """The go-live's second pass, after its commit (and again at each retry of the step, so nothing is left): the
    active enrollments with every lesson of `version` done that the go-live skipped because a request held them at
    that moment are completed now, waiting for those requests. Returns their ids (for their certificates).

    The course row is only KEY SHARE locked, which a drop or a progress request (NO KEY UPDATE, KEY SHARE) does
    not wait for, so they cannot deadlock with this; a newer version's go-live (FOR UPDATE) waits, and a version
    that is no longer the live one completes nothing (its lessons are not the course's any more)."""
    course = await uow.session.get(Course, course_id, with_for_update={"read": True, "key_share": True})
    if course is None or course.content_version != version or course.status not in ("published", "publishing"):
        return []
    finished = await progress.complete_finished_enrollments(uow, course_id, lesson_ids, wait=True)
    await uow.commit()
    return finished


#: Where a publish that did not go live leaves its course: its live version (or the draft), and the index as it
#: was. One place for the revert and for the next publish freeing a course its ended run left (`request_publish`).
_RETURNED: dict[str, Any] = {
    "status": case((Course.content_version > 0, "published"), else_="draft"),
    "index_status": case(
        (Course.index_status != "indexing", Course.index_status),
        (Course.index_version > 0, "ready"),
        else_="none",
    ),
}


async def revert_publish(
    *, uow: UnitOfWork, course_id: uuid.UUID, workflow_id: str, not_started: str | None = None
) -> None:
    """Compensation: a failed first publish returns to draft; a failed re-publish keeps the live version.

    `not_started`: the workflow could not be started (the engine down; the request answers 503): the run and the
    course's report say so, failed at `start`, so `/ops/workflows` lists it and the instructor's course does not
    read `running` (explore18 F3: both said `running` for good)."""
    if not_started is not None:
        now = utcnow()
        await uow.session.execute(
            update(WorkflowRun)
            .where(WorkflowRun.workflow_id == workflow_id, WorkflowRun.status == "running")
            .values(
                status="failed",
                failed_step="start",
                error=not_started,
                failures=WorkflowRun.failures + 1,  # one failed attempt, as `/ops/workflows` counts (explore30 F7)
                finished_at=now,
                updated_at=now,
            )
        )
        course = await uow.session.get(Course, course_id, with_for_update=True)
        report = dict(course.publish_report or {}) if course is not None else {}
        if course is not None and report.get("workflow_id") == workflow_id:
            report.update(status="failed", failed_step="start", error=not_started, finished_at=iso(now))
            course.publish_report = report
    await uow.session.execute(
        update(Course)
        .where(Course.id == course_id, Course.status == "publishing", Course.publish_workflow_id == workflow_id)
        .values(**_RETURNED, updated_at=utcnow())
    )
    await uow.commit()


# --- status ---------------------------------------------------------------------------------


async def workflow_status(*, container: Any, principal: Principal, workflow_id: str) -> WorkflowStatus:
    """Any workflow's status and steps (publishing, enrollment, certificate), for whoever started it (the
    instructor who published, the enrolled student), the owner of its course, and admins; with the last failure
    the workers recorded (step, error, trace id) even while Temporal is still retrying it."""

    async with container.uow() as uow:
        ref = await operations.resolve_run(uow.session, workflow_id)
        run = await uow.session.get(WorkflowRun, workflow_id)
        # The later run that resolved a failed one, as /ops/workflows names it (explore30 F1: always unresolved here).
        resolver = await operations.resolver_of(uow.session, run) if run is not None else None
        if ref is None:
            raise NotFound("workflow not found", code="workflow_not_found")
        allowed = principal.is_admin or ref.owner_id == principal.user_id
        if not allowed and ref.course_id is not None:
            course = await uow.session.get(Course, ref.course_id)
            allowed = course is not None and rules.teaches(principal, course.instructor_id)
        if not allowed:
            raise NotFound("workflow not found", code="workflow_not_found")
    status, steps, steps_unavailable = await describe(
        container,
        workflow_id,
        _STEP_NAMES.get(ref.kind, PUBLISH_STEPS),
        # Recorded as ended (its start failed: the engine was down; or canceled before it ran): if Temporal does not
        # know it, it never will run.
        never_runs=run.status if run is not None and run.status in ("failed", "canceled") else None,
        budget=DESCRIBE_BUDGET_SECONDS,
    )
    if any(s.status == "running" for s in steps):
        await _attach_progress(container, workflow_id, steps)
    error = next((s.error for s in steps if s.error), None)
    recorded = operations.workflow_item(run, resolver) if run is not None else None
    if error is None and recorded is not None and recorded["status"] in operations.PROBLEM_STATUSES:
        error = recorded["error"]
    if not principal.is_admin:  # the server's own paths are for operators (explore40 F8: a student read one)
        steps = [s.model_copy(update={"error": without_paths(s.error)}) if s.error else s for s in steps]
        error = without_paths(error)
        if recorded is not None:
            recorded = {**recorded, "error": without_paths(recorded.get("error"))}
    return WorkflowStatus(
        workflow_id=workflow_id,
        kind=ref.kind,
        status=status,
        steps=steps,
        error=error,
        subject=ref.subject,
        failure=recorded if recorded is not None and recorded["failed_step"] else None,
        steps_unavailable=steps_unavailable,
    )


_STEP_NAMES: dict[str, tuple[str, ...]] = {
    "course_publishing": PUBLISH_STEPS,
    "enrollment": tuple(name for name, _ in names.ENROLLMENT_STEPS),
    "certificate": names.CERTIFICATE_STEPS,
}


async def _attach_progress(container: Any, workflow_id: str, steps: list[WorkflowStep]) -> None:
    """A running step's last heartbeat ({"done", "total"}), read from Temporal's pending activities."""
    try:
        client = await container.temporal()
        desc = await client.get_workflow_handle(workflow_id).describe()
        by_name: dict[str, Any] = {}
        for pa in desc.raw_description.pending_activities:
            if pa.heartbeat_details and pa.heartbeat_details.payloads:
                values = await client.data_converter.decode(pa.heartbeat_details.payloads)
                if values and isinstance(values[-1], dict):
                    by_name[pa.activity_type.name.removeprefix("publish.")] = values[-1]
        for step in steps:
            if step.status == "running" and step.name in by_name:
                step.progress = by_name[step.name]
    except Exception:  # progress is a nicety: the status read must not fail because of it
        log.debug("no progress for %s", workflow_id, exc_info=True)
