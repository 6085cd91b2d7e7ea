"""Analytics: counters kept by an event consumer, the dashboard read from them, and a reconcile against the source."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Date, Float, and_, cast, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from smartcourse.db import UnitOfWork
from smartcourse.errors import Forbidden
from smartcourse.event_consumer import Consumer
from smartcourse.models import (
    AiInteraction,
    AnalyticsCounter,
    Course,
    DeadLetter,
    Enrollment,
    OutboxEvent,
    User,
    WorkflowRun,
)
from smartcourse.security import Principal

POPULAR_LIMIT = 5


async def _bump(session: AsyncSession, metric: str, bucket: str = "", by: float = 1) -> None:
    stmt = insert(AnalyticsCounter).values(metric=metric, bucket=bucket, value=by)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[AnalyticsCounter.metric, AnalyticsCounter.bucket],
            set_={"value": AnalyticsCounter.value + by, "updated_at": func.now()},
        )
    )


def _ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


# --- the consumer's effects (one transaction each, with the dedupe record) ------------------------


async def _user_registered(session: AsyncSession, env: dict[str, Any]) -> None:
    role = env["data"]["role"]
    if role in {"student", "instructor"}:
        await _bump(session, f"{role}s")


async def _course_published(session: AsyncSession, env: dict[str, Any]) -> None:
    if int(env["data"]["version"]) == 1:  # a re-publish does not add a course
        await _bump(session, "courses_published")


async def _course_archived(session: AsyncSession, env: dict[str, Any]) -> None:
    if env["data"].get("was_live"):
        await _bump(session, "courses_published", by=-1)


async def _admitted(session: AsyncSession, env: dict[str, Any]) -> None:
    data = env["data"]
    admitted_at = _ts(data.get("admitted_at"))
    if admitted_at is None:  # waitlisted: not admitted yet
        return
    await _bump(session, "enrollments_admitted")
    await _bump(session, "new_enrollments", admitted_at.astimezone(UTC).date().isoformat())
    await _bump(session, "course_enrollments", data["course_id"])
    await _bump(session, "student_live_enrollments", data["student_id"])


async def _dropped(session: AsyncSession, env: dict[str, Any]) -> None:
    data = env["data"]
    if data.get("freed_seat"):
        await _bump(session, "student_live_enrollments", data["student_id"], by=-1)


async def _completed(session: AsyncSession, env: dict[str, Any]) -> None:
    data = env["data"]
    await _bump(session, "enrollments_completed")
    started, done = _ts(data.get("activated_at")), _ts(data["completed_at"])
    if started and done:
        await _bump(session, "completion_seconds_total", by=(done - started).total_seconds())


async def _recorded(session: AsyncSession, env: dict[str, Any]) -> None:
    await _bump(session, "enrollments_recorded_by_workflow")


async def _ai_interaction(session: AsyncSession, env: dict[str, Any]) -> None:
    data = env["data"]
    await _bump(session, "ai_interactions", f"{data['kind']}:{data['outcome']}")


CONSUMER = Consumer(
    name="analytics",
    effects={
        "user.registered": _user_registered,
        "course.published": _course_published,
        "course.archived": _course_archived,
        "enrollment.created": _admitted,
        "waitlist.promoted": _admitted,
        "enrollment.dropped": _dropped,
        "enrollment.completed": _completed,
        "analytics.enrollment_recorded": _recorded,
        "ai.interaction_recorded": _ai_interaction,
    },
)


# --- reading ----------------------------------------------------------------------------------


def _windows(today: date) -> dict[str, date]:
    return {"day": today, "week": today - timedelta(days=6), "month": today - timedelta(days=29)}


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
) -> dict[str, Any]:
    windows = _windows(today)
    popular = sorted(((c, n) for c, n in per_course.items() if n > 0), key=lambda cn: (-cn[1], cn[0]))
    live = [n for n in per_student.values() if n > 0]
    return {
        "total_students": int(students),
        "total_instructors": int(instructors),
        "total_courses_published": int(published),
        "new_enrollments": {
            name: int(sum(n for d, n in per_day.items() if start.isoformat() <= d <= today.isoformat()))
            for name, start in windows.items()
        },
        "completion_rate": round(completed * 100 / admitted, 2) if admitted else 0.0,
        "avg_time_to_complete_hours": round(completion_seconds / completed / 3600, 4) if completed else 0.0,
        "popular_courses": [{"course_id": c, "enrollments": int(n)} for c, n in popular[:POPULAR_LIMIT]],
        "avg_courses_per_student": round(sum(live) / len(live), 4) if live else 0.0,
    }


def _ensure_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise Forbidden("analytics are for admins", code="admin_only")


async def dashboard(*, uow: UnitOfWork, principal: Principal, today: date | None = None) -> dict[str, Any]:
    """The metrics as the consumers have counted them."""
    _ensure_admin(principal)
    rows = (
        await uow.session.execute(select(AnalyticsCounter.metric, AnalyticsCounter.bucket, AnalyticsCounter.value))
    ).all()
    flat: dict[str, float] = {}
    buckets: dict[str, dict[str, float]] = {}
    for metric, bucket, value in rows:
        if bucket:
            buckets.setdefault(metric, {})[bucket] = value
        else:
            flat[metric] = value
    metrics = _metrics(
        students=flat.get("students", 0),
        instructors=flat.get("instructors", 0),
        published=flat.get("courses_published", 0),
        per_day=buckets.get("new_enrollments", {}),
        admitted=flat.get("enrollments_admitted", 0),
        completed=flat.get("enrollments_completed", 0),
        completion_seconds=flat.get("completion_seconds_total", 0),
        per_course=buckets.get("course_enrollments", {}),
        per_student=buckets.get("student_live_enrollments", {}),
        today=today or datetime.now(UTC).date(),
    )
    metrics["ai_assistant_usage"] = ai_usage(buckets.get("ai_interactions", {}))
    metrics["workflow_issues"] = await _workflow_issues(uow, flat)
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
    }


async def _workflow_issues(uow: UnitOfWork, flat: dict[str, float]) -> dict[str, int]:
    dead = await uow.session.scalar(
        select(func.count()).select_from(DeadLetter).where(DeadLetter.replayed_at.is_(None))
    )
    stuck = await uow.session.scalar(
        select(func.count())
        .select_from(OutboxEvent)
        .where(OutboxEvent.published_at.is_(None), OutboxEvent.attempts > 0)
    )
    failed_runs = await uow.session.scalar(
        select(func.count()).select_from(WorkflowRun).where(WorkflowRun.status == "failed")
    )
    return {
        "failed_workflows": int(failed_runs or 0),
        "dead_letters": int(dead or 0),
        "outbox_retrying": int(stuck or 0),
        "enrollments_awaiting_workflow": int(
            flat.get("enrollments_admitted", 0) - flat.get("enrollments_recorded_by_workflow", 0)
        ),
    }


async def from_source(*, uow: UnitOfWork, today: date | None = None) -> dict[str, Any]:
    """The same metrics recomputed from the source tables."""
    s = uow.session
    # Registered users (the counter counts user.registered): disabling an account does not unregister it.
    users = dict((await s.execute(select(User.role, func.count()).group_by(User.role))).all())
    published = await s.scalar(
        select(func.count()).select_from(Course).where(Course.content_version > 0, Course.status != "archived")
    )
    admitted = Enrollment.admitted_at.is_not(None)
    per_day = {
        d.isoformat(): float(n)
        for d, n in (
            await s.execute(
                select(cast(func.timezone("UTC", Enrollment.admitted_at), Date).label("d"), func.count())
                .where(admitted)
                .group_by(text("d"))
            )
        ).all()
    }
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
                .where(and_(admitted, Enrollment.status != "dropped"))
                .group_by(Enrollment.student_id)
            )
        ).all()
    }
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
        today=today or datetime.now(UTC).date(),
    )
    metrics["ai_assistant_usage"] = ai_usage({f"{k}:{o}": float(c) for k, o, c in ai_rows.all()})
    return metrics


def _drift(counted: Any, actual: Any) -> float:
    if isinstance(counted, dict):
        return sum(abs(_drift(counted.get(k, 0), actual.get(k, 0))) for k in set(counted) | set(actual))
    if isinstance(counted, list):
        return 0 if counted == actual else max(len(counted), len(actual), 1)
    return round(abs(float(counted) - float(actual)), 6)


async def reconcile(*, uow: UnitOfWork, principal: Principal) -> dict[str, Any]:
    """Counted vs recomputed, per metric; `drift` is 0 everywhere once every event is processed."""
    _ensure_admin(principal)
    today = datetime.now(UTC).date()
    counted = await dashboard(uow=uow, principal=principal, today=today)
    actual = await from_source(uow=uow, today=today)
    drift = {name: _drift(counted[name], actual[name]) for name in actual}
    pending = await uow.session.scalar(
        select(func.count()).select_from(OutboxEvent).where(OutboxEvent.published_at.is_(None))
    )
    return {
        "drift": drift,
        "total_drift": sum(drift.values()),
        "counted": {k: counted[k] for k in actual},
        "source": actual,
        "events_pending": int(pending or 0),
    }
