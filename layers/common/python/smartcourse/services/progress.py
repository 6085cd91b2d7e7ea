"""Progress: lessons completed, quizzes graded on the server, module and course completion."""

from __future__ import annotations

import math
import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.dialects.postgresql import insert

from smartcourse.db import UnitOfWork
from smartcourse.domain import courses as course_rules
from smartcourse.domain import enrollment as rules
from smartcourse.errors import Conflict, DomainError, Forbidden, Invalid, NotFound
from smartcourse.models import (
    Course,
    Enrollment,
    EnrollmentHistory,
    Lesson,
    LessonProgress,
    QuizAttempt,
    QuizAttemptGrant,
    utcnow,
)
from smartcourse.ratelimit import Decision, rate_limited_error
from smartcourse.schemas import (
    LessonProgressPublic,
    ModuleProgressPublic,
    ProgressPublic,
    QuizAttemptPublic,
    QuizGrantIn,
    QuizGrantPublic,
    QuizResult,
)
from smartcourse.security import Principal
from smartcourse.services.courses import teaches_course
from smartcourse.services.enrollment import load_readable
from smartcourse.services.learner_view import PublishedLesson, published_lessons, published_lessons_of
from smartcourse.services.notifications import create_notification
from smartcourse.services.waitlist import enrollment_event, seat_the_eligible


async def _learning_context(
    uow: UnitOfWork, documents: Any, principal: Principal, lesson_id: uuid.UUID, *, completed_ok: bool = False
) -> tuple[Enrollment, Course, PublishedLesson, list[PublishedLesson]]:
    """The caller's active enrollment holding this lesson, locked: one progress change at a time per enrollment.

    With `completed_ok`, a completed enrollment is returned too (the caller answers a repeat from it).

    A waitlisted enrollment is read without a lock, and only when no other holds the lesson: it is only ever refused
    here, and a lock on it would make the waitlist's promotion (SKIP LOCKED, which passes over a student dropping
    at that moment) give the freed seat to the next in line while its head retried this request."""
    if principal.role != "student":
        raise Forbidden("only enrolled students record progress", code="role_forbidden")
    joined = select(Enrollment, Course).join(Course, Course.id == Enrollment.course_id)
    stmt = joined.where(
        Enrollment.student_id == principal.user_id, Enrollment.status.notin_(("dropped", "waitlisted"))
    ).with_for_update(of=Enrollment)
    waiting = joined.where(Enrollment.student_id == principal.user_id, Enrollment.status == "waitlisted")
    # The working copy usually still has the lesson: go straight to its course.
    home = (
        await uow.session.execute(
            select(Lesson.course_id, Course.status, Course.content_version)
            .join(Course, Course.id == Lesson.course_id)
            .where(Lesson.id == lesson_id)
        )
    ).first()
    if home is not None:
        stmt = stmt.where(Enrollment.course_id == home.course_id)
        waiting = waiting.where(Enrollment.course_id == home.course_id)
    # A retake's enrollment before the revoked completion beside it (which answers only repeats: `_holding`).
    rows = sorted((await uow.session.execute(stmt)).all(), key=lambda r: r[0].completion_revoked_at is not None)
    found = await _holding(documents, rows, lesson_id, completed_ok=completed_ok)
    if found is not None:
        return found
    waitlisted = (await uow.session.execute(waiting)).all()
    await _holding(documents, waitlisted, lesson_id, completed_ok=completed_ok)  # raises enrollment_not_active
    if home is not None and (rows or waitlisted):
        # Enrolled in the lesson's course, whose published version does not have it (saved since, not yet published).
        raise NotFound("lesson not found", code="lesson_not_found")
    if home is None or not course_rules.is_live(home.status, home.content_version):
        # No such lesson, or one of a course the caller cannot see: a typo is not an authorisation problem, and a
        # draft's lesson is not confirmed to exist (as GET /courses/{id} would not).
        raise NotFound("lesson not found", code="lesson_not_found")
    course = await uow.session.get(Course, home.course_id)
    live = await published_lessons(documents, course) if course is not None else []
    if not any(lsn.lesson_id == lesson_id for lsn in live):
        # A lesson saved on a live course since its publish: not in what anyone but its owner sees, so not confirmed
        # to exist, as for an enrolled student (explore35 F1: 403 `not_enrolled` told a stranger it was one).
        raise NotFound("lesson not found", code="lesson_not_found")
    raise Forbidden("you are not enrolled in a course with this lesson", code="not_enrolled")


def _completed_message(e: Enrollment) -> str:
    if e.completion_revoked_at is not None:
        # explore39 F9: "not enrolled" read as if the student had never taken the course.
        return "this course was completed, but its certificate was revoked: enroll again to take it anew"
    return "this course is already completed"


