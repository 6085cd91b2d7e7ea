"""Analytics against a scripted history with known answers (issue #8 §5).

The history lives in a database of its own (created on the suite's PostgreSQL, migrated, dropped after), so its
invented dates never meet the suite's live counters: the same history is written twice, as the source tables and
as the events the analytics consumer applies, and every figure is checked against the answer worked out by hand,
from the counters (what the endpoints read) and from the tables (what reconcile recomputes).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smartcourse.db import UnitOfWork
from smartcourse.errors import NotFound
from smartcourse.models import Course, Enrollment, LessonProgress, User
from smartcourse.security import Principal
from smartcourse.services import analytics
from tests.conftest import scratch_database

ADMIN = Principal(user_id=uuid.uuid4(), role="admin")


def at(text_: str) -> datetime:
    return datetime.fromisoformat(text_).replace(tzinfo=UTC)


@pytest.fixture(scope="module")
async def history_db(settings: Any) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with scratch_database(settings, "analytics_history", revision="head") as (_, engine):
        yield async_sessionmaker(engine, expire_on_commit=False)


@dataclass
class History:
    """Rows for the tables and the envelopes of the events that created them, side by side."""

    rows: list[Any] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def event(self, kind: str, aggregate: uuid.UUID, occurred: datetime, **data: Any) -> None:
        self.events.append(
            {
                "event_id": str(uuid.uuid4()),
                "event_type": kind,
                "schema_version": 1,
                "aggregate_id": str(aggregate),
                "occurred_at": occurred.isoformat(),
                "data": data,
            }
        )

    def user(self, role: str, name: str) -> uuid.UUID:
        uid = uuid.uuid4()
        self.rows.append(
            User(id=uid, email=f"{name}-{uid.hex[:6]}@example.com", password_hash="x", full_name=name, role=role)
        )
        self.event("user.registered", uid, at("2025-12-01T00:00:00"), user_id=str(uid), role=role)
        return uid

    def course(self, instructor: uuid.UUID, title: str) -> uuid.UUID:
        cid = uuid.uuid4()
        self.rows.append(
            Course(id=cid, instructor_id=instructor, title=title, category="c", status="published", content_version=1)
        )
        self.event(
            "course.published",
            cid,
            at("2025-12-15T00:00:00"),
            course_id=str(cid),
            instructor_id=str(instructor),
            version=1,
            title=title,
        )
        return cid

    def enroll(
        self,
        student: uuid.UUID,
        course: uuid.UUID,
        admitted: str,
        *,
        completed: str | None = None,
        pending: bool = False,
        dropped: str | None = None,
        lessons: tuple[str, ...] = (),
    ) -> None:
        eid = uuid.uuid4()
        admitted_at = at(admitted)
        activated_at = None if pending else admitted_at
        status = "pending" if pending else "completed" if completed else "dropped" if dropped else "active"
        ids = {"enrollment_id": str(eid), "student_id": str(student), "course_id": str(course)}
        self.rows.append(
            Enrollment(
                id=eid,
                student_id=student,
                course_id=course,
                status=status,
                attempt=1,
                admitted_at=admitted_at,
                activated_at=activated_at,
                completed_at=at(completed) if completed else None,
                dropped_at=at(dropped) if dropped else None,
            )
        )
        self.event("enrollment.created", eid, admitted_at, **ids, status="pending", attempt=1, admitted_at=admitted)
        for moment in lessons:
            lesson = uuid.uuid4()
            self.rows.append(
                LessonProgress(enrollment_id=eid, lesson_id=lesson, status="completed", completed_at=at(moment))
            )
            self.event("progress.updated", eid, at(moment), **ids, lesson_id=str(lesson), percent=50)
        if completed:
            self.event(
                "enrollment.completed",
                eid,
                at(completed),
                **ids,
                activated_at=admitted_at.isoformat(),
                completed_at=at(completed).isoformat(),
            )
        if dropped:
            self.event("enrollment.dropped", eid, at(dropped), **ids, previous_status="active", freed_seat=True)


@pytest.fixture(scope="module")
async def history(history_db: async_sessionmaker[AsyncSession]) -> dict[str, uuid.UUID]:
    h = History()
    teacher = h.user("instructor", "Teacher")
    s1, s2, s3 = h.user("student", "S1"), h.user("student", "S2"), h.user("student", "S3")
    h.user("student", "S4")  # registered, never enrolled
    h.user("instructor", "Idle")  # registered, no live course
    a, b, c = h.course(teacher, "Alpha"), h.course(teacher, "Beta"), h.course(teacher, "Gamma")
    # Mon 5 Jan .. Wed 7 Jan: 50 hours to complete; one lesson on the way.
    h.enroll(s1, a, "2026-01-05T10:00:00", completed="2026-01-07T12:00:00", lessons=("2026-01-06T08:00:00",))
    h.enroll(s1, b, "2026-01-06T09:00:00", lessons=("2026-02-20T10:00:00", "2026-02-20T11:00:00"))
    # Admitted late on Mon 12 Jan, completed 2 hours later on the next UTC day.
    h.enroll(s2, a, "2026-01-12T23:30:00", completed="2026-01-13T01:30:00", lessons=("2026-01-13T00:30:00",))
    h.enroll(s2, c, "2026-02-02T08:00:00", dropped="2026-02-03T08:00:00")
    h.enroll(s3, a, "2026-02-10T12:00:00", pending=True)
    # The last second of January (a Saturday): January's, and the week of Mon 26 Jan.
    h.enroll(s3, b, "2026-01-31T23:59:59", lessons=("2026-02-01T10:00:00",))
    async with history_db() as session, session.begin():
        for row in h.rows:
            session.add(row)
            await session.flush()
    for envelope in h.events:
        assert await analytics.CONSUMER.handle(history_db, envelope), envelope["event_type"]
    return {"a": a, "b": b, "c": c, "s1": s1, "s2": s2, "s3": s3}


def nonzero(series: list[dict[str, Any]], key: str = "count") -> dict[str, int]:
    return {p["period"]: p[key] for p in series if p[key]}


async def test_new_enrollment_series_per_day_week_and_month(history_db: Any, history: dict[str, uuid.UUID]) -> None:
    uow = UnitOfWork(history_db)
    async with uow:
        jan, feb_end = date(2026, 1, 1), date(2026, 2, 28)
        day = await analytics.enrollment_series(uow=uow, principal=ADMIN, interval="day", start=jan, end=feb_end)
        week = await analytics.enrollment_series(uow=uow, principal=ADMIN, interval="week", start=jan, end=feb_end)
        month = await analytics.enrollment_series(uow=uow, principal=ADMIN, interval="month", start=jan, end=feb_end)
    assert len(day["series"]) == 59 and day["total"] == 6
    assert nonzero(day["series"]) == {
        "2026-01-05": 1,
        "2026-01-06": 1,
        "2026-01-12": 1,
        "2026-01-31": 1,
        "2026-02-02": 1,
        "2026-02-10": 1,
    }
    assert [(p["period"], p["count"]) for p in week["series"]] == [
        ("2025-12-29", 0),
        ("2026-01-05", 2),
        ("2026-01-12", 1),
        ("2026-01-19", 0),
        ("2026-01-26", 1),
        ("2026-02-02", 1),
        ("2026-02-09", 1),
        ("2026-02-16", 0),
        ("2026-02-23", 0),
    ]
    assert [(p["period"], p["count"]) for p in month["series"]] == [("2026-01-01", 4), ("2026-02-01", 2)]
    # A range that cuts a period counts only its own days.
    async with uow:
        cut = await analytics.enrollment_series(
            uow=uow, principal=ADMIN, interval="week", start=date(2026, 1, 6), end=date(2026, 1, 12)
        )
    assert [(p["period"], p["count"]) for p in cut["series"]] == [("2026-01-05", 1), ("2026-01-12", 1)]


async def test_completions_rate_and_time_to_complete(history_db: Any, history: dict[str, uuid.UUID]) -> None:
    uow = UnitOfWork(history_db)
    async with uow:
        body = await analytics.completion_series(
            uow=uow, principal=ADMIN, interval="month", start=date(2026, 1, 1), end=date(2026, 2, 28)
        )
    assert (body["completed"], body["admitted"]) == (2, 6)
    assert body["completion_rate"] == 33.33 and body["avg_time_to_complete_hours"] == 26.0
    assert body["series"] == [
        {"period": "2026-01-01", "completed": 2, "avg_time_to_complete_hours": 26.0},
        {"period": "2026-02-01", "completed": 0, "avg_time_to_complete_hours": None},
    ]
    async with uow:
        days = await analytics.completion_series(
            uow=uow, principal=ADMIN, interval="day", start=date(2026, 1, 7), end=date(2026, 1, 13)
        )
    assert {p["period"]: p["avg_time_to_complete_hours"] for p in days["series"] if p["completed"]} == {
        "2026-01-07": 50.0,
        "2026-01-13": 2.0,
    }


async def test_dashboard_figures_from_counters_and_from_the_tables(
    history_db: Any, history: dict[str, uuid.UUID]
) -> None:
    today = date(2026, 3, 20)  # the last 30 days: 19 Feb .. 20 Mar
    uow = UnitOfWork(history_db)
    async with uow:
        counted = await analytics.dashboard(uow=uow, principal=ADMIN, today=today)
        source = await analytics.from_source(uow=uow, today=today)
        recon = await analytics.reconcile(uow=uow, principal=ADMIN)
    a, b, c = (str(history[k]) for k in "abc")
    expected = {
        # S1 (an active enrollment, lessons on 20 Feb) and S3 (pending and active); S2 only dropped, long ago.
        "total_students": 2,
        "registered_students": 4,
        "total_instructors": 1,  # instructors with a live course
        "registered_instructors": 2,
        "total_courses_published": 3,
        "completion_rate": 33.33,
        "avg_time_to_complete_hours": 26.0,
        "popular_courses": [
            {"course_id": a, "title": "Alpha", "status": "published", "enrollments": 3},
            {"course_id": b, "title": "Beta", "status": "published", "enrollments": 2},
            {"course_id": c, "title": "Gamma", "status": "published", "enrollments": 1},
        ],
        "popular_courses_by_engagement": [
            {"course_id": b, "title": "Beta", "status": "published", "lessons_completed": 3},
            {"course_id": a, "title": "Alpha", "status": "published", "lessons_completed": 2},
        ],
        # Live (not dropped) admitted enrollments per student: S1 2, S2 1, S3 2.
        "avg_courses_per_student": round(5 / 3, 4),
        "new_enrollments": {"day": 0, "week": 0, "month": 0},
    }
    for name, value in expected.items():
        assert counted[name] == value, name
        assert source[name] == value, name
    assert recon["total_drift"] == 0, recon["drift"]
    assert {"series:new_enrollments", "series:completions", "series:completion_seconds"} <= set(recon["drift"])
    assert counted["workflow_issues"]["failed_workflows"] == 0 and counted["workflow_issues"]["dead_letters"] == 0


async def test_reconcile_sees_a_counter_the_dashboard_does_not_show(
    history_db: Any, history: dict[str, uuid.UUID]
) -> None:
    """explore14 F1: reconcile compared only the shown figures, so a counter that drifted (an instructor's live
    courses one too many) said nothing until it changed one of them (the instructor archived every course and was
    still counted). Every key of the counters behind the dashboard is compared."""
    teacher = str(await _instructor_of(history_db, history["a"]))
    bump = text(
        "update analytics_counters set value = value + :by where metric = 'instructor_live_courses' and bucket = :k"
    )
    async with UnitOfWork(history_db) as uow:
        await uow.session.execute(bump, {"by": 1, "k": teacher})
        await uow.session.commit()
    try:
        async with UnitOfWork(history_db) as uow:
            dash = await analytics.dashboard(uow=uow, principal=ADMIN, today=date(2026, 2, 28))
            recon = await analytics.reconcile(uow=uow, principal=ADMIN)
        assert dash["total_instructors"] == 1  # the figure shown is still right ...
        assert recon["drift"]["counters:instructor_live_courses"] == 1  # ... the counter behind it is not
        assert recon["total_drift"] == 1
        assert recon["mismatches"] == {"instructor_live_courses": [{"key": teacher, "counted": 4.0, "source": 3.0}]}
    finally:
        async with UnitOfWork(history_db) as uow:
            await uow.session.execute(bump, {"by": -1, "k": teacher})
            await uow.session.commit()
    async with UnitOfWork(history_db) as uow:
        recon = await analytics.reconcile(uow=uow, principal=ADMIN)
    assert recon["total_drift"] == 0 and recon["mismatches"] == {}, recon["drift"]


async def _instructor_of(history_db: Any, course_id: uuid.UUID) -> uuid.UUID:
    async with UnitOfWork(history_db) as uow:
        course = await uow.session.get(Course, course_id)
        assert course is not None
        return course.instructor_id


async def test_course_and_student_views(history_db: Any, history: dict[str, uuid.UUID]) -> None:
    uow = UnitOfWork(history_db)
    async with uow:
        course = await analytics.course_view(uow=uow, principal=ADMIN, course_id=history["a"], today=date(2026, 2, 28))
        student = await analytics.student_view(uow=uow, principal=ADMIN, student_id=history["s1"])
        itself = await analytics.student_view(
            uow=uow, principal=Principal(user_id=history["s2"], role="student"), student_id=history["s2"]
        )
    assert course["title"] == "Alpha" and course["enrollments"]["admitted"] == 3
    assert (course["enrollments"]["completed"], course["enrollments"]["pending"]) == (2, 1)
    assert course["completion_rate"] == 66.67 and course["avg_time_to_complete_hours"] == 26.0
    assert course["lessons_completed"] == 2
    assert nonzero(course["new_enrollments"]) == {"2026-02-10": 1}  # its last 30 days
    assert (student["courses_completed"], student["live_courses"], student["lessons_completed"]) == (1, 1, 3)
    assert student["avg_time_to_complete_hours"] == 50.0 and student["last_activity_at"].startswith("2026-02-20")
    assert itself["enrollments"]["dropped"] == 1 and itself["courses_completed"] == 1
    # Admissions and the rate, as the course's (explore77 F11: an HR report added them up itself).
    counts = itself["enrollments"]
    assert counts["admitted"] == counts["pending"] + counts["active"] + counts["completed"] + counts["dropped"]
    assert itself["completion_rate"] == round(counts["completed"] * 100 / counts["admitted"], 2) > 0
    assert student["enrollments"]["admitted"] == 2 and student["completion_rate"] == 50.0


async def test_no_completion_is_no_average_time_not_zero(history_db: Any, history: dict[str, uuid.UUID]) -> None:
    """Beta and S3 completed nothing: their average time to complete is null (it was 0.0 h, "at once"), as the
    completions series says of a period without one."""
    uow = UnitOfWork(history_db)
    async with uow:
        course = await analytics.course_view(uow=uow, principal=ADMIN, course_id=history["b"], today=date(2026, 2, 28))
        student = await analytics.student_view(uow=uow, principal=ADMIN, student_id=history["s3"])
    assert course["enrollments"]["completed"] == 0 and course["avg_time_to_complete_hours"] is None
    assert student["courses_completed"] == 0 and student["avg_time_to_complete_hours"] is None


async def test_bad_ranges_are_clear_errors(history_db: Any) -> None:
    from smartcourse.errors import Forbidden, Invalid, NotFound

    uow = UnitOfWork(history_db)
    async with uow:
        with pytest.raises(Invalid) as err:
            await analytics.enrollment_series(
                uow=uow, principal=ADMIN, interval="day", start=date(2026, 2, 1), end=date(2026, 1, 1)
            )
        assert err.value.code == "invalid_range"
        with pytest.raises(Invalid) as err:
            await analytics.enrollment_series(
                uow=uow, principal=ADMIN, interval="day", start=date(2000, 1, 1), end=date(2026, 1, 1)
            )
        assert err.value.code == "range_too_long"
        # explore50 F4: the defaults stay within the days a series may name, and say what they were.
        body = await analytics.enrollment_series(uow=uow, principal=ADMIN, interval="day", end=date(2000, 1, 1))
        assert (body["from"], body["to"]) == ("2000-01-01", "2000-01-01"), body
        with pytest.raises(Invalid) as err:
            await analytics.enrollment_series(uow=uow, principal=ADMIN, interval="day", start=date(2999, 12, 31))
        assert err.value.code == "invalid_range" and "(today, " in err.value.message
        with pytest.raises(Invalid) as err:
            await analytics.enrollment_series(uow=uow, principal=ADMIN, interval="day", start=date(2000, 1, 1))
        assert err.value.code == "range_too_long" and "when not given" in err.value.message
        with pytest.raises(Invalid):
            await analytics.enrollment_series(uow=uow, principal=ADMIN, interval="year")
        with pytest.raises(Forbidden):
            await analytics.completion_series(uow=uow, principal=Principal(user_id=uuid.uuid4(), role="student"))
        with pytest.raises(NotFound):
            await analytics.student_view(
                uow=uow, principal=Principal(user_id=uuid.uuid4(), role="student"), student_id=uuid.uuid4()
            )


async def test_an_account_moved_from_student_counts_under_its_new_role(
    history_db: Any, history: dict[str, uuid.UUID]
) -> None:
    """explore50 F1: S2 (a completion, a drop) made an instructor by an admin still counted among the students with
    courses (and, active, in `total_students`, which read 7 beside `registered_students` 6), while its own learning
    record answered 404, even to an admin. The student figures count the account under its new role, on both sides
    of reconcile; its record stays readable."""
    s2 = history["s2"]
    today = date(2026, 3, 20)

    async def move(role: str, before: str) -> None:
        async with UnitOfWork(history_db) as uow:
            await uow.session.execute(text("update users set role = :r where id = :id"), {"r": role, "id": s2})
            await uow.session.commit()
        envelope = History()
        envelope.event("user.role_changed", s2, at("2026-03-01T00:00:00"), user_id=str(s2), to=role, **{"from": before})
        assert await analytics.CONSUMER.handle(history_db, envelope.events[0])

    await move("instructor", "student")
    try:
        async with UnitOfWork(history_db) as uow:
            counted = await analytics.dashboard(uow=uow, principal=ADMIN, today=today)
            source = await analytics.from_source(uow=uow, today=today)
            recon = await analytics.reconcile(uow=uow, principal=ADMIN)
            record = await analytics.student_view(uow=uow, principal=ADMIN, student_id=s2)
            own = await analytics.student_view(
                uow=uow, principal=Principal(user_id=s2, role="instructor"), student_id=s2
            )
        for figures in (counted, source):
            assert (figures["registered_students"], figures["registered_instructors"]) == (3, 3)
            assert figures["avg_courses_per_student"] == 2.0  # S1 2, S3 2; S2's completion no longer a student's
            assert figures["total_students"] == 2
        assert recon["total_drift"] == 0, recon["drift"]
        assert record == own and record["courses_completed"] == 1 and record["enrollments"]["dropped"] == 1
    finally:
        await move("student", "instructor")
    async with UnitOfWork(history_db) as uow:
        assert (await analytics.dashboard(uow=uow, principal=ADMIN, today=today))["avg_courses_per_student"] == round(
            5 / 3, 4
        )
        with pytest.raises(NotFound):  # an account that never studied has no learning record
            await analytics.student_view(
                uow=uow, principal=ADMIN, student_id=await _instructor_of(history_db, history["a"])
            )


async def test_an_instructor_made_an_admin_is_no_teaching_instructor(
    history_db: Any, history: dict[str, uuid.UUID]
) -> None:
    """explore61 F1: `total_instructors` counted whoever owned a live course, an admin too (one who made a course, or
    an instructor made an admin): 3 beside `registered_instructors` 1. It counts instructors, as the registered
    count does, on both sides of reconcile."""
    teacher = await _instructor_of(history_db, history["a"])
    today = date(2026, 3, 20)

    async def role(to: str, before: str) -> None:
        async with UnitOfWork(history_db) as uow:
            await uow.session.execute(text("update users set role = :r where id = :id"), {"r": to, "id": teacher})
            await uow.session.commit()
        envelope = History()
        envelope.event(
            "user.role_changed", teacher, at("2026-03-01T00:00:00"), user_id=str(teacher), to=to, **{"from": before}
        )
        assert await analytics.CONSUMER.handle(history_db, envelope.events[0])

    await role("admin", "instructor")
    try:
        async with UnitOfWork(history_db) as uow:
            counted = await analytics.dashboard(uow=uow, principal=ADMIN, today=today)
            source = await analytics.from_source(uow=uow, today=today)
            recon = await analytics.reconcile(uow=uow, principal=ADMIN)
        assert counted["total_instructors"] == source["total_instructors"] == 0, (counted, source)
        assert recon["total_drift"] == 0, recon["drift"]
    finally:
        await role("instructor", "admin")
    async with UnitOfWork(history_db) as uow:
        assert (await analytics.dashboard(uow=uow, principal=ADMIN, today=today))["total_instructors"] == 1


async def test_a_revoked_completion_is_no_course_completed(history_db: Any, history: dict[str, uuid.UUID]) -> None:
    """explore50 F2: a course taken again after its certificate was revoked counted twice in the student's
    `courses_completed` (and as live and completed at once). The revoked completion stays an enrollment completed."""
    mark = text(
        "update enrollments set completion_revoked_at = :at where student_id = :s and course_id = :c"
        " and status = 'completed'"
    )
    params = {"s": history["s1"], "c": history["a"]}
    async with UnitOfWork(history_db) as uow:
        await uow.session.execute(mark, {**params, "at": at("2026-03-01T00:00:00")})
        await uow.session.commit()
    try:
        async with UnitOfWork(history_db) as uow:
            student = await analytics.student_view(uow=uow, principal=ADMIN, student_id=history["s1"])
        assert student["enrollments"]["completed"] == 1 and student["courses_completed"] == 0
    finally:
        async with UnitOfWork(history_db) as uow:
            await uow.session.execute(mark, {**params, "at": None})
            await uow.session.commit()
