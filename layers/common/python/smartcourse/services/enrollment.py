"""Enrollment: admission (race-free, idempotent), waitlist, drop with promotion, history, the workflow's steps."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Boolean,
    DateTime,
    Integer,
    String,
    Text,
    and_,
    bindparam,
    case,
    func,
    literal,
    null,
    or_,
    select,
    true,
    update,
)
from sqlalchemy import cast as sa_cast
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import aliased

from smartcourse.db import UnitOfWork, note_new_email, outbox_values
from smartcourse.domain import courses as course_rules
from smartcourse.domain import enrollment as rules
from smartcourse.domain.certificates import history_reason_for_others
from smartcourse.domain.events import DomainEvent
from smartcourse.domain.moments import in_utc
from smartcourse.errors import Conflict, Forbidden, NotFound
from smartcourse.models import (
    Certificate,
    Course,
    CoursePrerequisite,
    Enrollment,
    EnrollmentHistory,
    LessonProgress,
    Notification,
    OutboxEvent,
    QuizAttempt,
    User,
    utcnow,
)
from smartcourse.schemas import (
    CertificatePublic,
    EnrollmentDetail,
    EnrollmentPublic,
    HistoryEntry,
    MyCourse,
    RosterEntry,
    RosterPage,
)
from smartcourse.security import Principal
from smartcourse.services.accounts import containing, people_order
from smartcourse.services.courses import ensure_course_owner, load_course, teaches_course
from smartcourse.services.learner_view import published_lessons, published_lessons_by_version, published_lessons_of
from smartcourse.services.notifications import create_notification
from smartcourse.services.search import is_enrolled
from smartcourse.services.waitlist import enrollment_event, give_back_seat, history_entry, mark_dropped

ANALYTICS_NS = uuid.UUID("5b0c3f4e-8f0b-4b5e-9a53-2d0a3b7f1c11")


async def waitlist_position(uow: UnitOfWork, e: Enrollment) -> int | None:
    """Its place in its course's waitlist (1: next to be promoted), None when it is not waiting."""
    return (await waitlist_positions(uow, [e])).get(e.id)


async def waitlist_positions(uow: UnitOfWork, enrollments: list[Enrollment]) -> dict[uuid.UUID, int]:
    """`waitlist_position` of each waitlisted enrollment of `enrollments`, in one statement."""
    waiting = [e for e in enrollments if e.status == "waitlisted" and e.waitlisted_at is not None]
    if not waiting:
        return {}
    me, ahead = aliased(Enrollment), aliased(Enrollment)
    counted = (
        select(func.count())
        .select_from(ahead)
        .where(
            ahead.course_id == me.course_id,
            ahead.status == "waitlisted",
            (ahead.waitlisted_at < me.waitlisted_at) | ((ahead.waitlisted_at == me.waitlisted_at) & (ahead.id < me.id)),
        )
        .scalar_subquery()
    )
    rows = await uow.session.execute(select(me.id, counted).where(me.id.in_([e.id for e in waiting])))
    return {enrollment_id: int(n or 0) + 1 for enrollment_id, n in rows}


async def to_public(uow: UnitOfWork, e: Enrollment, percent: float | None = None) -> EnrollmentPublic:
    return _public(e, percent, await waitlist_position(uow, e))


def _public(e: Enrollment, percent: float | None, position: int | None) -> EnrollmentPublic:
    return EnrollmentPublic(
        id=e.id,
        student_id=e.student_id,
        course_id=e.course_id,
        status=e.status,
        attempt=e.attempt,
        workflow_id=e.workflow_id,
        position=position,
        created_at=e.created_at,
        admitted_at=e.admitted_at,
        activated_at=e.activated_at,
        completed_at=e.completed_at,
        dropped_at=e.dropped_at,
        completion_revoked_at=e.completion_revoked_at,
        percent=percent,
    )


async def repeat_of(
    *,
    uow: UnitOfWork,
    principal: Principal,
    course_id: uuid.UUID,
    idempotency_key: str | None,
    student_id: uuid.UUID | None = None,
) -> EnrollmentPublic | None:
    """The answer `enroll` would give a repeat (the key's enrollment, or the student's live one in the course), or
    None when the request would admit someone: for answering repeats while new admissions are shed."""
    student = student_id if student_id is not None and principal.is_admin else principal.user_id
    found = await _existing(uow, student, course_id, idempotency_key)
    if found is None or (not found.is_current and not _made_with(found, idempotency_key)):
        return None
    return await _repeat(uow, found, course_id, idempotency_key)


async def would_wait(uow: UnitOfWork, course_id: uuid.UUID) -> bool:
    """Whether a new request for the course would join its waitlist, not take a seat, as far as it reads now: a
    waitlisting adds nothing to the admitted-not-active backlog the admission gate guards (explore84 F4: refused 503,
    the first students to ask for a full course were waitlisted behind later ones). A seat freed meanwhile is taken
    past the gate: its ceiling is a soft one."""
    row = (
        await uow.session.execute(
            select(Course.capacity, Course.seats_taken, Course.waitlist_enabled).where(Course.id == course_id)
        )
    ).first()
    return row is not None and row.waitlist_enabled and row.capacity is not None and row.seats_taken >= row.capacity


async def _existing(uow: UnitOfWork, student_id: uuid.UUID, course_id: uuid.UUID, key: str | None) -> Enrollment | None:
    """The enrollment made with this Idempotency-Key, else the student's live one in the course: one query."""
    match = (Enrollment.course_id == course_id) & Enrollment.current()
    if key:
        match = match | (Enrollment.idempotency_key == key)
    rows = list(await uow.session.scalars(select(Enrollment).where(Enrollment.student_id == student_id, match)))
    if key:
        for row in rows:
            if row.idempotency_key == key:
                return row
    return next((r for r in rows if r.course_id == course_id and r.is_current), None)


def _made_with(e: Enrollment, key: str | None) -> bool:
    return bool(key) and e.idempotency_key == key


async def _repeat(uow: UnitOfWork, found: Enrollment, course_id: uuid.UUID, key: str | None) -> EnrollmentPublic:
    """The answer to a repeat: the enrollment its Idempotency-Key made, or the student's live one in the course. A
    key first used for another course is refused (409 `idempotency_key_reused`), also when this request lost the
    race to that one at the unique index."""
    if _made_with(found, key) and found.course_id != course_id:
        # Named (explore68 F10: a script whose first answer was lost could not tell which enrollment the key made).
        raise Conflict(
            "this Idempotency-Key was used for another course",
            code="idempotency_key_reused",
            details={"enrollment_id": str(found.id), "course_id": str(found.course_id)},
        )
    return await to_public(uow, found)