async def _holding(
    documents: Any, rows: Any, lesson_id: uuid.UUID, *, completed_ok: bool
) -> tuple[Enrollment, Course, PublishedLesson, list[PublishedLesson]] | None:
    """The first of `rows` (enrollment, course) whose published course has the lesson, if it may record progress;
    raises for one that may not (completed, not active yet); None when none has the lesson."""
    for e, course in rows:
        lessons = await published_lessons(documents, course)
        match = next((lsn for lsn in lessons if lsn.lesson_id == lesson_id), None)
        if match is None:
            continue
        if e.status == "completed" and not completed_ok:
            raise Conflict(_completed_message(e), code="enrollment_completed")
        if e.status == "completed":
            return e, course, match, lessons
        if e.status == "waitlisted":
            # 403 as everywhere a waitlisted student meets the content (materials, search, the assistant: F11)
            raise Forbidden(
                "you are on the course's waitlist: its content opens once you have a seat",
                code="enrollment_not_active",
                details={"status": "waitlisted"},
            )
        if e.status != "active":  # admitted, its set-up still running: a moment's state, retried
            # Retry-After as on 429 and 503: the set-up takes a moment, longer under a launch-day backlog
            # (explore36 F5).
            raise Conflict(
                f"the enrollment is {e.status}, not active yet; retry in a moment",
                code="enrollment_not_active",
                details={"status": e.status},
                headers={"Retry-After": "1"},
            )
        return e, course, match, lessons
    return None


async def _completed_ids(uow: UnitOfWork, enrollment_id: uuid.UUID) -> set[uuid.UUID]:
    return set(
        await uow.session.scalars(
            select(LessonProgress.lesson_id).where(
                LessonProgress.enrollment_id == enrollment_id, LessonProgress.status == "completed"
            )
        )
    )


async def _record_completion(
    uow: UnitOfWork, e: Enrollment, lesson: PublishedLesson, lessons: list[PublishedLesson], score: int | None
) -> float:
    """Mark the lesson complete (once) and emit what follows from it. Returns the new percent."""
    before = await _completed_ids(uow, e.id)
    now = utcnow()
    await uow.session.execute(
        insert(LessonProgress)
        .values(enrollment_id=e.id, lesson_id=lesson.lesson_id, status="completed", completed_at=now, best_score=score)
        .on_conflict_do_update(
            index_elements=[LessonProgress.enrollment_id, LessonProgress.lesson_id],
            set_={
                "status": "completed",
                "completed_at": func.coalesce(LessonProgress.completed_at, now),
                "best_score": func.greatest(LessonProgress.best_score, score),
            },
        )
    )
    refs = [lsn.ref for lsn in lessons]
    after = before | {lesson.lesson_id}
    percent = rules.percent_complete(refs, after)
    if lesson.lesson_id not in before:
        uow.emit(enrollment_event("progress.updated", e, lesson_id=str(lesson.lesson_id), percent=percent))
        for module_id in rules.completed_modules(refs, after) - rules.completed_modules(refs, before):
            uow.emit(enrollment_event("progress.module_completed", e, module_id=str(module_id)))
    # Checked on a repeat too: every lesson of the live version may have been done already, when a republish removed
    # the last one the student was missing (nothing else would ever complete the course).
    if percent >= 100 and e.status == "active":
        _complete(uow, e, now, "all lessons done")
        # Waiting for a course that requires this one, passed over for it: a free seat there is theirs now
        # (explore37 F2), in this transaction.
        await seat_the_eligible(uow, e.student_id, requiring=e.course_id)
    return percent


def _complete(uow: UnitOfWork, e: Enrollment, now: datetime, reason: str) -> None:
    """active -> completed (`e` row-locked): the history entry and `enrollment.completed`. The caller starts the
    certificate workflow after its commit (the sweeper starts any it missed)."""
    e.status, e.completed_at, e.updated_at = "completed", now, now
    uow.session.add(
        EnrollmentHistory(
            enrollment_id=e.id, from_status="active", to_status="completed", actor="system", reason=reason, at=now
        )
    )
    uow.emit(
        enrollment_event(
            "enrollment.completed",
            e,
            activated_at=e.activated_at.isoformat() if e.activated_at else None,
            completed_at=now.isoformat(),
        )
    )


