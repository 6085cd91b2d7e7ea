"""Analytics: counters kept by an event consumer, the dashboard read from them, and a reconcile against the source."""

from __future__ import annotations

import uuid
from collections.abc import Set as AbstractSet
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Date, Float, String, and_, cast, exists, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from smartcourse.db import UnitOfWork, arrays, insert_from_arrays
from smartcourse.domain import courses as course_rules
from smartcourse.errors import Forbidden, Invalid, NotFound
from smartcourse.event_consumer import Consumer, deferred
from smartcourse.models import (
    ENROLLMENT_STATUSES,
    AiInteraction,
    AnalyticsCounter,
    Course,
    Enrollment,
    LessonProgress,
    OutboxEvent,
    User,
    iso,
    utcnow,
)
from smartcourse.security import Principal
from smartcourse.services import dispatcher, operations, outbox

POPULAR_LIMIT = 5


Bump = tuple[str, str, float]  # (metric, bucket, by)


async def _bump(session: AsyncSession, *bumps: Bump) -> None:
    """Add to counters, all in one statement (one round trip per event, however many counters it moves); inside
    `Consumer.together`, only added up, and written for all the transaction's events by `_flush_bumps`.

    Same (metric, bucket) twice is summed first (one statement may not update a row twice); rows go in key order,
    so two consumers moving the same counters lock them in the same order."""
    pending = deferred(session)
    totals: dict[tuple[str, str], float] = {} if pending is None else pending.setdefault("analytics", {})
    for metric, bucket, by in bumps:
        totals[metric, bucket] = totals.get((metric, bucket), 0.0) + by
    if pending is None:
        await _write_bumps(session, totals)


async def _flush_bumps(session: AsyncSession, pending: dict[str, Any]) -> None:
    await _write_bumps(session, pending.get("analytics") or {})


_BUMP_COLUMNS = (("metric", String()), ("bucket", String()), ("value", Float()))
_COUNTERS = AnalyticsCounter.__table__
_bumps = insert_from_arrays(_COUNTERS, _BUMP_COLUMNS)
#: Every counter move of a transaction in one statement of one shape (built once: see `db.insert_from_arrays`).
_WRITE_BUMPS = _bumps.on_conflict_do_update(
    index_elements=[_COUNTERS.c.metric, _COUNTERS.c.bucket],
    set_={"value": _COUNTERS.c.value + _bumps.excluded.value, "updated_at": func.now()},
)


async def _write_bumps(session: AsyncSession, totals: dict[tuple[str, str], float]) -> None:
    if not totals:
        return
    rows = [(m, b, by) for (m, b), by in sorted(totals.items())]
    await session.execute(_WRITE_BUMPS, arrays(_BUMP_COLUMNS, rows))


def _ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _day(moment: datetime) -> str:
    """The UTC calendar day of a moment: every per-day bucket and series uses it."""
    return moment.astimezone(UTC).date().isoformat()


# --- the consumer's effects (one transaction each, with the dedupe record) ------------------------


async def _user_registered(session: AsyncSession, env: dict[str, Any]) -> None:
    role = env["data"]["role"]
    if role in {"student", "instructor"}:
        await _bump(session, (f"{role}s", "", 1))


async def _role_changed(session: AsyncSession, env: dict[str, Any]) -> None:
    """An admin changed an account's role: it counts under its new role (registered users by role, as the source)."""
    before, after = env["data"]["from"], env["data"]["to"]
    bumps: list[Bump] = [(f"{role}s", "", by) for role, by in ((before, -1), (after, 1)) if role in _COUNTED_ROLES]
    if bumps:
        await _bump(session, *bumps)


#: The roles the registered-users counters count (`students`, `instructors`).
_COUNTED_ROLES = frozenset({"student", "instructor"})


async def _course_published(session: AsyncSession, env: dict[str, Any]) -> None:
    # A re-publish does not add a course. The first go-live may be version 2 or more (a failed attempt spends a
    # version); events from before `first_live` was written only know the version.
    if env["data"].get("first_live", int(env["data"]["version"]) == 1):
        await _bump(session, ("courses_published", "", 1), ("instructor_live_courses", env["data"]["instructor_id"], 1))


async def _course_archived(session: AsyncSession, env: dict[str, Any]) -> None:
    if env["data"].get("was_live"):
        bumps: list[Bump] = [("courses_published", "", -1)]
        if env["data"].get("instructor_id"):
            bumps.append(("instructor_live_courses", env["data"]["instructor_id"], -1))
        await _bump(session, *bumps)


async def _course_restored(session: AsyncSession, env: dict[str, Any]) -> None:
    """The inverse of archiving a live course: it counts again (one never published is a draft again)."""
    if env["data"]["is_live"]:
        await _bump(session, ("courses_published", "", 1), ("instructor_live_courses", env["data"]["instructor_id"], 1))


