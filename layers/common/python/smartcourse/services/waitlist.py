"""The waitlist's promotions, and the enrollment events and history entries they share with the enrollment service
(here so that the course service, which changes capacities, can promote without importing the enrollment service,
which builds on it)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, exists, select
from sqlalchemy.orm import aliased

from smartcourse.db import UnitOfWork
from smartcourse.domain import courses as course_rules
from smartcourse.domain import enrollment as rules
from smartcourse.domain.events import DomainEvent
from smartcourse.models import Course, CoursePrerequisite, Enrollment, EnrollmentHistory, User, utcnow
from smartcourse.security import Principal
from smartcourse.services.notifications import create_notification


def enrollment_event(kind: str, e: Enrollment, **extra: Any) -> DomainEvent:
    """An event about an enrollment: every one carries the enrollment, student and course ids."""
    return DomainEvent(
        kind,
        str(e.id),
        {"enrollment_id": str(e.id), "student_id": str(e.student_id), "course_id": str(e.course_id), **extra},
    )


def history_entry(
    e: Enrollment, src: str | None, dst: str, actor: Principal | None, reason: str | None = None, *, at: Any = None
) -> Any:
    """The history entry of `e`'s change by `actor`: `system` (None), `admin`, the `student` themselves, or the
    course's `instructor` (who removes a student from their course: explore63 F1). `at`: the moment the enrollment
    records for the change (its `dropped_at`, `completed_at`...), so the two agree (explore68 F11: the history's was
    the row's insert time, 3-6 ms later)."""
    if actor is None:
        role = "system"
    elif actor.is_admin:
        role = "admin"
    else:
        role = "student" if actor.user_id == e.student_id else "instructor"
    return EnrollmentHistory(
        enrollment_id=e.id,
        from_status=src,
        to_status=dst,
        actor_id=actor.user_id if actor else None,
        actor=role,
        reason=reason,
        **({"at": at} if at is not None else {}),
    )


def mark_dropped(uow: UnitOfWork, e: Enrollment, actor: Principal | None, reason: str, now: Any) -> bool:
    """`e` (row-locked) -> dropped, with its history entry and `enrollment.dropped` event (actor None: the system).
    Returns whether it held a seat (the caller gives it back)."""
    previous = e.status
    freed = previous in rules.SEAT_STATUSES
    e.status, e.dropped_at, e.updated_at = "dropped", now, now
    uow.session.add(history_entry(e, previous, "dropped", actor, reason, at=now))
    uow.emit(
        enrollment_event(
            "enrollment.dropped",
            e,
            previous_status=previous,
            actor_id=str(actor.user_id) if actor else None,
            freed_seat=freed,
        )
    )
    return freed


async def promote_waitlist(uow: UnitOfWork, course: Course) -> list[Enrollment]:
    """Give every free seat of the course (its row locked by the caller, its capacity just raised or lifted) to the
    head of its waitlist, in order, in the caller's transaction: each promotion is a `waitlist.promoted` event,
    which the dispatcher turns into the enrollment's workflow, as after a drop. A newcomer's admission waits on the
    course row meanwhile, so it can never take a seat ahead of the queue."""
    now = utcnow()
    promoted = []
    while (nxt := await promote_next(uow, course, now)) is not None:
        promoted.append(nxt)
    return promoted


def _prerequisites_unmet(course_id: Any) -> Any:
    """The waitlisted student (`Enrollment.student_id`) lacks a prerequisite of the course: a course it requires
    that they have not completed, or whose certificate an admin revoked (the admission's rule,
    `services/enrollment.py`)."""
    done = aliased(Enrollment)
    # Correlated by name: the inner level refers to the outer query's enrollment and the middle one's prerequisite,
    # which auto-correlation (the enclosing level only) would have added to its own FROM.
    completed = (
        exists()
        .where(
            done.student_id == Enrollment.student_id,
            done.course_id == CoursePrerequisite.prerequisite_id,
            done.status == "completed",
            done.completion_revoked_at.is_(None),
        )
        .correlate(Enrollment, CoursePrerequisite)
    )
    return exists().where(CoursePrerequisite.course_id == course_id, ~completed).correlate(Enrollment)


async def promote_next(uow: UnitOfWork, course: Course, now: Any) -> Enrollment | None:
    """Give a free seat to the first waitlisted student (SKIP LOCKED: one dropping themselves is passed over). An
    archived course admits nobody, from its waitlist either (its waitlisted students stay where they are). A
    disabled account is passed over too, keeping its place: a seat went to an account that cannot log in, ahead of
    the next student (explore14 F5); enabled again, it is next. So is a student who does not meet the course's
    prerequisites (their certificate was revoked, or the prerequisite was added after they joined: explore36 F1, the
    waitlist let them round the rule an admission applies), told once by a notification (`_tell_passed_over`)."""
    if course.capacity is not None and course.seats_taken >= course.capacity:
        return None
    if not course_rules.is_live(course.status, course.content_version):
        return None
    unmet = _prerequisites_unmet(course.id)
    nxt = await uow.session.scalar(
        select(Enrollment)
        .join(User, User.id == Enrollment.student_id)
        .where(Enrollment.course_id == course.id, Enrollment.status == "waitlisted", User.is_active.is_(True), ~unmet)
        .order_by(Enrollment.waitlisted_at, Enrollment.id)
        .limit(1)
        .with_for_update(of=Enrollment, skip_locked=True)
    )
    await _tell_passed_over(uow, course, nxt, unmet)
    if nxt is None:
        return None
    course.seats_taken += 1
    nxt.status, nxt.admitted_at, nxt.updated_at = "pending", now, now
    nxt.workflow_id = rules.enrollment_workflow_id(course.id, nxt.student_id, nxt.attempt)
    uow.session.add(history_entry(nxt, "waitlisted", "pending", None, "promoted from the waitlist", at=now))
    uow.emit(enrollment_event("waitlist.promoted", nxt, workflow_id=nxt.workflow_id, admitted_at=now.isoformat()))
    return nxt


async def give_back_seat(uow: UnitOfWork, course: Course, now: Any) -> Enrollment | None:
    """A seat of `course` (its row locked by the caller) is free again (a drop, a revoked completion): it goes to the
    head of the waitlist first, in the caller's transaction. Returns the promoted enrollment, if any."""
    course.seats_taken -= 1
    return await promote_next(uow, course, now)


async def seat_the_eligible(uow: UnitOfWork, *student_ids: Any, requiring: Any = None) -> list[Enrollment]:
    """Free seats to the waitlist of each course where one of `student_ids` waits (those that require course
    `requiring`, when given), in the caller's transaction: a student passed over for a prerequisite who now meets it
    (they completed it, also by a republish's go-live, or the instructor removed it) or an account enabled again is
    seated in the course's order while seats are free, not left behind a newcomer who takes one (explore37 F2). The
    course rows are locked in id order, once for all the students."""
    if not student_ids:
        return []
    query = select(Enrollment.course_id).where(
        Enrollment.student_id.in_(student_ids), Enrollment.status == "waitlisted"
    )
    if requiring is not None:
        query = query.join(CoursePrerequisite, CoursePrerequisite.course_id == Enrollment.course_id).where(
            CoursePrerequisite.prerequisite_id == requiring
        )
    promoted: list[Enrollment] = []
    for course_id in sorted(set(await uow.session.scalars(query))):
        course = await uow.session.get(Course, course_id, with_for_update=True)
        if course is not None:
            promoted += await promote_waitlist(uow, course)
    return promoted


async def _tell_passed_over(uow: UnitOfWork, course: Course, promoted: Enrollment | None, unmet: Any) -> None:
    """Each active student ahead of `promoted` in the queue (with `promoted` None: the seat stays free, nobody on the
    waitlist meets the prerequisites; every one of them) who was passed over for lacking a prerequisite is told, once
    per enrollment (the notification's dedupe key), what became of the seat and that they keep their place
    (explore39: a student left waiting beside a free seat was told nothing, and saw "waitlisted, position 1")."""
    ahead = Enrollment.id.is_not(None)
    if promoted is not None:
        ahead = and_(Enrollment.waitlisted_at <= promoted.waitlisted_at, Enrollment.id != promoted.id)
    passed = await uow.session.scalars(
        select(Enrollment)
        .join(User, User.id == Enrollment.student_id)
        .where(
            Enrollment.course_id == course.id,
            Enrollment.status == "waitlisted",
            User.is_active.is_(True),
            ahead,
            unmet,
        )
    )
    if promoted is not None:
        title = f"A seat in “{course.title}” went to the next student"
        went = (
            "so it went to the next student on the waitlist. You keep your place: once you meet them, the next "
            "free seat is yours."
        )
    else:
        title = f"A seat in “{course.title}” is free, but you do not meet its prerequisites"
        went = (
            "so it stays free for now. You keep your place: once you meet them (complete the course it requires), "
            "you are seated at once if a seat is still free; a student who meets them may take it meanwhile."
        )
    passed = list(passed)
    # Which courses it requires, by title (explore63 F6: the notice did not say which to complete).
    required = (
        list(
            await uow.session.scalars(
                select(Course.title)
                .join(CoursePrerequisite, CoursePrerequisite.prerequisite_id == Course.id)
                .where(CoursePrerequisite.course_id == course.id)
                .order_by(Course.title)
            )
        )
        if passed
        else []
    )
    which = f" ({', '.join(f'“{t}”' for t in required)})" if required else ""
    for e in passed:
        await create_notification(
            uow.session,
            user_id=e.student_id,
            kind="waitlist.passed_over",
            title=title,
            body=(
                f"A seat in “{course.title}” came free, but you do not meet its prerequisites{which} (a course it "
                f"requires is not completed, or its certificate was revoked), {went}"
            ),
            dedupe_key=f"waitlist-passed-over:{e.id}",
            data={"enrollment_id": str(e.id), "course_id": str(course.id), "seat_free": promoted is None},
        )


async def release_waitlist(uow: UnitOfWork, course: Course, now: Any) -> list[Enrollment]:
    """An archived course (its row locked by the caller) admits nobody: its waitlisted students are taken off the
    waitlist in the caller's transaction (dropped by the system, "course archived": history entry, an
    `enrollment.dropped` event, freeing no seat), each told by a notification whose e-mail is handed over at the
    request's commit. SKIP LOCKED: a student dropping themselves at that moment is left to their own drop."""
    released = list(
        await uow.session.scalars(
            select(Enrollment)
            .where(Enrollment.course_id == course.id, Enrollment.status == "waitlisted")
            .order_by(Enrollment.waitlisted_at, Enrollment.id)
            .with_for_update(skip_locked=True)
        )
    )
    for e in released:
        mark_dropped(uow, e, None, "course archived", now)
        await create_notification(
            uow.session,
            user_id=e.student_id,
            kind="waitlist.released",
            title=f"“{course.title}” was withdrawn",
            body=(
                # No "for good": an archive can be undone, and this e-mail may leave after the course is back
                # (explore20 F2: "will take no more students" arrived 77 s after a restore).
                f"The course “{course.title}” was withdrawn from the catalogue, so your place on its waitlist was "
                "released. If it comes back, you can enroll again from the catalogue."
            ),
            dedupe_key=f"waitlist-released:{e.id}",
            data={"enrollment_id": str(e.id), "course_id": str(course.id)},
        )
    return released