async def complete_finished_enrollments(
    uow: UnitOfWork, course_id: uuid.UUID, lesson_ids: Collection[uuid.UUID], *, wait: bool = False
) -> list[uuid.UUID]:
    """At a version's go-live: complete the course's active enrollments that have every lesson of that version done
    already (it dropped the lessons they were missing). Returns their ids.

    In the go-live's transaction (`wait=False`), SKIP LOCKED: an enrollment locked by a request at that moment (a
    drop, which takes the course row after it, or a progress request) is not waited for, since that transaction
    holds the course row. The go-live's second pass (`publishing.complete_skipped_at_go_live`, `wait=True`) holds
    no course row lock that such a request wants, so it waits for them, then completes what is still active."""
    wanted = set(lesson_ids)
    if not wanted:
        return []
    done = (
        select(func.count())
        .select_from(LessonProgress)
        .where(
            LessonProgress.enrollment_id == Enrollment.id,
            LessonProgress.status == "completed",
            LessonProgress.lesson_id.in_(wanted),
        )
        .scalar_subquery()
    )
    finished = list(
        await uow.session.scalars(
            select(Enrollment)
            .where(Enrollment.course_id == course_id, Enrollment.status == "active", done == len(wanted))
            .order_by(Enrollment.id)
            .with_for_update(skip_locked=not wait)
        )
    )
    now = utcnow()
    completed = []
    for e in finished:
        if e.status == "active":  # re-read under the lock
            _complete(uow, e, now, "all lessons of the live version done")
            completed.append(e)
    # Waiting for a course that requires this one, passed over for it: a free seat there is theirs now, as after a
    # lesson's completion (closing note 28: a go-live's completions left them waiting until the next drop).
    await seat_the_eligible(uow, *sorted({e.student_id for e in completed}), requiring=course_id)
    return [e.id for e in finished if e.status == "completed"]


async def complete_lesson(
    *, uow: UnitOfWork, documents: Any, principal: Principal, lesson_id: uuid.UUID, max_attempts: int | None = None
) -> tuple[ProgressPublic, bool]:
    """Mark a text or video lesson complete (idempotent). Returns (progress, enrollment just completed)."""
    e, _course, lesson, lessons = await _learning_context(uow, documents, principal, lesson_id, completed_ok=True)
    if lesson.type == "quiz":
        raise Conflict(
            "a quiz lesson is completed by passing it: POST /quizzes/{id}/submit", code="quiz_requires_submission"
        )
    if e.status == "completed":
        # A repeat of a lesson already done is answered as before (idempotent).
        if lesson.lesson_id in await _completed_ids(uow, e.id):
            return await _progress(uow, e, lessons, max_attempts), False
        _refuse_if_revoked(e)
        # A lesson a later version added (the annual policy update): recorded, the enrollment stays completed with
        # its certificate (explore77 F3: a learner who had finished could never take it, nor a manager have them).
    await _record_completion(uow, e, lesson, lessons, None)
    just_completed = e.status == "completed"
    await uow.commit()
    return await _progress(uow, e, lessons, max_attempts), just_completed


def _refuse_if_revoked(e: Enrollment) -> None:
    """A completion whose certificate was revoked answers repeats only: the student enrolls again to take the course."""
    if e.completion_revoked_at is not None:
        raise Conflict(_completed_message(e), code="enrollment_completed")


def counted_attempts() -> Any:
    """Of `QuizAttempt` joined to its `Enrollment`: an attempt that counts for the student's limit and "passed once",
    i.e. not one made in a completion whose certificate was revoked."""
    return Enrollment.completion_revoked_at.is_(None)


def counts_against(fingerprint: str) -> Any:
    """The attempts the limit counts on the quiz as it is (`fingerprint`): those on these questions, and those from
    before attempts recorded their quiz (migration 0019) that migration 0020 could not place."""
    return or_(QuizAttempt.quiz_fingerprint == fingerprint, QuizAttempt.quiz_fingerprint.is_(None))


async def _quiz_record(
    uow: UnitOfWork, student_id: uuid.UUID, lesson_id: uuid.UUID, fingerprint: str
) -> tuple[int, int, datetime | None, bool, datetime]:
    """(attempts on the quiz as it is, attempts in all, last submission, passed once, the database's clock now) of a
    student on a quiz, across all of the student's enrollments (re-enrolling does not reset attempts; a rewritten
    quiz does). The attempts of a completion whose certificate an admin revoked count for nothing but the numbering:
    its pass lifts no limit on the retake, which would then have unlimited attempts with the answers shown (explore39
    F1), and the retake starts with the quiz's whole allowance, as the admin who let the student retake meant."""
    counted = counted_attempts()
    row = (
        await uow.session.execute(
            select(
                func.count(QuizAttempt.id).filter(counts_against(fingerprint), counted),
                func.coalesce(func.max(QuizAttempt.attempt), 0),
                func.max(QuizAttempt.submitted_at).filter(counted),
                # A pass of the quiz as it is: one of a rewritten quiz lifts no limit on the new one, whose answers
                # the feedback of unlimited attempts would give away (explore21 F10).
                func.bool_or(QuizAttempt.passed).filter(counts_against(fingerprint), counted),
                func.clock_timestamp(),
            )
            .join(Enrollment, Enrollment.id == QuizAttempt.enrollment_id)
            .where(QuizAttempt.student_id == student_id, QuizAttempt.lesson_id == lesson_id)
        )
    ).one()
    return int(row[0] or 0), int(row[1] or 0), row[2], bool(row[3]), row[4]


