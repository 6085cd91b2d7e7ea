"""The enrollment workflow's set-up (`services.enrollment.set_up`) on PostgreSQL: its writes once, its repeat
returns the same outcome and writes nothing, and a dropped enrollment is not activated, welcomed or given
progress rows."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.conftest import Api


async def _pending(api: Api, container: Any) -> tuple[uuid.UUID, uuid.UUID]:
    """A pending enrollment as an admission leaves it (the dispatchers are paused), and its student's id."""
    from smartcourse.security import Principal
    from smartcourse.services import enrollment

    teacher, student = await api.user("instructor"), await api.user()
    course = await api.published_course(teacher)
    async with container.uow() as uow:
        e, _ = await enrollment.enroll(
            uow=uow, principal=Principal(uuid.UUID(student["id"]), "student"), course_id=uuid.UUID(course["id"]),
            idempotency_key=None,
        )  # fmt: skip
    assert e.status == "pending"
    return e.id, e.student_id


async def _set_up(container: Any, eid: uuid.UUID, lessons: Any) -> Any:
    from smartcourse.services import enrollment

    async with container.uow() as uow:
        done = await enrollment.set_up(uow=uow, lessons=lessons, enrollment_id=eid)
        await uow.commit()
    return done


async def _effects(container: Any, eid: uuid.UUID) -> dict[str, Any]:
    from smartcourse.models import Enrollment, EnrollmentHistory, LessonProgress, Notification, OutboxEvent

    async with container.uow() as uow:
        s = uow.session
        e = await s.get(Enrollment, eid)
        events = dict(
            (
                await s.execute(
                    select(OutboxEvent.event_type, func.count())
                    .where(OutboxEvent.payload["data"]["enrollment_id"].astext == str(eid))
                    .group_by(OutboxEvent.event_type)
                )
            ).all()
        )
        return {
            "status": e.status,
            "activated": e.activated_at is not None,
            "history": list(
                (
                    await s.execute(
                        select(EnrollmentHistory.from_status, EnrollmentHistory.to_status, EnrollmentHistory.actor)
                        .where(EnrollmentHistory.enrollment_id == eid)
                        .order_by(EnrollmentHistory.id)
                    )
                ).all()
            ),
            "events": events,
            "progress": await s.scalar(
                select(func.count()).select_from(LessonProgress).where(LessonProgress.enrollment_id == eid)
            ),
            "welcomes": list(
                (
                    await s.execute(
                        select(Notification.id, Notification.title, Notification.email_status).where(
                            Notification.dedupe_key == f"welcome:{eid}"
                        )
                    )
                ).all()
            ),
        }


async def test_the_set_up_writes_each_step_once_and_a_repeat_returns_the_same(
    api: Api, worker: object, container: Any, paused_dispatchers: None
) -> None:
    from smartcourse.services import enrollment

    eid, _ = await _pending(api, container)
    lessons = enrollment.LessonIds(container.documents)
    first = await _set_up(container, eid, lessons)
    assert first.status == "active" and first.analytics_recorded and first.lessons > 0
    assert first.notification_id is not None
    after_first = await _effects(container, eid)
    assert after_first["status"] == "active" and after_first["activated"]
    assert after_first["history"] == [(None, "pending", "student"), ("pending", "active", "system")]
    assert after_first["events"] == {
        "enrollment.created": 1,
        "enrollment.activated": 1,
        "analytics.enrollment_recorded": 1,
    }
    assert after_first["progress"] == first.lessons
    [(nid, title, email_status)] = after_first["welcomes"]
    assert nid == first.notification_id and title.startswith("Welcome to ") and email_status == "pending"

    again = await _set_up(container, eid, enrollment.LessonIds(container.documents))  # a fresh process's cache too
    assert again.status == "active" and not again.analytics_recorded
    assert again.notification_id == first.notification_id and again.lessons == first.lessons
    assert await _effects(container, eid) == after_first


async def test_a_dropped_enrollment_is_neither_activated_nor_welcomed(
    api: Api, worker: object, container: Any, paused_dispatchers: None
) -> None:
    from smartcourse.security import Principal
    from smartcourse.services import enrollment

    eid, student_id = await _pending(api, container)
    async with container.uow() as uow:  # the drop won the row lock: the set-up finds it dropped
        await enrollment.drop(uow=uow, principal=Principal(student_id, "student"), enrollment_id=eid)
    done = await _set_up(container, eid, enrollment.LessonIds(container.documents))
    assert done.status == "dropped" and done.notification_id is None
    effects = await _effects(container, eid)
    assert effects["status"] == "dropped" and not effects["activated"]
    assert effects["welcomes"] == [] and effects["progress"] == 0 and done.lessons == 0
    assert "enrollment.activated" not in effects["events"]
    assert [h[1] for h in effects["history"]] == ["pending", "dropped"]


async def test_an_unknown_enrollment_is_not_found(container: Any) -> None:
    from smartcourse.errors import NotFound
    from smartcourse.services import enrollment

    with pytest.raises(NotFound):
        await _set_up(container, uuid.uuid4(), enrollment.LessonIds(container.documents))