@functools.cache
def _facts_statement() -> Any:
    """Everything the admission decides on before it takes the lock, in one statement built once per process:

    * the enrollment made with this Idempotency-Key, else the student's live one in the course (`_existing`'s
      answer; a repeat is then loaded by id);
    * whether the course exists and is live, the student's last attempt at it and its prerequisites (all of them,
      and those the student completed).

    Selected as scalar subqueries without a FROM, so a row comes back even for an unknown course (the key's
    enrollment in another course is still found). No lock: only the seat needs one (see `_admit`)."""
    student_id = bindparam("student_id", type_=_ID)
    course_id = bindparam("course_id", type_=_ID)
    key = bindparam("key", type_=String)
    existing = (
        select(Enrollment.id)
        .where(
            Enrollment.student_id == student_id,
            or_(
                (Enrollment.course_id == course_id) & Enrollment.current(),
                key.is_not(None) & (Enrollment.idempotency_key == key),
            ),
        )
        .order_by(case((Enrollment.idempotency_key == key, 0), else_=1))  # the key's own first
        .limit(1)
        .scalar_subquery()
    )
    status = select(Course.status).where(Course.id == course_id).scalar_subquery()
    content_version = select(Course.content_version).where(Course.id == course_id).scalar_subquery()
    last_attempt = (
        select(func.coalesce(func.max(Enrollment.attempt), 0))
        .where(Enrollment.student_id == student_id, Enrollment.course_id == course_id)
        .scalar_subquery()
    )
    required = (
        select(func.array_agg(CoursePrerequisite.prerequisite_id))
        .where(CoursePrerequisite.course_id == course_id)
        .scalar_subquery()
    )
    completed = (
        select(func.array_agg(Enrollment.course_id))
        .join(CoursePrerequisite, CoursePrerequisite.prerequisite_id == Enrollment.course_id)
        .where(
            CoursePrerequisite.course_id == course_id,
            Enrollment.student_id == student_id,
            Enrollment.status == "completed",
            # A completion whose certificate an admin revoked (fraud found, issued in error) prepares for nothing
            # (explore29 F2: it still opened the next course); a retake's completion does.
            Enrollment.completion_revoked_at.is_(None),
        )
        .scalar_subquery()
    )
    # Who ended the student's latest enrollment in the course, when it was their instructor or an admin: a removal
    # sticks until an admin enrolls the student again (explore63 F2: a removed student was back minutes later, ahead
    # of the waitlist). Found through the (student, course) index and the history's enrollment index; a first
    # enrollment reads no history.
    latest = (
        select(Enrollment.id)
        .where(Enrollment.student_id == student_id, Enrollment.course_id == course_id)
        .order_by(Enrollment.attempt.desc())
        .limit(1)
        .scalar_subquery()
    )
    removed_by = (
        select(EnrollmentHistory.actor)
        .where(
            EnrollmentHistory.enrollment_id == latest,
            EnrollmentHistory.to_status == "dropped",
            EnrollmentHistory.actor.in_(("instructor", "admin")),
        )
        .limit(1)
        .scalar_subquery()
    )
    return select(existing, status, content_version, last_attempt, required, completed, removed_by)


_TS = DateTime(timezone=True)
_ID = PG_UUID(as_uuid=True)


def _admission_params(
    e: Enrollment, actor: Principal, pending: dict[str, Any], waitlisted: dict[str, Any], workflow_id: str
) -> dict[str, Any]:
    """The parameters of both admission statements (`_seat_statement`, `_waitlist_statement`)."""
    return {
        "now": e.created_at,
        "course_id": e.course_id,
        "enrollment_id": e.id,
        "student_id": e.student_id,
        "attempt": e.attempt,
        "workflow_id": workflow_id,
        "idempotency_key": e.idempotency_key or None,
        "actor_id": actor.user_id,
        "actor": "admin" if actor.is_admin else "student",
        **_outbox_params("pending", pending),
        **_outbox_params("waitlisted", waitlisted),
    }


_OUTBOX_COLUMNS = [
    "id", "topic", "event_type", "schema_version", "aggregate_id", "payload", "trace_context", "occurred_at"
]  # fmt: skip


def _history_cte(written: Any, src: Any, dst: str, actor_id: Any, actor: Any, reason: str) -> Any:
    """The history entry of the enrollment a statement wrote (each row of the CTE `written`, none if it wrote none)
    at the parameter `now`, as a CTE."""
    return (
        pg_insert(EnrollmentHistory)
        .from_select(
            ["enrollment_id", "from_status", "to_status", "actor_id", "actor", "reason", "at"],
            select(
                written.c.id, src, literal(dst), actor_id, actor, literal(reason), bindparam("now", type_=_TS)
            ).select_from(written),
        )
        .returning(EnrollmentHistory.id)
        .cte("history")
    )


def _written(admitted: Any, status: str, reason: str, prefix: str) -> tuple[Any, Any]:
    """The history entry and the outbox event (`_outbox_row(prefix)`) of the enrollment the statement wrote (a row
    of the `admitted` CTE; none written when it wrote none), as CTEs."""
    history = _history_cte(
        admitted, null(), status, bindparam("actor_id", type_=_ID), bindparam("actor", type_=String), reason
    )
    event = (
        pg_insert(OutboxEvent)
        .from_select(
            _OUTBOX_COLUMNS,
            _outbox_row(prefix, bindparam("now", type_=_TS)).select_from(admitted),
            include_defaults=False,  # the server's defaults: see `_waitlist_notice`
        )
        .returning(OutboxEvent.id)
        .cte("event")
    )
    return history, event


_ENROLLMENT_COLUMNS = [
    "id",
    "student_id",
    "course_id",
    "status",
    "attempt",
    "workflow_id",
    "idempotency_key",
    "waitlisted_at",
    "admitted_at",
    "created_at",
    "updated_at",
]


def _has_seat() -> Any:
    """The course row has a free seat (no capacity, or seats left)."""
    return or_(Course.capacity.is_(None), Course.seats_taken < Course.capacity)


def _is_live() -> Any:
    """The course row takes enrollments (`domain.courses.is_live`), as read under its lock: an archive that committed
    while an admission waited for the row is seen (the facts statement's check, without a lock, may predate it)."""
    return Course.live()


def _enrollment_row(course_id: Any, status: str, workflow_id: Any, waitlisted_at: Any, admitted_at: Any) -> Any:
    """The SELECT list of the enrollment an admission statement writes (`_ENROLLMENT_COLUMNS`, in order)."""
    now = bindparam("now", type_=_TS)
    return select(
        bindparam("enrollment_id", type_=_ID),
        bindparam("student_id", type_=_ID),
        course_id,
        literal(status),
        bindparam("attempt", type_=Integer),
        workflow_id,
        bindparam("idempotency_key", type_=String),
        waitlisted_at,
        admitted_at,
        now,
        now,
    )


@functools.cache
def _seat_statement() -> Any:
    """The admission with a seat, in ONE statement built once per process: take a free seat (a conditional UPDATE of
    the course row: it waits for the admissions ahead and re-checks the seat on the row they left), and only if
    it got one, write the pending enrollment, its history entry and its `enrollment.created` event. Returns one row
    with the enrollment's id, none when the course had no free seat (then `_waitlist_statement`).

    The row is touched once, by the UPDATE. Locking it first (SELECT ... FOR NO KEY UPDATE in one CTE) and updating
    it in another, as the admission did, deadlocked now and then under load: with key-share lockers on the row (the
    recommendations consumer's insert of the course's popularity row), the update queued behind an admission that
    was itself waiting for the lock the statement held (tests/e2e/test_enrollment.py)."""
    now = bindparam("now", type_=_TS)
    course_id = bindparam("course_id", type_=_ID)
    seat = (
        update(Course)
        .where(Course.id == course_id, _has_seat(), _is_live())
        .values(seats_taken=Course.seats_taken + 1)
        .returning(Course.id)
        .cte("seat")
    )
    admitted = (
        pg_insert(Enrollment)
        .from_select(
            _ENROLLMENT_COLUMNS,
            _enrollment_row(seat.c.id, "pending", bindparam("workflow_id", type_=String), null(), now),
        )
        .returning(Enrollment.id)
        .cte("admitted")
    )
    history, event = _written(admitted, "pending", "enrolled", "pending")
    return select(admitted.c.id).add_cte(history).add_cte(event)