async def _granted(
    uow: UnitOfWork, student_id: uuid.UUID, lesson_id: uuid.UUID, fingerprint: str, before: datetime | None = None
) -> int:
    """The attempts granted to the student on the quiz as it is (`grant_attempts`), beyond QUIZ_MAX_ATTEMPTS (those
    granted `before` a moment, given one). Not those of a completion whose certificate was revoked: the retake starts
    the quiz afresh, as its attempts do (`counted_attempts`; explore79 F6: the retake had 6)."""
    total = await uow.session.scalar(
        select(func.coalesce(func.sum(QuizAttemptGrant.extra), 0))
        .join(Enrollment, Enrollment.id == QuizAttemptGrant.enrollment_id)
        .where(
            QuizAttemptGrant.student_id == student_id,
            QuizAttemptGrant.lesson_id == lesson_id,
            QuizAttemptGrant.quiz_fingerprint == fingerprint,
            counted_attempts(),
            *([QuizAttemptGrant.granted_at < before] if before is not None else []),
        )
    )
    return int(total or 0)


def _check_quiz_allowed(used: int, last: datetime | None, now: datetime, limit: int, cooldown: int) -> None:
    """409 once the attempts are used up (saying who can give more: explore77 F1), 429 within the cool-down after
    the last attempt."""
    if used >= limit:
        raise Conflict(
            f"no attempts left on this quiz (limit {limit}); the course's instructor or an admin can grant more",
            code="quiz_attempts_exhausted",
            details={"max_attempts": limit},
        )
    if last is not None and cooldown:
        wait = math.ceil(cooldown - (now - last).total_seconds())
        if wait > 0:
            decision = Decision(allowed=False, retry_after_seconds=min(wait, cooldown), limit="quiz_cooldown")
            # The code passed, not set afterwards: docs/errors.md and the OpenAPI read it from the call (explore13 F1).
            raise rate_limited_error(
                decision, f"wait {min(wait, cooldown)} s before the next attempt", code="quiz_cooldown"
            )