async def _admitted(session: AsyncSession, env: dict[str, Any]) -> None:
    data = env["data"]
    admitted_at = _ts(data.get("admitted_at"))
    if admitted_at is None:  # waitlisted: not admitted yet
        return
    day, student = _day(admitted_at), data["student_id"]
    await _bump(
        session,
        ("enrollments_admitted", "", 1),
        ("new_enrollments", day, 1),
        ("course_enrollments", data["course_id"], 1),
        ("student_live_enrollments", student, 1),
        ("student_current_enrollments", student, 1),
        ("student_active_days", f"{day}|{student}", 1),
    )


async def _dropped(session: AsyncSession, env: dict[str, Any]) -> None:
    data = env["data"]
    if data.get("freed_seat"):
        await _bump(
            session,
            ("student_live_enrollments", data["student_id"], -1),
            ("student_current_enrollments", data["student_id"], -1),
        )


async def _completed(session: AsyncSession, env: dict[str, Any]) -> None:
    data = env["data"]
    started, done = _ts(data.get("activated_at")), _ts(data["completed_at"])
    bumps: list[Bump] = [("enrollments_completed", "", 1), ("student_current_enrollments", data["student_id"], -1)]
    if done is not None:
        bumps += [("completions", _day(done), 1), ("student_active_days", f"{_day(done)}|{data['student_id']}", 1)]
    if started and done:
        seconds = (done - started).total_seconds()
        bumps += [
            ("completion_seconds_total", "", seconds),
            ("timed_completions", _day(done), 1),
            ("completion_seconds", _day(done), seconds),
        ]
    await _bump(session, *bumps)


async def _progressed(session: AsyncSession, env: dict[str, Any]) -> None:
    """A lesson completed (or a quiz passed): engagement for its course, activity for its student."""
    data = env["data"]
    occurred = _ts(env.get("occurred_at")) or utcnow()
    await _bump(
        session,
        ("course_engagement", data["course_id"], 1),
        ("student_active_days", f"{_day(occurred)}|{data['student_id']}", 1),
    )


async def _recorded(session: AsyncSession, env: dict[str, Any]) -> None:
    await _bump(session, ("enrollments_recorded_by_workflow", "", 1))


async def _ai_interaction(session: AsyncSession, env: dict[str, Any]) -> None:
    data = env["data"]
    await _bump(session, ("ai_interactions", f"{data['kind']}:{data['outcome']}", 1))


CONSUMER = Consumer(
    name="analytics",
    flush=_flush_bumps,
    effects={
        "user.registered": _user_registered,
        "user.role_changed": _role_changed,
        "course.published": _course_published,
        "course.archived": _course_archived,
        "course.restored": _course_restored,
        "enrollment.created": _admitted,
        "waitlist.promoted": _admitted,
        "enrollment.dropped": _dropped,
        "enrollment.completed": _completed,
        "progress.updated": _progressed,
        "analytics.enrollment_recorded": _recorded,
        "ai.interaction_recorded": _ai_interaction,
    },
)


# --- reading ----------------------------------------------------------------------------------

#: "Active" students: a live (pending or active) enrollment, or learning activity in this many UTC days.
ACTIVE_DAYS = 30
#: The longest range a series answers (bounded output).
MAX_SERIES_DAYS = 3 * 366
INTERVALS = ("day", "week", "month")
#: The days a series may name (no platform history before; and no calendar arithmetic overflow near year 1 or 9999).
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2999, 12, 31)


def _windows(today: date) -> dict[str, date]:
    return {"day": today, "week": today - timedelta(days=6), "month": today - timedelta(days=ACTIVE_DAYS - 1)}


def _popular(counts: dict[str, float], courses: dict[str, tuple[str, str]], field: str) -> list[dict[str, Any]]:
    """The top courses; each with its title and its status now (an archived course keeps the enrollments it had)."""
    ranked = sorted(((c, n) for c, n in counts.items() if n > 0), key=lambda cn: (-cn[1], cn[0]))
    unknown: tuple[str | None, str | None] = (None, None)
    top = [(c, n, courses.get(c, unknown)) for c, n in ranked[:POPULAR_LIMIT]]
    return [{"course_id": c, "title": title, "status": status, field: int(n)} for c, n, (title, status) in top]


def _metrics(
    *,
    students: float,
    instructors: float,
    published: float,
    per_day: dict[str, float],
    admitted: float,
    completed: float,
    completion_seconds: float,
    per_course: dict[str, float],
    per_student: dict[str, float],
    today: date,
    active_students: float = 0,
    active_instructors: float = 0,
    per_course_engagement: dict[str, float] | None = None,
    titles: dict[str, tuple[str, str]] | None = None,
) -> dict[str, Any]:
    windows = _windows(today)
    live = [n for n in per_student.values() if n > 0]
    titles = titles or {}
    return {
        "total_students": int(active_students),
        "registered_students": int(students),
        "total_instructors": int(active_instructors),
        "registered_instructors": int(instructors),
        "total_courses_published": int(published),
        "new_enrollments": {
            name: int(sum(n for d, n in per_day.items() if start.isoformat() <= d <= today.isoformat()))
            for name, start in windows.items()
        },
        "completion_rate": round(completed * 100 / admitted, 2) if admitted else 0.0,
        # None (null) with nothing completed, as in the series: 0.0 would read as "completed at once".
        "avg_time_to_complete_hours": round(completion_seconds / completed / 3600, 4) if completed else None,
        "popular_courses": _popular(per_course, titles, "enrollments"),
        "popular_courses_by_engagement": _popular(per_course_engagement or {}, titles, "lessons_completed"),
        "avg_courses_per_student": round(sum(live) / len(live), 4) if live else 0.0,
    }