@functools.cache
def _waitlist_statement() -> Any:
    """The admission without a seat, in ONE statement built once per process: lock the course row (FOR NO KEY
    UPDATE: the waitlist's order is the lock's) and, if it still has no free seat and keeps a waitlist, write the
    waitlisted enrollment (its time read under the lock), its history entry and its `enrollment.created` event.
    Returns (course id, takes enrollments, has a seat now, the enrollment's id or NULL, its waitlisted_at, its
    `waitlist.joined` notification's id); no row: no such course.
    A seat freed since `_seat_statement` looked: nothing written, has a seat → the caller tries the seat again."""
    course_id = bindparam("course_id", type_=_ID)
    course = (
        select(
            Course.id,
            Course.title,
            Course.waitlist_enabled,
            _has_seat().label("has_seat"),
            _is_live().label("live"),
        )
        .where(Course.id == course_id)
        .with_for_update(of=Course, key_share=True)  # FOR NO KEY UPDATE: waitlistings are serial, FK inserts pass
        .cte("course")
    )
    admitted = (
        pg_insert(Enrollment)
        .from_select(
            _ENROLLMENT_COLUMNS,
            # The waitlist's order is the lock's: its time is read under the course row lock (clock_timestamp, not
            # the request's clock), so a later place in the queue never has an earlier time.
            _enrollment_row(course.c.id, "waitlisted", null(), func.clock_timestamp(), null()).where(
                ~course.c.has_seat, course.c.waitlist_enabled, course.c.live
            ),
        )
        .returning(Enrollment.id, Enrollment.waitlisted_at)
        .cte("admitted")
    )
    history, event = _written(admitted, "waitlisted", "course full", "waitlisted")
    notice = _waitlist_notice(admitted, course)
    return (
        select(
            course.c.id,
            course.c.live,
            course.c.has_seat,
            select(admitted.c.id).scalar_subquery(),
            select(admitted.c.waitlisted_at).scalar_subquery(),
            select(notice.c.id).scalar_subquery(),
        )
        .add_cte(history)
        .add_cte(event)
        .add_cte(notice)
    )


def _waitlist_notice(admitted: Any, course: Any) -> Any:
    """The student's `waitlist.joined` notification (its e-mail pending: handed over after the request's commit, as
    `create_notification`'s are; else the sweeper sends it) for the enrollment the
    waitlist statement wrote, as a CTE: a 202 `waitlisted` was all they were told (explore36 F4). No place number in
    it: under the lock the statement's snapshot may not count a place committed while it waited; the enrollment
    shows the place (`waitlist_position`)."""
    enrollment_id = _text(admitted.c.id)
    return (
        pg_insert(Notification)
        .from_select(
            # The server's defaults for the other columns (include_defaults=False, as in `_written`): with two insert
            # CTEs rendering their Python-side defaults as parameters, the outbox's `attempts` was sent NULL.
            [
                "id",
                "user_id",
                "kind",
                "title",
                "body",
                "data",
                "dedupe_key",
                "email_status",
                "created_at",
            ],
            select(
                func.gen_random_uuid(),
                bindparam("student_id", type_=_ID),
                literal("waitlist.joined"),
                func.concat("You are on the waitlist of “", course.c.title, "”"),
                func.concat(
                    "The course “",
                    course.c.title,
                    "” is full, so you are on its waitlist. When a seat comes free it goes to the first student in "
                    "line, and you will be told when it is yours. Your enrollment shows your place in the line; drop "
                    "it to leave the waitlist.",
                ),
                func.jsonb_build_object("enrollment_id", enrollment_id, "course_id", _text(course.c.id)),
                func.concat("waitlist-joined:", enrollment_id),
                literal("pending"),
                bindparam("now", type_=_TS),
            ).select_from(admitted.join(course, true())),
            include_defaults=False,
        )
        .returning(Notification.id)
        .cte("notice")
    )


def _text(column: Any) -> Any:
    """`column`::text."""
    return sa_cast(column, Text)


async def enroll(
    *,
    uow: UnitOfWork,
    principal: Principal,
    course_id: uuid.UUID,
    idempotency_key: str | None,
    student_id: uuid.UUID | None = None,
) -> tuple[EnrollmentPublic, bool]:
    """Admit, waitlist or refuse. Returns (enrollment, created); a repeat returns the existing one.

    Seats are taken under the course's row lock (so concurrent admissions to one course are serial and
    the waitlist is in commit order); duplicates are refused by the unique index on live enrollments.
    Starting the enrollment workflow is not part of the admission: the dispatcher (services/dispatcher.py)
    starts it from the `enrollment.created` event committed here.

    Statements each committing on its own (READ COMMITTED gave each its own snapshot before too): the
    existing/idempotent lookup with the course's facts, the student's attempt and prerequisites (no lock, as the
    live check always was: `_facts_statement`); then the admission (`_admit`): one statement that takes a free seat
    and writes enrollment, history and outbox event (`_seat_statement`), or, when the course had none, one that
    locks the course row and writes the waitlisted enrollment (`_waitlist_statement`). Row locks are held only
    inside PostgreSQL, so admissions to one course are serial at the database's speed, not at the client's round
    trips. Two statements with a seat, three on the waitlist.

    `student_id` (an admin's request): that student is enrolled, by the same rules, the history's actor the admin
    (explore68 F2: an academy's admin could not enroll an employee in a mandatory course; a script logged in as each).
    """
    for_another = refuse_who_never_enrolls(principal, student_id)
    # The statements below are Core statements: they run on the session's connection itself, past the ORM's
    # statement path (its compile state and result set-up: docs/benchmarks.md, "Ninth pass"). Taken before any
    # read, or its autocommit would be ignored (the admin's check below reads on it too).
    conn = await uow.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    if for_another:
        assert student_id is not None
        await _enrollable(conn, student_id)
    else:
        student_id = principal.user_id
    params = {"student_id": student_id, "course_id": course_id, "key": idempotency_key or None}
    for _ in range(3):
        existing_id, status, content_version, last_attempt, required, completed, removed_by = (
            await conn.execute(_facts_statement(), params)
        ).one()
        found = await uow.session.get(Enrollment, existing_id) if existing_id is not None else None
        if found is not None and not found.is_current and not _made_with(found, idempotency_key):
            # Live when the facts were read, dropped (by a concurrent DELETE) or its completion revoked when loaded:
            # read them again rather than answer an enroll request with an enrollment that no longer holds the place.
            uow.session.expunge(found)
            continue
        break
    if found is not None:
        return await _repeat(uow, found, course_id, idempotency_key), False
    if status is None:
        raise NotFound("course not found", code="course_not_found")
    if not course_rules.is_live(status, content_version):
        # Never published: hidden from everyone but its owner (a read answers 404), and a write does not reveal what
        # a read hides. An archived course is known to its students (their read shows it): 409; to anyone else its
        # read is 404, and so is this (explore60 F11: 404 to read, 409 course_not_published to enroll).
        # An admin reads any course (explore69 F9: 404 for a course the admin had just read).
        if principal.is_admin or (content_version and await is_enrolled(uow, student_id, course_id)):
            if status == "archived":  # as its edits, uploads and publish say (explore77 F6: "not published")
                raise Conflict("the course is archived: it takes no enrollment", code="course_archived")
            raise Conflict("the course is not published", code="course_not_published")
        raise NotFound("course not found", code="course_not_found")
    if removed_by is not None and not for_another:
        await _refuse_the_removed(conn, student_id, course_id, removed_by)
    if required:
        missing = rules.missing_prerequisites(required, completed or [])
        if missing:
            # A prerequisite archived since it was required can no longer be taken: say so, rather than send the
            # student to a course they cannot enroll in (explore36 F2). Read only on this refusal.
            withdrawn = sorted(
                str(c)
                for c in await conn.scalars(
                    select(Course.id).where(Course.id.in_([uuid.UUID(m) for m in missing]), Course.status == "archived")
                )
            )
            # Named by their titles (explore63 F6: only their ids, in `details`, said which).
            titles = dict(
                (
                    await conn.execute(
                        select(Course.id, Course.title).where(Course.id.in_([uuid.UUID(m) for m in missing]))
                    )
                ).all()
            )
            named = ", ".join(f"“{titles[uuid.UUID(m)]}”" for m in missing if uuid.UUID(m) in titles)
            message = "complete the prerequisite courses first" + (f": {named}" if named else "")
            if withdrawn:
                message += (
                    f"; {len(withdrawn)} of them ({', '.join(withdrawn)}) {'is' if len(withdrawn) == 1 else 'are'} "
                    "no longer offered (archived), so this "
                    "course cannot be taken until its instructor changes its prerequisites"
                )
            raise Conflict(message, code="prerequisites_not_met", details={"missing": missing, "withdrawn": withdrawn})
    attempt = 1 + int(last_attempt or 0)
    now = utcnow()
    workflow_id = rules.enrollment_workflow_id(course_id, student_id, attempt)
    e = Enrollment(
        id=uuid.uuid4(),
        student_id=student_id,
        course_id=course_id,
        attempt=attempt,
        idempotency_key=idempotency_key,
        created_at=now,
        updated_at=now,
    )
    # The event as it will read with a seat and on the waitlist (same id): the statement writes the one that holds.
    e.status, e.admitted_at, e.workflow_id = "pending", now, workflow_id
    admitted_event = _created_event(e)
    e.status, e.admitted_at, e.workflow_id, e.waitlisted_at = "waitlisted", None, None, now
    waitlisted_event = _created_event(e, like=admitted_event)
    params = _admission_params(
        e, principal, outbox_values(admitted_event), outbox_values(waitlisted_event), workflow_id
    )
    try:
        written = await _admit(conn, params, uow.session)
    except IntegrityError:
        # A concurrent identical request won: nothing of ours was written (each statement is atomic).
        await uow.session.rollback()
        found = await _existing(uow, student_id, course_id, idempotency_key)
        if found is None:
            raise
        return await _repeat(uow, found, course_id, idempotency_key), False
    if written is None:
        e.status, e.admitted_at, e.workflow_id, e.waitlisted_at = "pending", now, workflow_id, None
        uow.emitted.append(admitted_event)
    else:
        e.waitlisted_at = written  # the time under the lock: the position below counts by it
        uow.emitted.append(waitlisted_event)
    await uow.commit()
    return await to_public(uow, e, 0.0), True  # nothing done yet: the same 0.0 that GET answers