async def submit_quiz(
    *,
    uow: UnitOfWork,
    documents: Any,
    principal: Principal,
    lesson_id: uuid.UUID,
    answers: list[int],
    max_attempts: int,
    cooldown_seconds: int,
    version: int | None = None,
    idempotency_key: str | None = None,
) -> tuple[QuizResult, Enrollment]:
    """Grade an attempt within the attempt limit and cool-down; per-question feedback once passed or exhausted.

    The limit and the cool-down are checked under the enrollment's row lock (`_learning_context`), in the
    transaction that records the attempt, so concurrent submissions are checked one after the other. That lock
    also covers the student's earlier enrollments of the course: there is one live enrollment per student and
    course, and a re-enrollment exists only once the drop (which waits for this lock) has committed. The attempt
    number counts across enrollments and is unique per student and quiz (`uq_quiz_attempts_student_attempt`), so
    the database refuses a second attempt with the same number whatever the path.

    With an `idempotency_key`, a submission already made with it answers the result it got, whatever happened since
    (the cool-down, the attempts used up, the course completed by it): a client that lost the answer retries safely.
    The key is looked for before the lock and again under it (a duplicate sent at once waits for the first)."""
    replay = await _replayed(uow, principal, idempotency_key, lesson_id, answers)
    if replay is not None:
        return replay
    try:
        e, course, lesson, lessons = await _learning_context(uow, documents, principal, lesson_id, completed_ok=True)
        if e.status == "completed" and lesson.lesson_id in await _completed_ids(uow, e.id):
            # Passed in this completion: nothing more to grade. A quiz a later version added is taken like a lesson
            # (`complete_lesson`).
            raise Conflict(_completed_message(e), code="enrollment_completed")
        if e.status == "completed":
            _refuse_if_revoked(e)
    except DomainError:
        # A duplicate that waited for the lock while the first completed the course: refused now, answered then.
        if (replay := await _replayed(uow, principal, idempotency_key, lesson_id, answers)) is not None:
            return replay
        raise
    if (replay := await _replayed(uow, principal, idempotency_key, lesson_id, answers)) is not None:
        return replay
    if lesson.type != "quiz":
        raise Conflict("this lesson is not a quiz", code="not_a_quiz")
    fingerprint = course_rules.quiz_fingerprint(lesson.body)
    if version is not None and version != course.content_version:
        await _ensure_same_quiz(documents, course, lesson_id, version, fingerprint)
    # A submission that can never be graded is told so at once, before the cool-down: it used to wait 30 s to learn
    # its answers did not fit the quiz (explore13 F9). Neither check uses an attempt.
    questions = lesson.body.get("questions") or []
    if len(answers) != len(questions):
        raise Invalid(
            f"expected {len(questions)} answer{'s' if len(questions) != 1 else ''}, got {len(answers)}",
            code="invalid_answers",
            details={"expected": len(questions)},
        )
    for i, (q, a) in enumerate(zip(questions, answers, strict=True)):
        if a >= len(q["options"]):
            raise Invalid(
                f"answers[{i}] is {a}: question {i} has options 0 to {len(q['options']) - 1}",
                code="invalid_answers",
                details={"index": i, "options": len(q["options"])},
            )
    used, numbered, last, passed_before, now = await _quiz_record(uow, e.student_id, lesson_id, fingerprint)
    limit = max_attempts + await _granted(uow, e.student_id, lesson_id, fingerprint)
    if not passed_before:
        _check_quiz_allowed(used, last, now, limit, cooldown_seconds)
    pass_score = int(lesson.body.get("pass_score", 70))
    score, passed = course_rules.grade_quiz(questions, answers, pass_score)
    attempt = used + 1  # on the quiz as it is; the row's number counts every attempt (unique per student and quiz)
    row = QuizAttempt(
        enrollment_id=e.id,
        student_id=e.student_id,
        lesson_id=lesson_id,
        attempt=numbered + 1,
        answers=answers,
        score=score,
        passed=passed,
        submitted_at=now,
        quiz_fingerprint=fingerprint,
        idempotency_key=idempotency_key or None,
    )
    uow.session.add(row)
    if passed:
        percent = await _record_completion(uow, e, lesson, lessons, score)
    else:
        percent = rules.percent_complete([lsn.ref for lsn in lessons], await _completed_ids(uow, e.id))
    if e.status == "completed":
        percent = 100.0  # as its progress says: the course stays complete (`_progress`)
    left = max(0, limit - attempt)
    reveal = passed or passed_before or left == 0
    result = QuizResult(
        score=score,
        passed=passed,
        attempt=attempt,
        pass_score=pass_score,
        percent=percent,
        attempts_left=None if passed or passed_before else left,  # a passed quiz is no longer limited
        correct=[q.get("answer") == a for q, a in zip(questions, answers, strict=True)] if reveal else None,
    )
    if idempotency_key:
        row.result = result.model_dump(mode="json")
    await uow.commit()
    return result, e


async def _replayed(
    uow: UnitOfWork, principal: Principal, key: str | None, lesson_id: uuid.UUID, answers: list[int]
) -> tuple[QuizResult, Enrollment] | None:
    """The result of the caller's submission made with `key`, if there is one: the same quiz and answers, else 409
    `idempotency_key_reused` (a key names one submission)."""
    if not key:
        return None
    row = await uow.session.scalar(
        select(QuizAttempt).where(QuizAttempt.student_id == principal.user_id, QuizAttempt.idempotency_key == key)
    )
    if row is None or row.result is None:
        return None
    if row.lesson_id != lesson_id or list(row.answers) != list(answers):
        raise Conflict(
            "this Idempotency-Key was used for another submission",
            code="idempotency_key_reused",
            details={"lesson_id": str(row.lesson_id)},
        )
    e = await uow.session.get(Enrollment, row.enrollment_id)
    assert e is not None  # an attempt's enrollment is deleted with it (ON DELETE CASCADE)
    return QuizResult.model_validate(row.result), e


async def _ensure_same_quiz(
    documents: Any, course: Course, lesson_id: uuid.UUID, version: int, fingerprint: str
) -> None:
    """The student answered the quiz of version `version`, and another is live: grade it only if the quiz itself
    is the same in both (a republish that changed other lessons). Else 409 `quiz_changed`, before any attempt is
    spent: options reordered or answers changed would grade a right answer wrong (explore11 F7). A version that was
    never published is 422 `unknown_version` (explore12 F7: it was called a changed quiz)."""
    published = await published_lessons_of(documents, course.id, version)
    if not published:  # a published version has a lesson at least (publishing refuses an empty snapshot)
        raise Invalid(
            f"version {version} of this course was never published; the live one is {course.content_version}",
            code="unknown_version",
            details={"version": course.content_version},
        )
    answered = next((lsn for lsn in published if lsn.lesson_id == lesson_id), None)
    if answered is None or course_rules.quiz_fingerprint(answered.body) != fingerprint:
        raise Conflict(
            f"this quiz changed since version {version}: reload the course (version {course.content_version}) "
            "and answer it again; no attempt was used",
            code="quiz_changed",
            details={"version": course.content_version},
        )