def _ensure_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise Forbidden("analytics are for admins", code="admin_only")


def _active_from_counters(
    current: dict[str, float], active_days: dict[str, float], today: date, not_students: AbstractSet[str] = frozenset()
) -> int:
    first = (today - timedelta(days=ACTIVE_DAYS - 1)).isoformat()
    last = today.isoformat()
    students = {s for s, n in current.items() if n > 0}
    for key, n in active_days.items():
        day, _, student = key.partition("|")
        if n > 0 and first <= day <= last:
            students.add(student)
    return len(students - not_students)


async def _not_students(uow: UnitOfWork) -> set[str]:
    """The accounts whose role is not `student` now (instructors and admins, few beside the students): an account an
    admin moved from student to instructor keeps its enrollments and their counters, but the student metrics count it
    under its new role, as the registered counts do (explore50 F1: `total_students` 7 with `registered_students` 6)."""
    return {str(i) for i in await uow.session.scalars(select(User.id).where(User.role != "student"))}


async def _teaching_instructors(uow: UnitOfWork, live_courses: dict[str, float]) -> int:
    """The owners of a live course whose role is `instructor` now: an admin who made a course, or an instructor made
    an admin, owns live courses too, but is not an instructor, as `registered_instructors` counts them (explore61 F1:
    `total_instructors` 3 with `registered_instructors` 1)."""
    owners = [uuid.UUID(k) for k, n in live_courses.items() if n > 0 and _is_uuid(k)]
    if not owners:
        return 0
    return int(
        await uow.session.scalar(
            select(func.count()).select_from(User).where(User.id.in_(owners), User.role == "instructor")
        )
        or 0
    )


async def _titles(uow: UnitOfWork, ids: set[str]) -> dict[str, tuple[str, str]]:
    """Title and status of each course named."""
    wanted = [uuid.UUID(i) for i in ids if _is_uuid(i)]
    if not wanted:
        return {}
    rows = await uow.session.execute(select(Course.id, Course.title, Course.status).where(Course.id.in_(wanted)))
    return {str(i): (t, str(getattr(st, "value", st))) for i, t, st in rows.all()}


def _is_uuid(text_: str) -> bool:
    try:
        uuid.UUID(text_)
    except ValueError:
        return False
    return True


def _top_ids(*counts: dict[str, float]) -> set[str]:
    ids: set[str] = set()
    for c in counts:
        ranked = sorted(((k, n) for k, n in c.items() if n > 0), key=lambda kn: (-kn[1], kn[0]))
        ids |= {k for k, _ in ranked[:POPULAR_LIMIT]}
    return ids


#: A counter read: its metric, or (metric, first bucket, bucket past the last) for a range of a per-day metric
#: (buckets start with the ISO day, so a string range is a day range on the primary key's index).
CounterRead = str | tuple[str, str, str]


def _days(metric: str, first: date, last: date) -> CounterRead:
    return (metric, first.isoformat(), (last + timedelta(days=1)).isoformat())


async def _counters(uow: UnitOfWork, *reads: CounterRead) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """The counters named, a day range only of a per-day one: the rows per student and day (and per day) pile up
    for ever, and reading them all made the dashboard take seconds after a year (explore28 F1)."""
    wanted = []
    for read in reads:
        if isinstance(read, str):
            wanted.append(AnalyticsCounter.metric == read)
        else:
            metric, low, high = read
            wanted.append(
                and_(AnalyticsCounter.metric == metric, AnalyticsCounter.bucket >= low, AnalyticsCounter.bucket < high)
            )
    rows = (
        await uow.session.execute(
            select(AnalyticsCounter.metric, AnalyticsCounter.bucket, AnalyticsCounter.value).where(or_(*wanted))
        )
    ).all()
    flat: dict[str, float] = {}
    buckets: dict[str, dict[str, float]] = {}
    for metric, bucket, value in rows:
        if bucket:
            buckets.setdefault(metric, {})[bucket] = value
        else:
            flat[metric] = value
    return flat, buckets


#: The counters the dashboard reads whole: the totals, and those per course, student, instructor or AI outcome.
DASHBOARD_COUNTERS = (
    "students",
    "instructors",
    "courses_published",
    "enrollments_admitted",
    "enrollments_completed",
    "completion_seconds_total",
    "course_enrollments",
    "course_engagement",
    "student_live_enrollments",
    "student_current_enrollments",
    "instructor_live_courses",
    "ai_interactions",
)