#: How often the admission goes back to the seat when the waitlist statement finds one freed meanwhile.
_SEAT_RETRIES = 10


def refuse_who_never_enrolls(principal: Principal, student_id: uuid.UUID | None) -> bool:
    """403 for a request no admission can answer (someone but an admin naming a student; an instructor or an admin
    enrolling themselves); whether it names another student."""
    named = student_id is not None and student_id != principal.user_id
    if named and not principal.is_admin:
        raise Forbidden("only an admin enrolls someone else", code="admin_only")
    if not named and principal.role != "student":
        raise Forbidden("only students enroll in courses", code="role_forbidden")
    return named


async def _refuse_the_removed(
    conn: AsyncConnection, student_id: uuid.UUID, course_id: uuid.UUID, removed_by: str
) -> None:
    """409 `removed_from_course` for a student whose latest enrollment in the course its instructor or an admin ended,
    with when and why (read only on this refusal). An admin's enrollment of the student lifts it (the latest enrollment
    is then the admin's)."""
    found = (
        await conn.execute(
            select(EnrollmentHistory.at, EnrollmentHistory.reason)
            .join(Enrollment, Enrollment.id == EnrollmentHistory.enrollment_id)
            .where(
                Enrollment.student_id == student_id,
                Enrollment.course_id == course_id,
                EnrollmentHistory.to_status == "dropped",
            )
            .order_by(Enrollment.attempt.desc(), EnrollmentHistory.at.desc())
            .limit(1)
        )
    ).first()
    by = "the course's instructor" if removed_by == "instructor" else "an administrator"
    given = found.reason if found is not None and found.reason != f"removed by {by}" else None  # the default's words
    because = f" (the reason given: {given})" if given else ""
    raise Conflict(
        f"you were removed from this course by {by}{because}: only an administrator can enroll you in it again",
        code="removed_from_course",
        details={"removed_by": removed_by, "removed_at": found.at.isoformat() if found is not None else None},
    )


async def _enrollable(conn: AsyncConnection, student_id: uuid.UUID) -> None:
    """The account an admin enrolls exists, is a student's and is active (one read, on the admin's path only)."""
    found = (await conn.execute(select(User.role, User.is_active).where(User.id == student_id))).first()
    if found is None:
        raise NotFound("no account has this student_id", code="user_not_found")
    if found.role != "student":
        raise Conflict(
            f"this account is an {found.role}'s: only students enroll (an admin makes it a student first)",
            code="not_a_student",
        )
    if not found.is_active:
        raise Conflict("this account is disabled: it cannot be enrolled", code="student_disabled")


async def _admit(conn: AsyncConnection, params: dict[str, Any], session: AsyncSession) -> datetime | None:
    """Take a seat (`_seat_statement`), else a place on the waitlist (`_waitlist_statement`), each in one statement
    committing on its own. Returns None for a seat, the waitlisted_at of a place (its notice's e-mail noted on
    `session`, handed over at the unit of work's commit); raises NotFound / course_full."""
    for _ in range(_SEAT_RETRIES):
        if (await conn.execute(_seat_statement(), params)).first() is not None:
            return None
        row = (await conn.execute(_waitlist_statement(), params)).first()
        if row is None:
            raise NotFound("course not found", code="course_not_found")
        _, live, has_seat, enrollment_id, waitlisted_at, notice_id = row
        if not live:  # archived while this admission waited for the course row: nothing was written
            raise Conflict("the course is archived: it takes no enrollment", code="course_archived")
        if has_seat:
            continue  # a seat was freed between the two statements: take it
        if enrollment_id is None:
            raise Conflict("the course is full", code="course_full")
        note_new_email(session, notice_id)
        return cast(datetime, waitlisted_at)
    raise Conflict("the course's seats are changing hands too fast; retry", code="admission_contended")


def _created_event(e: Enrollment, like: DomainEvent | None = None) -> DomainEvent:
    """`enrollment.created` for `e` as it stands; `like`: another version of the same event (same id and time)."""
    event = enrollment_event(
        "enrollment.created",
        e,
        status=e.status,
        attempt=e.attempt,
        workflow_id=e.workflow_id,
        admitted_at=e.admitted_at.isoformat() if e.admitted_at else None,
    )
    return event if like is None else replace(event, id=like.id, occurred_at=like.occurred_at)