async def _progress(
    uow: UnitOfWork, e: Enrollment, lessons: list[PublishedLesson], max_attempts: int | None = None
) -> ProgressPublic:
    rows = {
        r.lesson_id: r
        for r in await uow.session.scalars(select(LessonProgress).where(LessonProgress.enrollment_id == e.id))
    }
    done = {lid for lid, r in rows.items() if r.status == "completed"}
    # Quiz attempts, passed or not (the lesson's progress row is written by the pass alone): this enrollment's best
    # score and whether it tried, as the review counts them (`GET /enrollments/{id}/review`), and how many attempts
    # the student has used, as the limit and the submit's `attempt` count them (across the student's enrollments).
    # All three count the attempts on the quiz as it is now (its fingerprint), as the limit does: after a rewrite,
    # the old quiz's score is not shown beside `attempts: 0` (a pass already made stays, on its progress row).
    mine = QuizAttempt.enrollment_id == e.id
    # The student's attempts that count (`_quiz_record`); a revoked completion shows its own only (explore39 F8: its
    # progress read the retake's attempts).
    counted = mine if e.completion_revoked_at is not None else counted_attempts()
    quizzes = {lsn.lesson_id: course_rules.quiz_fingerprint(lsn.body) for lsn in lessons if lsn.type == "quiz"}
    tried: dict[uuid.UUID, tuple[int, int | None, int]] = {}
    # Passed once (the quiz as it is), in any of the student's enrollments: no longer limited, as the submit judges
    # it (`_quiz_record`'s "passed once"); progress said `attempts_left: 0` to a student who had passed and
    # re-enrolled, while the submit graded her next attempt (explore20 F1).
    passed_once: set[uuid.UUID] = set()
    for lesson_id, fingerprint, here, best, count, passed in await uow.session.execute(
        select(
            QuizAttempt.lesson_id,
            QuizAttempt.quiz_fingerprint,
            func.count().filter(mine),
            func.max(QuizAttempt.score).filter(mine),
            func.count().filter(counted),
            func.bool_or(QuizAttempt.passed).filter(counted),
        )
        .join(Enrollment, Enrollment.id == QuizAttempt.enrollment_id)
        .where(QuizAttempt.student_id == e.student_id, QuizAttempt.lesson_id.in_(list(quizzes)))
        .group_by(QuizAttempt.lesson_id, QuizAttempt.quiz_fingerprint)
    ):
        if fingerprint is not None and fingerprint != quizzes[lesson_id]:
            continue  # a quiz rewritten since: its attempts are neither counted nor scored (explore12 F7)
        if passed:  # of the quiz as it is, as the submit counts a past pass
            passed_once.add(lesson_id)
        was_here, was_best, was_used = tried.get(lesson_id, (0, None, 0))
        bests = [x for x in (was_best, best) if x is not None]
        tried[lesson_id] = (was_here + int(here), max(bests) if bests else None, was_used + int(count))
    revoked = e.completion_revoked_at is not None
    granted: dict[uuid.UUID, int] = {}
    for lesson_id, fingerprint, extra in await uow.session.execute(
        select(QuizAttemptGrant.lesson_id, QuizAttemptGrant.quiz_fingerprint, func.sum(QuizAttemptGrant.extra))
        .join(Enrollment, Enrollment.id == QuizAttemptGrant.enrollment_id)
        .where(
            QuizAttemptGrant.student_id == e.student_id,
            QuizAttemptGrant.lesson_id.in_(list(quizzes)),
            # as `_granted` counts them; a revoked completion shows its own
            QuizAttemptGrant.enrollment_id == e.id if revoked else counted_attempts(),
        )
        .group_by(QuizAttemptGrant.lesson_id, QuizAttemptGrant.quiz_fingerprint)
    ):
        if fingerprint == quizzes[lesson_id]:  # grants on a quiz rewritten since count no more
            granted[lesson_id] = int(extra)
    lesson_views = []
    modules: dict[uuid.UUID, tuple[str, list[bool]]] = {}
    taken: set[uuid.UUID] = set()  # the modules with a lesson of the version the student took (a progress row)
    for lsn in lessons:
        row = rows.get(lsn.lesson_id)
        complete = lsn.lesson_id in done
        here, best, used = tried.get(lsn.lesson_id, (0, None, 0))
        lesson_views.append(
            LessonProgressPublic(
                lesson_id=lsn.lesson_id,
                module_id=lsn.module_id,
                title=lsn.title,
                type=lsn.type,
                status="completed" if complete else "attempted" if here else "not_started",
                # Of the attempts on the quiz as it is: a pass of its old questions keeps the lesson completed, and
                # its score is not shown beside `attempts: 0` (explore29 F4).
                best_score=best,
                attempts=used if lsn.type == "quiz" else None,
                attempts_left=(
                    max(0, max_attempts + granted.get(lsn.lesson_id, 0) - used)
                    # Limited until the quiz as it is was passed, as the submit limits it, whether or not the
                    # lesson completed on an earlier quiz's pass; none to use in an enrollment that takes no more
                    # submissions (dropped, waiting, a quiz a completed course passed: explore29 F4 read "5 left"
                    # on a completed one); a quiz a later version added to a completed course is taken as any.
                    if lsn.type == "quiz"
                    and max_attempts is not None
                    and lsn.lesson_id not in passed_once
                    and (e.status == "active" or (e.status == "completed" and not complete and not revoked))
                    else None
                ),
                completed_at=row.completed_at if row else None,
            )
        )
        modules.setdefault(lsn.module_id, (lsn.module_title, []))[1].append(complete)
        if row is not None:
            taken.add(lsn.module_id)
    # A completed course's modules of the version it took are complete, as the course is (explore60 F5: 100 % beside
    # a module at 75 %, not completed, once a later version added a lesson to it); a module the later version added
    # is as its lessons are (explore62 F5: 100 % and completed beside its only lesson, not started).
    finished = e.status == "completed"
    module_views = [
        ModuleProgressPublic(
            module_id=mid,
            title=title,
            percent=100.0 if finished and mid in taken else round(sum(flags) * 100 / len(flags), 2),
            completed=(finished and mid in taken) or all(flags),
        )
        for mid, (title, flags) in modules.items()
    ]
    return ProgressPublic(
        enrollment_id=e.id,
        status=e.status,
        # A completed course stays complete: it was the version the student took (a later version's new lessons
        # show as not started, and are taken as any: explore77 F3).
        percent=100.0 if e.status == "completed" else rules.percent_complete([lsn.ref for lsn in lessons], done),
        lessons=lesson_views,
        modules=module_views,
    )