async def dashboard(*, uow: UnitOfWork, principal: Principal, today: date | None = None) -> dict[str, Any]:
    """The metrics as the consumers have counted them."""
    _ensure_admin(principal)
    today = today or datetime.now(UTC).date()
    month = _windows(today)["month"]
    flat, buckets = await _counters(
        uow,
        *DASHBOARD_COUNTERS,
        _days("new_enrollments", month, today),
        _days("student_active_days", month, today),
    )
    per_course = buckets.get("course_enrollments", {})
    engagement = buckets.get("course_engagement", {})
    not_students = await _not_students(uow)
    top = {c for c, _ in sorted(per_course.items(), key=lambda cn: (-cn[1], cn[0]))[:POPULAR_LIMIT]}
    top |= {c for c, _ in sorted(engagement.items(), key=lambda cn: (-cn[1], cn[0]))[:POPULAR_LIMIT]}
    metrics = _metrics(
        students=flat.get("students", 0),
        instructors=flat.get("instructors", 0),
        published=flat.get("courses_published", 0),
        per_day=buckets.get("new_enrollments", {}),
        admitted=flat.get("enrollments_admitted", 0),
        completed=flat.get("enrollments_completed", 0),
        completion_seconds=flat.get("completion_seconds_total", 0),
        per_course=per_course,
        per_student={k: n for k, n in buckets.get("student_live_enrollments", {}).items() if k not in not_students},
        today=today,
        active_students=_active_from_counters(
            buckets.get("student_current_enrollments", {}), buckets.get("student_active_days", {}), today, not_students
        ),
        active_instructors=await _teaching_instructors(uow, buckets.get("instructor_live_courses", {})),
        per_course_engagement=engagement,
        titles=await _titles(uow, top),
    )
    metrics["ai_assistant_usage"] = ai_usage(buckets.get("ai_interactions", {}))
    metrics["workflow_issues"] = await _workflow_issues(uow)
    return metrics


AI_GENERATION_KINDS = ("summary", "objectives", "quiz", "explain")


def ai_usage(by_kind_outcome: dict[str, float]) -> dict[str, Any]:
    """AI assistant usage from counts keyed "<kind>:<outcome>" (the interaction events, or the table)."""

    def n(kind: str | None, outcome: str | None) -> int:
        return int(
            sum(
                v
                for key, v in by_kind_outcome.items()
                if (kind is None or key.split(":")[0] == kind) and (outcome is None or key.split(":")[1] == outcome)
            )
        )

    return {
        "asked": n("ask", None),
        "answered": n("ask", "answer"),
        "clarified": n("ask", "clarify"),
        "refused": n("ask", "refuse"),
        "failed": n(None, "error"),
        "cancelled": n(None, "cancelled"),
        "generated": {kind: n(kind, "generated") for kind in AI_GENERATION_KINDS},
        # The type of assistance: contextual (a question answered from the course: a student's, or its owner's or an
        # admin's trying the assistant) or generated (an instructor's summary, objectives, quiz or explanation).
        "by_type": {
            "contextual": n("ask", None),
            "generated": sum(n(kind, None) for kind in AI_GENERATION_KINDS),
        },
    }


async def _workflow_issues(uow: UnitOfWork) -> dict[str, int]:
    """Open failures (operations.failure_counts: failed/retrying workflow runs, dead letters, failed tasks), outbox
    rows being retried, the unrelayed outbox and its oldest event's age, and the admitted enrollments the enrollment
    workflow has not activated yet (`/health`'s `enrollment_backlog.admitted_not_active`). All from the tables: a
    stopped relay or dispatcher shows there while the counters they feed stand still, and an enrollment dropped
    before its workflow started (the dispatcher skips it: nothing to set up) is awaiting nothing."""
    stuck = await uow.session.scalar(
        select(func.count())
        .select_from(OutboxEvent)
        .where(OutboxEvent.published_at.is_(None), OutboxEvent.attempts > 0)
    )
    backlog = await outbox.backlog_figures(uow.session)
    return {
        **await operations.failure_counts(uow.session),
        "outbox_retrying": int(stuck or 0),
        "outbox_unpublished": int(backlog["unpublished"]),
        "outbox_oldest_age_seconds": int(backlog["oldest_age_seconds"]),
        "enrollments_awaiting_workflow": (await dispatcher.backlog(uow.session)).admitted_not_active,
    }


def _utc_day(column: Any) -> Any:
    return cast(func.timezone("UTC", column), Date)


async def _source_activity(uow: UnitOfWork, today: date) -> int:
    """Students (accounts whose role is `student` now) with a live (pending/active) enrollment, or an admission, a
    lesson completed or a course completed on one of the last ACTIVE_DAYS UTC days."""
    s = uow.session
    first = today - timedelta(days=ACTIVE_DAYS - 1)

    def within(column: Any) -> Any:
        return and_(column.is_not(None), _utc_day(column) >= first, _utc_day(column) <= today)

    current = select(Enrollment.student_id).where(
        Enrollment.admitted_at.is_not(None), Enrollment.status.in_(("pending", "active"))
    )
    admitted = select(Enrollment.student_id).where(within(Enrollment.admitted_at))
    completed = select(Enrollment.student_id).where(within(Enrollment.completed_at))
    lessons = (
        select(Enrollment.student_id)
        .join(LessonProgress, LessonProgress.enrollment_id == Enrollment.id)
        .where(LessonProgress.status == "completed", within(LessonProgress.completed_at))
    )
    union = current.union(admitted, completed, lessons).subquery()
    students = select(func.count()).select_from(union).join(User, User.id == union.c.student_id)
    return int(await s.scalar(students.where(User.role == "student")) or 0)