async def _load_for(
    uow: UnitOfWork, principal: Principal, enrollment_id: uuid.UUID, *, lock: bool = False
) -> Enrollment:
    e = await uow.session.get(Enrollment, enrollment_id, with_for_update=lock)
    if e is None or not (principal.is_admin or e.student_id == principal.user_id):
        raise NotFound("enrollment not found", code="enrollment_not_found")
    return e


async def load_readable(uow: UnitOfWork, principal: Principal, enrollment_id: uuid.UUID) -> Enrollment:
    """The enrollment for a reader: its student, admins, and the course's instructor, who has it on the roster and
    reads its progress and review (explore20 F10: the detail and the history were 404 to them); anyone else 404."""
    e = await uow.session.get(Enrollment, enrollment_id)
    if e is not None and not (principal.is_admin or e.student_id == principal.user_id):
        if not await teaches_course(uow, principal, e.course_id):
            e = None
    if e is None:
        raise NotFound("enrollment not found", code="enrollment_not_found")
    return e


async def drop(
    *, uow: UnitOfWork, principal: Principal, enrollment_id: uuid.UUID, reason: str | None = None
) -> tuple[EnrollmentPublic, Any]:
    """Drop; a freed seat goes to the first waitlisted student in the same transaction. `reason` goes to the history
    entry. The student, an admin, or the course's instructor (removing a student from their course: explore63 F1,
    it was the admins' alone) drops it. A student removed by someone else is told (notification `enrollment.removed`,
    with the reason; its e-mail goes at the request's commit: `api/emails.py`).

    Returns (the dropped enrollment, the promoted enrollment or None).
    """
    e = await uow.session.get(Enrollment, enrollment_id, with_for_update=True)
    if e is None:
        raise NotFound("enrollment not found", code="enrollment_not_found")
    by_teacher = False
    if not (principal.is_admin or e.student_id == principal.user_id):
        by_teacher = await teaches_course(uow, principal, e.course_id)
        if not by_teacher:  # anyone else learns nothing
            raise NotFound("enrollment not found", code="enrollment_not_found")
    if e.status == "dropped":
        return await to_public(uow, e), None
    if not rules.can_transition(e.status, "dropped"):
        raise Conflict(f"a {e.status} enrollment cannot be dropped", code="enrollment_not_droppable")
    now = utcnow()
    removed = principal.user_id != e.student_id
    by = "the course's instructor" if by_teacher else "an administrator"
    freed = mark_dropped(uow, e, principal, reason or (f"removed by {by}" if removed else "dropped"), now)
    promoted = None
    # Lock the course row when a seat is freed: admissions and promotions of this course happen one at a time.
    course = await uow.session.get(Course, e.course_id, with_for_update=True if freed else None)
    assert course is not None
    if freed:
        promoted = await give_back_seat(uow, course, now)
    if removed:
        because = f" The reason given: {reason}" if reason else ""
        await create_notification(
            uow.session,
            user_id=e.student_id,
            kind="enrollment.removed",
            title=f"You were removed from “{course.title}”",
            body=f"{by[:1].upper()}{by[1:]} removed your enrollment in “{course.title}”.{because}",
            dedupe_key=f"enrollment-removed:{e.id}:{e.attempt}",
            data={"enrollment_id": str(e.id), "course_id": str(course.id), "reason": reason},
        )
    await uow.flush()
    dropped = await to_public(uow, e)
    await uow.commit()
    return dropped, promoted