async def get_progress(
    *, uow: UnitOfWork, documents: Any, principal: Principal, enrollment_id: uuid.UUID, max_attempts: int | None = None
) -> ProgressPublic:
    """An enrollment's progress, for its student, the course's instructor (who reads the roster and each student's
    review too: explore11 F12) and admins; anyone else 404."""
    e, course = await _readable(uow, principal, enrollment_id)
    return await _progress(uow, e, await published_lessons(documents, course), max_attempts)


async def _readable(uow: UnitOfWork, principal: Principal, enrollment_id: uuid.UUID) -> tuple[Enrollment, Course]:
    """The enrollment (`enrollment.load_readable`: its student, the course's instructor and admins; anyone else 404)
    and its course."""
    e = await load_readable(uow, principal, enrollment_id)
    course = await uow.session.get(Course, e.course_id)
    if course is None:
        raise NotFound("course not found", code="course_not_found")
    return e, course


async def grant_attempts(
    *,
    uow: UnitOfWork,
    documents: Any,
    principal: Principal,
    enrollment_id: uuid.UUID,
    data: QuizGrantIn,
    max_attempts: int,
) -> QuizGrantPublic:
    """More attempts on one quiz for one student (explore77 F1: an employee who used up a compliance quiz's attempts
    could never complete the course). The course's instructor or an admin; the enrollment live (active, or completed
    and taking a quiz a later version added); the quiz not passed. Counted on the quiz as it is (a rewrite starts the
    count again), recorded in the enrollment's history, and the student is told (`quiz.attempts_granted`)."""
    e = await load_readable(uow, principal, enrollment_id)  # anyone else: 404, as the enrollment's other reads
    if not (principal.is_admin or await teaches_course(uow, principal, e.course_id)):  # explore79 F1: admins were not
        raise Forbidden("only the course's instructor or an admin grants attempts", code="not_course_owner")
    locked = await uow.session.get(Enrollment, e.id, with_for_update=True, populate_existing=True)
    course = await uow.session.get(Course, e.course_id)
    assert locked is not None and course is not None  # read above; an enrollment is never deleted, nor its course
    e = locked
    lesson = next((lsn for lsn in await published_lessons(documents, course) if lsn.lesson_id == data.lesson_id), None)
    if lesson is None:
        raise NotFound("no such lesson in the course's live version", code="lesson_not_found")
    if lesson.type != "quiz":
        raise Conflict("this lesson is not a quiz", code="not_a_quiz")
    if e.status not in ("active", "completed") or e.completion_revoked_at is not None:
        raise Conflict(
            f"the enrollment is {e.status if e.completion_revoked_at is None else 'a revoked completion'}: it takes "
            "no more attempts",
            code="enrollment_not_active",
            details={"status": e.status},
        )
    fingerprint = course_rules.quiz_fingerprint(lesson.body)
    used, _numbered, last, passed_before, now = await _quiz_record(uow, e.student_id, lesson.lesson_id, fingerprint)
    if passed_before or lesson.lesson_id in await _completed_ids(uow, e.id):
        raise Conflict("the student has passed this quiz: it has no limit any more", code="quiz_passed")
    grant = QuizAttemptGrant(
        enrollment_id=e.id,
        student_id=e.student_id,
        lesson_id=lesson.lesson_id,
        quiz_fingerprint=fingerprint,
        extra=data.extra,
        reason=data.reason,
        granted_by=principal.user_id,
        granted_at=now,
    )
    uow.session.add(grant)
    await uow.session.flush()
    # Whether the last attempt was told which answers were right: it left none under the limit of its time (the
    # grants made before it); explore79 F5 read only whether this grant's came right after it.
    shown = used > 0 and used >= max_attempts + await _granted(uow, e.student_id, lesson.lesson_id, fingerprint, last)
    limit = max_attempts + await _granted(uow, e.student_id, lesson.lesson_id, fingerprint)
    more = f"{data.extra} more attempt{'s' if data.extra != 1 else ''}"
    why = f": {data.reason}" if data.reason else ""
    uow.session.add(
        EnrollmentHistory(
            enrollment_id=e.id,
            from_status=e.status,
            to_status=e.status,
            actor_id=principal.user_id,
            actor="admin" if principal.is_admin else "instructor",
            reason=f"{more} on the quiz “{lesson.title}”{why}"[:500],
            at=now,
        )
    )
    await create_notification(
        uow.session,
        user_id=e.student_id,
        kind="quiz.attempts_granted",
        title=f"More attempts on “{lesson.title}”",
        body=f"You have {more} on the quiz “{lesson.title}” in “{course.title}” ({max(0, limit - used)} left){why}",
        dedupe_key=f"quiz-attempts-granted:{grant.id}",
        data={"enrollment_id": str(e.id), "course_id": str(course.id), "lesson_id": str(lesson.lesson_id)},
    )
    await uow.commit()
    return QuizGrantPublic(
        id=grant.id,
        enrollment_id=e.id,
        lesson_id=lesson.lesson_id,
        quiz_title=lesson.title,
        extra=data.extra,
        reason=data.reason,
        granted_at=now,
        max_attempts=limit,
        attempts_used=used,
        attempts_left=max(0, limit - used),
        answers_shown=shown,
    )