async def _source_engagement(uow: UnitOfWork, course_id: uuid.UUID | None = None) -> dict[str, float]:
    query = (
        select(Enrollment.course_id, func.count())
        .join(LessonProgress, LessonProgress.enrollment_id == Enrollment.id)
        .where(LessonProgress.status == "completed")
        .group_by(Enrollment.course_id)
    )
    if course_id is not None:
        query = query.where(Enrollment.course_id == course_id)
    return {str(c): float(n) for c, n in (await uow.session.execute(query)).all()}


async def from_source(*, uow: UnitOfWork, today: date | None = None) -> dict[str, Any]:
    """The same metrics recomputed from the source tables."""
    s = uow.session
    today = today or datetime.now(UTC).date()
    # Registered users (the counter counts user.registered): disabling an account does not unregister it.
    users = dict((await s.execute(select(User.role, func.count()).group_by(User.role))).all())
    live_course = and_(Course.content_version > 0, Course.status != "archived")
    published = await s.scalar(select(func.count()).select_from(Course).where(live_course))
    teaching = await s.scalar(
        select(func.count(func.distinct(Course.instructor_id)))
        .join(User, User.id == Course.instructor_id)
        .where(live_course, User.role == "instructor")
    )
    admitted = Enrollment.admitted_at.is_not(None)
    per_day = await _source_per_day(uow, Enrollment.admitted_at, admitted)
    n_admitted = await s.scalar(select(func.count()).select_from(Enrollment).where(admitted)) or 0
    completed_row = (
        await s.execute(
            select(
                func.count(),
                func.coalesce(
                    func.sum(cast(func.extract("epoch", Enrollment.completed_at - Enrollment.activated_at), Float)), 0
                ),
            ).where(Enrollment.status == "completed", Enrollment.activated_at.is_not(None))
        )
    ).one()
    per_course = {
        str(c): float(n)
        for c, n in (
            await s.execute(select(Enrollment.course_id, func.count()).where(admitted).group_by(Enrollment.course_id))
        ).all()
    }
    per_student = {
        str(st): float(n)
        for st, n in (
            await s.execute(
                select(Enrollment.student_id, func.count())
                .join(User, User.id == Enrollment.student_id)
                .where(and_(admitted, Enrollment.status != "dropped"), User.role == "student")
                .group_by(Enrollment.student_id)
            )
        ).all()
    }
    engagement = await _source_engagement(uow)
    ai_rows = await s.execute(
        select(AiInteraction.kind, AiInteraction.outcome, func.count()).group_by(
            AiInteraction.kind, AiInteraction.outcome
        )
    )
    metrics = _metrics(
        students=users.get("student", 0),
        instructors=users.get("instructor", 0),
        published=published or 0,
        per_day=per_day,
        admitted=n_admitted,
        completed=completed_row[0],
        completion_seconds=completed_row[1],
        per_course=per_course,
        per_student=per_student,
        today=today,
        active_students=await _source_activity(uow, today),
        active_instructors=teaching or 0,
        per_course_engagement=engagement,
        titles=await _titles(uow, _top_ids(per_course, engagement)),
    )
    metrics["ai_assistant_usage"] = ai_usage({f"{k}:{o}": float(c) for k, o, c in ai_rows.all()})
    return metrics


async def _source_per_day(uow: UnitOfWork, column: Any, *where: Any) -> dict[str, float]:
    rows = await uow.session.execute(
        select(_utc_day(column).label("d"), func.count()).where(*where).group_by(text("d"))
    )
    return {d.isoformat(): float(n) for d, n in rows.all()}


def _drift(counted: Any, actual: Any) -> float:
    if counted is None or actual is None:  # a mean of nothing (no completion): null on one side only is 1
        return 0 if counted is None and actual is None else 1
    if isinstance(counted, dict):
        return sum(abs(_drift(counted.get(k, 0), actual.get(k, 0))) for k in set(counted) | set(actual))
    if isinstance(counted, list):
        return 0 if counted == actual else max(len(counted), len(actual), 1)
    return round(abs(float(counted) - float(actual)), 6)