async def roster(
    *,
    uow: UnitOfWork,
    principal: Principal,
    course_id: uuid.UUID,
    status: str | None,
    page: int,
    page_size: int,
    documents: Any = None,
    q: str | None = None,
    sort: str | None = None,
    updated_since: datetime | None = None,
) -> RosterPage:
    """A course's enrollments for its instructor or an admin (anyone else: what `GET /courses/{id}` tells them, 404
    or 403), newest first, with each student's name and a waitlisted one's place; `status` filters, and the waitlist
    (`status=waitlisted`) is in its order, first in line first (explore36 F5: newest first read as the queue
    reversed). With `documents`, each entry has its `percent` (as `GET /enrollments/{id}` computes it) and its
    `last_activity_at` (the latest lesson completed or quiz answered): how the cohort is doing in one request
    (explore63 F4: one request per student). `q` keeps the students whose name contains it and `sort="name"` sorts by
    name, accents and case aside (`accounts.containing`, `accounts.people_order`: explore65 F12, an instructor with
    hundreds of students could not find `Nguyễn`)."""
    course = await load_course(uow, course_id)
    await ensure_course_owner(uow, principal, course)
    queue = (
        select(
            Enrollment.id.label("id"),
            func.row_number().over(order_by=(Enrollment.waitlisted_at, Enrollment.id)).label("position"),
        )
        .where(Enrollment.course_id == course_id, Enrollment.status == "waitlisted")
        .subquery()
    )
    where = [Enrollment.course_id == course_id, *([Enrollment.status == status] if status else [])]
    if q:
        where.append(containing(User.full_name, q))
    if updated_since is not None:  # an HR sync's "changed since my last run" (explore68 F4)
        where.append(Enrollment.updated_at >= in_utc(updated_since, name="updated_since", code="validation_error"))
    total = (
        await uow.session.scalar(
            select(func.count()).select_from(Enrollment).join(User, User.id == Enrollment.student_id).where(*where)
        )
        or 0
    )
    if sort == "name":
        order = people_order(User.full_name, Enrollment.id)
    elif status == "waitlisted":
        order = (Enrollment.waitlisted_at, Enrollment.id)
    else:
        order = (Enrollment.created_at.desc(), Enrollment.id.desc())
    rows = await uow.session.execute(
        select(Enrollment, User.full_name, queue.c.position)
        .join(User, User.id == Enrollment.student_id)
        .outerjoin(queue, queue.c.id == Enrollment.id)
        .where(*where)
        .order_by(*order)
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    found = rows.all()
    percents, last = await _cohort_progress(uow, documents, course, [e for e, _, _ in found])
    drops = await _drops(uow, [e.id for e, _, _ in found if e.status == "dropped"])
    items = [
        RosterEntry(
            enrollment_id=e.id,
            student_id=e.student_id,
            student_name=name,
            status=e.status,
            attempt=e.attempt,
            position=position,
            admitted_at=e.admitted_at,
            activated_at=e.activated_at,
            completed_at=e.completed_at,
            dropped_at=e.dropped_at,
            completion_revoked_at=e.completion_revoked_at,
            dropped_by=drops[e.id][0] if e.id in drops else None,
            drop_reason=drops[e.id][1] if e.id in drops else None,
            created_at=e.created_at,
            updated_at=e.updated_at,
            percent=percents.get(e.id),
            last_activity_at=last.get(e.id),
        )
        for e, name, position in found
    ]
    return RosterPage(items=items, total=total, page=page, page_size=page_size)


async def _drops(uow: UnitOfWork, enrollment_ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[str, str | None]]:
    """Who dropped each of these enrollments and why, from their history (explore63 F9: telling a student's own drop
    from a removal took one `/history` request per roster entry). A drop's reason is never a revocation's, which the
    instructor is not told (`history_reason_for_others`)."""
    if not enrollment_ids:
        return {}
    rows = await uow.session.execute(
        select(EnrollmentHistory.enrollment_id, EnrollmentHistory.actor, EnrollmentHistory.reason).where(
            EnrollmentHistory.enrollment_id.in_(enrollment_ids), EnrollmentHistory.to_status == "dropped"
        )
    )
    return {r.enrollment_id: (r.actor, r.reason) for r in rows}


async def _cohort_progress(
    uow: UnitOfWork, documents: Any, course: Course, enrollments: list[Enrollment]
) -> tuple[dict[uuid.UUID, float], dict[uuid.UUID, datetime]]:
    """Per enrollment of a roster page: its percent (of the live version's lessons; a completed one 100, as
    `percent_of` says) and the moment of its latest lesson completed or quiz answered. Three statements a page."""
    if documents is None or not enrollments:
        return {}, {}
    ids = [e.id for e in enrollments]
    lessons = [lesson.ref for lesson in await published_lessons(documents, course)]
    done: dict[uuid.UUID, set[uuid.UUID]] = {}
    last: dict[uuid.UUID, datetime] = {}
    for eid, lesson_id, at in await uow.session.execute(
        select(LessonProgress.enrollment_id, LessonProgress.lesson_id, LessonProgress.completed_at).where(
            LessonProgress.enrollment_id.in_(ids), LessonProgress.status == "completed"
        )
    ):
        done.setdefault(eid, set()).add(lesson_id)
        if at is not None and (eid not in last or at > last[eid]):
            last[eid] = at
    for eid, at in await uow.session.execute(
        select(QuizAttempt.enrollment_id, func.max(QuizAttempt.submitted_at))
        .where(QuizAttempt.enrollment_id.in_(ids))
        .group_by(QuizAttempt.enrollment_id)
    ):
        if at is not None and (eid not in last or at > last[eid]):
            last[eid] = at
    percents = {
        e.id: 100.0 if e.status == "completed" else rules.percent_complete(lessons, done.get(e.id, set()))
        for e in enrollments
    }
    return percents, last


async def history(*, uow: UnitOfWork, principal: Principal, enrollment_id: uuid.UUID) -> list[HistoryEntry]:
    """Every change, oldest first; an admin's account id is shown to admins only (the student and the instructor see
    `actor: admin`), and why a certificate was revoked to its student and admins only (the instructor reads
    "certificate revoked": explore44 F1)."""
    e = await load_readable(uow, principal, enrollment_id)
    told_why = principal.is_admin or e.student_id == principal.user_id
    rows = await uow.session.scalars(
        select(EnrollmentHistory)
        .where(EnrollmentHistory.enrollment_id == enrollment_id)
        .order_by(EnrollmentHistory.at, EnrollmentHistory.id)
    )
    return [
        HistoryEntry(
            from_status=r.from_status,
            to_status=r.to_status,
            actor=r.actor,
            actor_id=r.actor_id if principal.is_admin or r.actor != "admin" else None,
            reason=r.reason if told_why else history_reason_for_others(r.from_status, r.to_status, r.reason),
            at=r.at,
        )
        for r in rows
    ]


async def percent_of(uow: UnitOfWork, documents: Any, e: Enrollment, course: Course) -> float:
    if e.status == "completed":  # of the version the student took, whatever a later one added
        return 100.0
    lessons = await published_lessons(documents, course)
    done = set(
        await uow.session.scalars(
            select(LessonProgress.lesson_id).where(
                LessonProgress.enrollment_id == e.id, LessonProgress.status == "completed"
            )
        )
    )
    return rules.percent_complete([lesson.ref for lesson in lessons], done)


async def my_courses(
    *,
    uow: UnitOfWork,
    documents: Any,
    principal: Principal,
    page: int,
    page_size: int,
    public_base_url: str,
    statuses: frozenset[str] | None = None,
    student_id: uuid.UUID | None = None,
    course_ids: frozenset[uuid.UUID] | None = None,
) -> tuple[list[MyCourse], int]:
    """One page of the caller's enrollments, newest first (ties by id), each with its percent and, once completed, its
    certificate (as `GET /enrollments/{id}` shows them), and how many they have in all; `statuses` filters (a student
    with several dropped attempts had each as a course card, and `?status=` was ignored: explore36 F5), and
    `course_ids` (a course page's "Enrolled / Continue" button: explore78 F1, the filter was ignored). `student_id`:
    that account's (`GET /users/{id}/enrollments`: the account itself or an admin; explore68 F4, an HR sync read every
    roster to learn one employee's courses)."""
    if student_id is not None and student_id != principal.user_id:
        if not principal.is_admin:
            raise Forbidden("you may only list your own enrollments", code="not_account_owner")
        if await uow.session.get(User, student_id) is None:
            raise NotFound("user not found", code="user_not_found")
    whose = student_id or principal.user_id
    mine = and_(
        Enrollment.student_id == whose,
        *([Enrollment.status.in_(sorted(statuses))] if statuses else []),
        *([Enrollment.course_id.in_(sorted(course_ids))] if course_ids else []),
    )
    total = await uow.session.scalar(select(func.count()).select_from(Enrollment).where(mine)) or 0
    rows = (
        await uow.session.execute(
            select(Enrollment, Course, Certificate)
            .join(Course, Course.id == Enrollment.course_id)
            .outerjoin(Certificate, Certificate.enrollment_id == Enrollment.id)
            .where(mine)
            .order_by(Enrollment.created_at.desc(), Enrollment.id.desc())
            .offset((page - 1) * page_size)
            .limit(page_size)
        )
    ).all()
    # A page costs a fixed number of reads, not a few per row: the versions' lessons in one document read, the
    # completed lessons and the waitlist positions in one statement each (it was ~2 statements and a document
    # read per row: 217 statements for a page of 100, explore28 F2).
    open_rows = [(e, course) for e, course, _ in rows if e.status != "completed"]
    lessons = await published_lessons_by_version(documents, {(c.id, c.content_version) for _, c in open_rows})
    done: dict[uuid.UUID, set[uuid.UUID]] = {}
    if open_rows:
        for enrollment_id, lesson_id in await uow.session.execute(
            select(LessonProgress.enrollment_id, LessonProgress.lesson_id).where(
                LessonProgress.enrollment_id.in_([e.id for e, _ in open_rows]), LessonProgress.status == "completed"
            )
        ):
            done.setdefault(enrollment_id, set()).add(lesson_id)
    positions = await waitlist_positions(uow, [e for e, _, _ in rows])
    out = []
    for e, course, cert in rows:
        percent = (
            100.0
            if e.status == "completed"
            else rules.percent_complete(
                [lesson.ref for lesson in lessons[(course.id, course.content_version)]], done.get(e.id, set())
            )
        )
        public = _public(e, percent, positions.get(e.id))
        certificate = (
            CertificatePublic.of(cert, public_base_url) if cert is not None and e.status == "completed" else None
        )
        out.append(MyCourse(**public.model_dump(), course_title=course.title, certificate=certificate))
    return out, total


async def with_percent(uow: UnitOfWork, documents: Any, public: EnrollmentPublic) -> EnrollmentPublic:
    """`public` with its `percent` as `GET /enrollments/{id}` computes it: for the answers that do not compute it on
    their way (a repeated `POST /enrollments`, a `DELETE`), so that one enrollment reads the same everywhere."""
    e = await uow.session.get(Enrollment, public.id)
    if e is None:  # enrollments are never deleted
        raise NotFound("enrollment not found", code="enrollment_not_found")
    course = await load_course(uow, e.course_id)
    return public.model_copy(update={"percent": await percent_of(uow, documents, e, course)})


async def detail(
    *,
    uow: UnitOfWork,
    documents: Any,
    principal: Principal,
    enrollment_id: uuid.UUID,
) -> EnrollmentDetail:
    e = await load_readable(uow, principal, enrollment_id)
    course = await load_course(uow, e.course_id)
    public = await to_public(uow, e, await percent_of(uow, documents, e, course))
    return EnrollmentDetail(**public.model_dump(), course_title=course.title)


async def get_for(*, uow: UnitOfWork, principal: Principal, enrollment_id: uuid.UUID) -> Enrollment:
    return await _load_for(uow, principal, enrollment_id)


# --- the workflow's steps (idempotent; called by the EnrollmentWorkflow's activity) ------------------------
# The four steps (initialize_progress, record_analytics, activate, welcome_notification) are database writes that
# belong together, so they commit in ONE transaction (`set_up`); only the welcome e-mail's enqueue follows the
# commit (the activity does it; the Celery task sends once per notification). `set_up` is two statements: the row
# lock, then every write in one statement (`_set_up_statement`). The one-step helpers after it (`_initialize_progress`,
# `_record_analytics`, `_activate`, `_welcome`: each guarded, none commits) serve the legacy activities below.


@dataclass(frozen=True)
class SetUp:
    """What `set_up` did, per step: the workflow reports it in its step list."""

    lessons: int  # progress rows the enrollment has for the published version (made now or before)
    analytics_recorded: bool  # this run wrote the analytics event (False: an earlier run had)
    status: str  # the enrollment's status after activate: "active", or e.g. "dropped" if dropped meanwhile
    notification_id: uuid.UUID | None  # the welcome notification, whose e-mail the caller enqueues after commit


class LessonIds:
    """Lesson ids of a published course version, read from the document store once per version and process.

    A version's snapshot does not change once live (a re-publish makes a new version), so the workflow reads it
    once per course version instead of once per enrollment; bounded, oldest first out."""

    def __init__(self, documents: Any, size: int = 256) -> None:
        self.documents, self.size = documents, size
        self._ids: dict[tuple[uuid.UUID, int], tuple[uuid.UUID, ...]] = {}

    async def of(self, course_id: uuid.UUID, version: int) -> tuple[uuid.UUID, ...]:
        key = (course_id, version)
        ids = self._ids.get(key)
        if ids is None:
            ids = tuple(lsn.lesson_id for lsn in await published_lessons_of(self.documents, course_id, version))
            if len(self._ids) >= self.size:
                self._ids.pop(next(iter(self._ids)))
            self._ids[key] = ids
        return ids


_SYSTEM_REASON = "enrollment workflow"


@functools.cache
def _locked_for_set_up() -> Any:
    """The enrollment (row-locked: a concurrent drop waits for the set-up, or the set-up sees the drop), its
    course's title and published version and the student's name, in one statement built once per process."""
    return (
        select(
            Enrollment.student_id,
            Enrollment.course_id,
            Enrollment.status,
            Enrollment.admitted_at,
            Course.title,
            Course.content_version,
            User.full_name,
        )
        .join(Course, Course.id == Enrollment.course_id)
        .outerjoin(User, User.id == Enrollment.student_id)
        .where(Enrollment.id == bindparam("enrollment_id", type_=_ID))
        .with_for_update(of=Enrollment)
    )


def _outbox_row(prefix: str, when: Any) -> Any:
    """The SELECT list of an outbox row whose values are the parameters `<prefix>_id`, `<prefix>_topic`, ..."""
    return select(
        bindparam(f"{prefix}_id", type_=_ID),
        bindparam(f"{prefix}_topic", type_=String),
        bindparam(f"{prefix}_type", type_=String),
        bindparam(f"{prefix}_version", type_=Integer),
        bindparam(f"{prefix}_aggregate", type_=String),
        bindparam(f"{prefix}_payload", type_=JSONB),
        bindparam(f"{prefix}_trace", type_=JSONB(none_as_null=True)),
        when,
    )


@functools.cache
def _set_up_statement() -> Any:
    """The four steps' writes in ONE statement built once per process, on the row `_locked_for_set_up` locked:
    the progress rows (existing ones left alone), the analytics event (once: its id is derived from the enrollment),
    pending -> active with its history entry and `enrollment.activated` event (only from pending), and the welcome
    notification (once per dedupe key; an existing one is returned). Which steps apply is decided by the caller from
    the locked row (`record`, `welcome`), every write is guarded besides. Returns (analytics written, the welcome
    notification's id or NULL)."""
    eid = bindparam("enrollment_id", type_=_ID)
    now = bindparam("now", type_=_TS)
    progress = (
        pg_insert(LessonProgress)
        .from_select(
            ["enrollment_id", "lesson_id", "status"],
            select(eid, func.unnest(bindparam("lesson_ids", type_=ARRAY(_ID))), literal("not_started")),
        )
        .on_conflict_do_nothing()
        .returning(LessonProgress.lesson_id)
        .cte("progress")
    )
    analytics = (
        pg_insert(OutboxEvent)
        .from_select(
            _OUTBOX_COLUMNS,
            _outbox_row("analytics", now).where(bindparam("record", type_=Boolean)),
            include_defaults=False,  # `attempts` has its server default; the two outbox inserts share no Python one
        )
        .on_conflict_do_nothing(index_elements=[OutboxEvent.id])
        .returning(OutboxEvent.id)
        .cte("analytics")
    )
    # NB: no parameter of this statement may be named after a column of enrollments: SQLAlchemy would add it to the
    # UPDATE's SET clause (it compiles with the parameters' names as column keys).
    activated = (
        update(Enrollment)
        .where(Enrollment.id == eid, Enrollment.status == "pending")
        .values(status="active", activated_at=now, updated_at=now)
        .returning(Enrollment.id)
        .cte("activated")
    )
    history = _history_cte(activated, literal("pending"), "active", null(), literal("system"), _SYSTEM_REASON)
    event = (
        pg_insert(OutboxEvent)
        .from_select(_OUTBOX_COLUMNS, _outbox_row("activated", now).select_from(activated), include_defaults=False)
        .returning(OutboxEvent.id)
        .cte("event")
    )
    dedupe_key = bindparam("dedupe_key", type_=String)
    notified = (
        pg_insert(Notification)
        .from_select(
            ["id", "user_id", "kind", "title", "body", "data", "dedupe_key", "email_status", "created_at"],
            select(
                bindparam("notification_id", type_=_ID),
                bindparam("recipient_id", type_=_ID),
                literal("enrollment.welcome"),
                bindparam("title", type_=String),
                bindparam("body", type_=String),
                bindparam("data", type_=JSONB),
                dedupe_key,
                literal("pending"),
                now,
            ).where(bindparam("welcome", type_=Boolean)),
            include_defaults=False,  # `email_attempts` has its server default
        )
        .on_conflict_do_nothing(index_elements=[Notification.dedupe_key])
        .returning(Notification.id)
        .cte("notified")
    )
    # A welcome made by an earlier run (committed before this run got the row lock, so in this statement's snapshot).
    earlier = select(Notification.id).where(Notification.dedupe_key == dedupe_key, bindparam("welcome", type_=Boolean))
    return (
        select(
            select(func.count()).select_from(analytics).scalar_subquery() > 0,
            func.coalesce(select(notified.c.id).scalar_subquery(), earlier.scalar_subquery()),
        )
        .add_cte(progress)
        .add_cte(history)
        .add_cte(event)
    )


async def set_up(*, uow: UnitOfWork, lessons: LessonIds, enrollment_id: uuid.UUID) -> SetUp:
    """The enrollment workflow's four steps in the caller's transaction; the CALLER COMMITS (then enqueues the
    e-mail of `notification_id`). Safe to repeat: every write is guarded, a repeat returns the same outcome.

    Two statements: the row lock with what the steps need, then every write (`_set_up_statement`). The published
    lessons come from `lessons` (the document store has a pool of its own, so a miss waits for a connection of that
    pool, never of this one)."""
    row = (await uow.session.execute(_locked_for_set_up(), {"enrollment_id": enrollment_id})).first()
    if row is None:
        raise NotFound("enrollment not found", code="enrollment_not_found")
    student_id, course_id, status, admitted_at, title, version, name = row
    # A dropped enrollment (its drop won the row lock) gets no progress rows: nothing is set up for it.
    lesson_ids = await lessons.of(course_id, version) if status != "dropped" else ()
    now = utcnow()
    ids = {"enrollment_id": str(enrollment_id), "student_id": str(student_id), "course_id": str(course_id)}
    record = admitted_at is not None  # a waitlisted-then-promoted enrollment is admitted too; never-admitted: none
    analytics = (
        outbox_values(_analytics_event(enrollment_id, student_id, course_id, admitted_at))
        if admitted_at is not None
        else None
    )
    activated = outbox_values(
        DomainEvent("enrollment.activated", str(enrollment_id), {**ids, "activated_at": now.isoformat()})
    )
    after = "active" if status == "pending" else status
    welcome = after in {"active", "completed"}
    welcome_title, welcome_body = _welcome_text(title, name)
    params = {
        "enrollment_id": enrollment_id,
        "recipient_id": student_id,
        "now": now,
        "lesson_ids": list(lesson_ids),
        "record": record,
        **_outbox_params("analytics", analytics),
        **_outbox_params("activated", activated),
        "welcome": welcome,
        "notification_id": uuid.uuid4(),
        "title": welcome_title,
        "body": welcome_body,
        "data": {"enrollment_id": str(enrollment_id), "course_id": str(course_id)},
        "dedupe_key": f"welcome:{enrollment_id}",
    }
    recorded, notification_id = (await uow.session.execute(_set_up_statement(), params)).one()
    if welcome and notification_id is None:  # only if the earlier run's row was deleted in between
        raise NotFound("notification vanished while being created", code="notification_not_found")
    return SetUp(len(lesson_ids), bool(recorded), after, notification_id)


def _outbox_params(prefix: str, values: dict[str, Any] | None) -> dict[str, Any]:
    """The parameters of `_outbox_row(prefix)` from `outbox_values` (None: a row the statement will not write)."""
    v = values or {}
    return {
        f"{prefix}_id": v.get("id"),
        f"{prefix}_topic": v.get("topic"),
        f"{prefix}_type": v.get("event_type"),
        f"{prefix}_version": v.get("schema_version"),
        f"{prefix}_aggregate": v.get("aggregate_id"),
        f"{prefix}_payload": v.get("payload"),
        f"{prefix}_trace": v.get("trace_context"),
    }


async def _initialize_progress(uow: UnitOfWork, e: Enrollment, lesson_ids: tuple[uuid.UUID, ...]) -> None:
    """One `not_started` row per lesson of the published version; existing rows are left alone."""
    if lesson_ids:
        await uow.session.execute(
            pg_insert(LessonProgress)
            .values([{"enrollment_id": e.id, "lesson_id": lid, "status": "not_started"} for lid in lesson_ids])
            .on_conflict_do_nothing()
        )


async def _record_analytics(uow: UnitOfWork, e: Enrollment) -> bool:
    """Publish the admitted enrollment to analytics, once: the event id is derived from the enrollment."""
    if e.admitted_at is None:
        return False
    return await uow.emit_once(_analytics_event(e.id, e.student_id, e.course_id, e.admitted_at))


def _analytics_event(
    enrollment_id: uuid.UUID, student_id: uuid.UUID, course_id: uuid.UUID, admitted_at: datetime
) -> DomainEvent:
    """`analytics.enrollment_recorded` of an admitted enrollment; its id is derived from the enrollment (once)."""
    return DomainEvent(
        "analytics.enrollment_recorded",
        str(course_id),
        {
            "enrollment_id": str(enrollment_id),
            "student_id": str(student_id),
            "course_id": str(course_id),
            "admitted_at": admitted_at.isoformat(),
        },
        id=uuid.uuid5(ANALYTICS_NS, f"enrollment-recorded:{enrollment_id}"),
    )


def _welcome_text(course_title: str, name: str | None) -> tuple[str, str]:
    """The welcome notification's title and body."""
    return (
        f"Welcome to {course_title}",
        f"Hi {name or 'there'}, you are enrolled in {course_title}. Your first lesson is waiting for you.",
    )


def _activate(uow: UnitOfWork, e: Enrollment) -> str:
    """pending -> active (idempotent; `e` is row-locked). Returns the status after the step; a dropped
    enrollment stays dropped."""
    if e.status != "pending":
        return e.status
    now = utcnow()
    e.status, e.activated_at, e.updated_at = "active", now, now
    uow.session.add(history_entry(e, "pending", "active", None, _SYSTEM_REASON, at=now))
    uow.emit(enrollment_event("enrollment.activated", e, activated_at=now.isoformat()))
    return "active"


async def _welcome(uow: UnitOfWork, e: Enrollment, course: Course, name: str | None) -> uuid.UUID:
    """The welcome notification (idempotent by its dedupe key: a repeat gets the same row back)."""
    title, body = _welcome_text(course.title, name)
    return await create_notification(
        uow.session,
        user_id=e.student_id,
        kind="enrollment.welcome",
        title=title,
        body=body,
        dedupe_key=f"welcome:{e.id}",
        data={"enrollment_id": str(e.id), "course_id": str(e.course_id)},
        email=True,
    )


# --- the same steps one transaction each: only for EnrollmentWorkflow runs started before the one-transaction
# set-up (their history replays four activities; see workflows/enrollment/workflow.py). Remove with that branch.


async def legacy_initialize_progress(*, uow: UnitOfWork, documents: Any, enrollment_id: uuid.UUID) -> int:
    e = await uow.session.get(Enrollment, enrollment_id)
    if e is None:
        raise NotFound("enrollment not found", code="enrollment_not_found")
    course = await load_course(uow, e.course_id)
    lesson_ids = tuple(lsn.lesson_id for lsn in await published_lessons(documents, course))
    await _initialize_progress(uow, e, lesson_ids)
    await uow.commit()
    return len(lesson_ids)


async def legacy_record_analytics(*, uow: UnitOfWork, enrollment_id: uuid.UUID) -> bool:
    e = await uow.session.get(Enrollment, enrollment_id)
    written = e is not None and await _record_analytics(uow, e)
    await uow.commit()
    return written


async def legacy_activate(*, uow: UnitOfWork, enrollment_id: uuid.UUID) -> str:
    e = await uow.session.get(Enrollment, enrollment_id, with_for_update=True)
    if e is None:
        raise NotFound("enrollment not found", code="enrollment_not_found")
    status = _activate(uow, e)
    await uow.commit()
    return status


async def legacy_welcome(*, uow: UnitOfWork, enrollment_id: uuid.UUID) -> uuid.UUID | None:
    e = await uow.session.get(Enrollment, enrollment_id)
    if e is None or e.status not in {"active", "completed"}:
        return None
    course = await load_course(uow, e.course_id)
    student = await uow.session.get(User, e.student_id)
    notification_id = await _welcome(uow, e, course, student.full_name if student else None)
    await uow.commit()
    return notification_id