async def attempts(
    *, uow: UnitOfWork, documents: Any, principal: Principal, enrollment_id: uuid.UUID, page: int, page_size: int
) -> tuple[list[QuizAttemptPublic], int]:
    """Every quiz attempt made in an enrollment, newest first, with its score and whether it answered the quiz as it
    is now (explore63 F5: a rewritten quiz's progress starts again, and the earlier scores were nowhere to be read: the
    instructor's gradebook lost them). Its student, the course's instructor and admins; anyone else 404."""
    e, course = await _readable(uow, principal, enrollment_id)
    live = {lsn.lesson_id: lsn for lsn in await published_lessons(documents, course) if lsn.type == "quiz"}
    where = QuizAttempt.enrollment_id == e.id
    total = await uow.session.scalar(select(func.count()).select_from(QuizAttempt).where(where)) or 0
    rows = await uow.session.scalars(
        select(QuizAttempt)
        .where(where)
        .order_by(QuizAttempt.submitted_at.desc(), QuizAttempt.attempt.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    found = []
    for a in rows:
        quiz = live.get(a.lesson_id)
        current = quiz is not None and a.quiz_fingerprint in (course_rules.quiz_fingerprint(quiz.body), None)
        found.append(
            QuizAttemptPublic(
                lesson_id=a.lesson_id,
                quiz_title=quiz.title if quiz is not None else None,
                attempt=a.attempt,
                score=a.score,
                passed=a.passed,
                answers=a.answers,
                submitted_at=a.submitted_at,
                on_the_quiz_as_it_is=current,
            )
        )
    return found, total