async def _series_from_source(uow: UnitOfWork) -> dict[str, dict[str, float]]:
    """The per-day series the counters keep, from the tables (for reconcile)."""
    completed = Enrollment.status == "completed"
    timed = and_(completed, Enrollment.activated_at.is_not(None))
    seconds = await uow.session.execute(
        select(
            _utc_day(Enrollment.completed_at).label("d"),
            func.sum(cast(func.extract("epoch", Enrollment.completed_at - Enrollment.activated_at), Float)),
        )
        .where(timed)
        .group_by(text("d"))
    )
    return {
        "new_enrollments": await _source_per_day(uow, Enrollment.admitted_at, Enrollment.admitted_at.is_not(None)),
        "completions": await _source_per_day(uow, Enrollment.completed_at, completed),
        "timed_completions": await _source_per_day(uow, Enrollment.completed_at, timed),
        "completion_seconds": {d.isoformat(): round(float(v), 3) for d, v in seconds.all()},
    }


async def _source_buckets(uow: UnitOfWork) -> dict[str, dict[str, float]]:
    """The per-course, per-student and per-instructor counters behind the dashboard, from the tables (for reconcile):
    a counter the dashboard does not show (the sixth course's enrollments, one instructor's live courses) drifts
    unseen until it changes a shown figure (explore14 F1)."""
    s = uow.session
    admitted = Enrollment.admitted_at.is_not(None)

    async def per(key: Any, *where: Any) -> dict[str, float]:
        rows = await s.execute(select(key, func.count()).where(*where).group_by(key))
        return {str(k): float(n) for k, n in rows.all()}

    return {
        "course_enrollments": await per(Enrollment.course_id, admitted),
        "course_engagement": await _source_engagement(uow),
        "student_live_enrollments": await per(Enrollment.student_id, admitted, Enrollment.status != "dropped"),
        "student_current_enrollments": await per(
            Enrollment.student_id, admitted, Enrollment.status.in_(("pending", "active"))
        ),
        "instructor_live_courses": await per(
            Course.instructor_id, Course.content_version > 0, Course.status != "archived"
        ),
    }


#: The most mismatching keys reconcile lists per counter (a report, not a dump of every student).
MISMATCHES_LISTED = 20


async def reconcile(*, uow: UnitOfWork, principal: Principal) -> dict[str, Any]:
    """Counted vs recomputed, per metric; `drift` is 0 everywhere once every event is processed. Covers the
    dashboard's metrics, the per-day series behind /analytics/enrollments and /analytics/completions, and every
    key of the counters behind the dashboard (`counters:<name>`, with the first mismatching keys in
    `mismatches`)."""
    _ensure_admin(principal)
    today = datetime.now(UTC).date()
    counted = await dashboard(uow=uow, principal=principal, today=today)
    actual = await from_source(uow=uow, today=today)
    series_actual = await _series_from_source(uow)
    source_buckets = await _source_buckets(uow)
    _, buckets = await _counters(uow, *series_actual, *source_buckets)
    for name, per_day in series_actual.items():
        counted_series = {d: round(v, 3) for d, v in buckets.get(name, {}).items() if v}
        counted[f"series:{name}"] = counted_series
        actual[f"series:{name}"] = per_day
    drift = {name: _drift(counted[name], actual[name]) for name in actual}
    mismatches: dict[str, list[dict[str, Any]]] = {}
    for name, source in source_buckets.items():
        kept = buckets.get(name, {})
        wrong = sorted(k for k in set(kept) | set(source) if kept.get(k, 0) != source.get(k, 0))
        drift[f"counters:{name}"] = round(sum(abs(kept.get(k, 0) - source.get(k, 0)) for k in wrong), 6)
        if wrong:
            mismatches[name] = [
                {"key": k, "counted": kept.get(k, 0), "source": source.get(k, 0)} for k in wrong[:MISMATCHES_LISTED]
            ]
    pending = await uow.session.scalar(
        select(func.count()).select_from(OutboxEvent).where(OutboxEvent.published_at.is_(None))
    )
    return {
        "drift": drift,
        # Units differ per metric (people, percentage points, hours, list entries): 0 = agree, else see `drift`.
        "total_drift": round(sum(drift.values()), 6),
        "counted": {k: counted[k] for k in actual},
        "source": actual,
        "mismatches": mismatches,
        "events_pending": int(pending or 0),
    }


# --- series and views -----------------------------------------------------------------------------


def _period(day: date, interval: str) -> date:
    """The first day of the period (UTC calendar day, ISO week starting Monday, calendar month) holding `day`."""
    if interval == "week":
        return day - timedelta(days=day.weekday())
    if interval == "month":
        return day.replace(day=1)
    return day


def _next_period(start: date, interval: str) -> date:
    if interval == "week":
        return start + timedelta(days=7)
    if interval == "month":
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return start + timedelta(days=1)


def _range(interval: str, start: date | None, end: date | None) -> tuple[date, date]:
    if interval not in INTERVALS:
        raise Invalid(f"interval must be one of {', '.join(INTERVALS)}", code="invalid_interval")
    for given in (start, end):
        if given is not None and not FIRST_DAY <= given <= LAST_DAY:
            raise Invalid(f"dates must be between {FIRST_DAY} and {LAST_DAY}", code="invalid_range")
    # Defaults: `to` today, `from` 30 days before `to` but not before FIRST_DAY (explore50 F4: `?to=2000-01-01` alone
    # answered a `from` of 1999-12-03, a day refused when given).
    to_given = end is not None
    end = end or datetime.now(UTC).date()
    start = start or max(FIRST_DAY, end - timedelta(days=ACTIVE_DAYS - 1))
    if start > end:
        said = "`to`" if to_given else f"`to` (today, {end}, when not given)"
        raise Invalid(f"`from` must not be after {said}", code="invalid_range")
    if (end - start).days >= MAX_SERIES_DAYS:
        until = "" if to_given else f" (`to` is today, {end}, when not given)"
        raise Invalid(f"a series covers at most {MAX_SERIES_DAYS} days{until}", code="range_too_long")
    return start, end


def bucket_series(
    per_day: dict[str, float], *, interval: str, start: date, end: date, values: tuple[str, ...] = ("count",)
) -> list[dict[str, Any]]:
    """Per-day values summed into periods from `start` to `end` (inclusive, UTC days); every period is listed,
    empty ones with 0. A period cut by the range counts only the days inside it."""
    periods: list[dict[str, Any]] = []
    index: dict[date, dict[str, Any]] = {}
    cursor = _period(start, interval)
    while cursor <= end:
        row: dict[str, Any] = {"period": cursor.isoformat(), **dict.fromkeys(values, 0)}
        periods.append(row)
        index[cursor] = row
        cursor = _next_period(cursor, interval)
    for key, n in per_day.items():
        d = date.fromisoformat(key)
        if start <= d <= end:
            index[_period(d, interval)][values[0]] += n
    for row in periods:
        row[values[0]] = int(row[values[0]])
    return periods


async def enrollment_series(
    *, uow: UnitOfWork, principal: Principal, interval: str = "day", start: date | None = None, end: date | None = None
) -> dict[str, Any]:
    """New enrollments (admissions, by the UTC day of admission) per day, ISO week or month, from the counters."""
    _ensure_admin(principal)
    start, end = _range(interval, start, end)
    _, buckets = await _counters(uow, _days("new_enrollments", start, end))
    series = bucket_series(buckets.get("new_enrollments", {}), interval=interval, start=start, end=end)
    return {
        "interval": interval,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "total": sum(p["count"] for p in series),
        "series": series,
    }


async def completion_series(
    *, uow: UnitOfWork, principal: Principal, interval: str = "day", start: date | None = None, end: date | None = None
) -> dict[str, Any]:
    """Course completions per period (UTC day of completion) with the average time to complete of each period,
    and the platform's completion rate and average time to complete (all time)."""
    _ensure_admin(principal)
    start, end = _range(interval, start, end)
    flat, buckets = await _counters(
        uow,
        "enrollments_admitted",
        "enrollments_completed",
        "completion_seconds_total",
        *(_days(metric, start, end) for metric in ("completions", "timed_completions", "completion_seconds")),
    )
    counts = bucket_series(buckets.get("completions", {}), interval=interval, start=start, end=end)
    timed = bucket_series(buckets.get("timed_completions", {}), interval=interval, start=start, end=end)
    seconds: dict[str, float] = {}
    for key, v in buckets.get("completion_seconds", {}).items():
        d = date.fromisoformat(key)
        if start <= d <= end:
            p = _period(d, interval).isoformat()
            seconds[p] = seconds.get(p, 0) + v
    series = []
    for row, t in zip(counts, timed, strict=True):
        n = t["count"]
        hours = round(seconds.get(row["period"], 0) / n / 3600, 4) if n else None
        series.append({"period": row["period"], "completed": row["count"], "avg_time_to_complete_hours": hours})
    admitted, completed = flat.get("enrollments_admitted", 0), flat.get("enrollments_completed", 0)
    return {
        "interval": interval,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "completed": int(completed),
        "admitted": int(admitted),
        "completion_rate": round(completed * 100 / admitted, 2) if admitted else 0.0,
        "avg_time_to_complete_hours": round(flat.get("completion_seconds_total", 0) / completed / 3600, 4)
        if completed
        else None,
        "series": series,
    }


async def _hours(uow: UnitOfWork, *where: Any) -> float | None:
    """The mean study time of the completed enrollments `where` selects, in hours; None when there is none."""
    avg = await uow.session.scalar(
        select(func.avg(cast(func.extract("epoch", Enrollment.completed_at - Enrollment.activated_at), Float))).where(
            Enrollment.status == "completed", Enrollment.activated_at.is_not(None), *where
        )
    )
    return round(float(avg) / 3600, 4) if avg is not None else None


async def _statuses(uow: UnitOfWork, *where: Any) -> dict[str, int]:
    """The enrollments `where` selects by status, a dropped one never admitted (a student who left the waitlist, a
    place an archive released) as `left_waitlist`, not `dropped`: `dropped` are admissions given up, so `admitted` =
    pending + active + completed + dropped (explore61 F2: a course read admitted 1, dropped 2)."""
    never_admitted = Enrollment.admitted_at.is_(None)
    rows = await uow.session.execute(
        select(Enrollment.status, never_admitted, func.count())
        .where(*where)
        .group_by(Enrollment.status, never_admitted)
    )
    out = dict.fromkeys([*ENROLLMENT_STATUSES, "left_waitlist"], 0)
    for status, waited_only, n in rows.all():
        out["left_waitlist" if status == "dropped" and waited_only else status] += int(n)
    return out


async def course_view(
    *, uow: UnitOfWork, principal: Principal, course_id: uuid.UUID, today: date | None = None
) -> dict[str, Any]:
    """One course's figures, from the source tables: for its instructor and admins."""
    course = await uow.session.get(Course, course_id)
    if course is None or not (principal.is_admin or course_rules.teaches(principal, course.instructor_id)):
        raise NotFound("course not found", code="course_not_found")
    today = today or datetime.now(UTC).date()
    mine = Enrollment.course_id == course_id
    admitted, learners = (
        await uow.session.execute(
            select(func.count(), func.count(func.distinct(Enrollment.student_id))).where(
                mine, Enrollment.admitted_at.is_not(None)
            )
        )
    ).one()
    statuses = await _statuses(uow, mine)
    per_day = await _source_per_day(uow, Enrollment.admitted_at, mine, Enrollment.admitted_at.is_not(None))
    start = today - timedelta(days=ACTIVE_DAYS - 1)
    ai_rows = await uow.session.execute(
        select(AiInteraction.kind, AiInteraction.outcome, func.count())
        .where(AiInteraction.course_id == course_id)
        .group_by(AiInteraction.kind, AiInteraction.outcome)
    )
    return {
        "course_id": str(course_id),
        "title": course.title,
        "status": course.status,
        "enrollments": {"admitted": int(admitted or 0), **statuses},
        # Students, not admissions: a student who enrolled, dropped and enrolled again is one learner and two
        # admissions (explore61 F3: nine admissions of three students read as nine).
        "learners": int(learners or 0),
        "completion_rate": round(statuses["completed"] * 100 / admitted, 2) if admitted else 0.0,
        "avg_time_to_complete_hours": await _hours(uow, mine),
        "lessons_completed": int((await _source_engagement(uow, course_id)).get(str(course_id), 0)),
        "new_enrollments": bucket_series(per_day, interval="day", start=start, end=today),
        "ai_assistant_usage": ai_usage({f"{k}:{o}": float(c) for k, o, c in ai_rows.all()}),
    }


async def student_view(*, uow: UnitOfWork, principal: Principal, student_id: uuid.UUID) -> dict[str, Any]:
    """One student's figures, from the source tables: for that student and admins. An account that is no longer a
    student (an admin changed its role) keeps the learning record it has (explore50 F1: 404, even to an admin)."""
    if not (principal.is_admin or principal.user_id == student_id):
        raise NotFound("student not found", code="student_not_found")
    user = await uow.session.get(User, student_id)
    mine = Enrollment.student_id == student_id
    if user is None or (user.role != "student" and not await uow.session.scalar(select(exists().where(mine)))):
        raise NotFound("student not found", code="student_not_found")
    lessons, last_lesson = (
        await uow.session.execute(
            select(func.count(), func.max(LessonProgress.completed_at))
            .join(Enrollment, LessonProgress.enrollment_id == Enrollment.id)
            .where(mine, LessonProgress.status == "completed")
        )
    ).one()
    last_enrollment = await uow.session.scalar(
        select(func.max(func.greatest(Enrollment.admitted_at, Enrollment.completed_at))).where(mine)
    )
    moments = [m for m in (last_lesson, last_enrollment) if m is not None]
    ai_rows = await uow.session.execute(
        select(AiInteraction.kind, AiInteraction.outcome, func.count())
        .where(AiInteraction.user_id == student_id)
        .group_by(AiInteraction.kind, AiInteraction.outcome)
    )
    statuses = await _statuses(uow, mine)
    # A completion whose certificate was revoked is no course completed (the student may take it again; explore50
    # F2: a retaken course counted as completed twice, and as live and completed at once).
    recognised = await uow.session.scalar(
        select(func.count()).where(mine, Enrollment.status == "completed", Enrollment.completion_revoked_at.is_(None))
    )
    admitted = statuses["pending"] + statuses["active"] + statuses["completed"] + statuses["dropped"]
    return {
        "student_id": str(student_id),
        "enrollments": {"admitted": admitted, **statuses},
        "completion_rate": round(statuses["completed"] * 100 / admitted, 2) if admitted else 0.0,
        "live_courses": statuses["pending"] + statuses["active"],
        "courses_completed": int(recognised or 0),
        # Over the courses completed, as they count (explore61 F5: a revoked completion's time was in the mean).
        "avg_time_to_complete_hours": await _hours(uow, mine, Enrollment.completion_revoked_at.is_(None)),
        "lessons_completed": int(lessons or 0),
        "last_activity_at": iso(max(moments)) if moments else None,
        "ai_assistant_usage": ai_usage({f"{k}:{o}": float(c) for k, o, c in ai_rows.all()}),
    }
