"""Admissions interleaved with a conflicting change at the exact moment that used to go wrong (found by an
exploratory race test): the other request is made to commit inside the window, so each test is deterministic.

* the same Idempotency-Key for two courses, the other course's request winning the unique index;
* a drop committing between the admission's facts and its load of the live enrollment;
* an archive committing while the admission's statement waits for the course row (seat and waitlist);
* a waitlisted student's request in flight (it used to lock the enrollment row) while a seat is freed.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from smartcourse.services import enrollment as enrollment_service
from smartcourse.services import progress as progress_service
from tests.conftest import Api
from tests.e2e.test_enrollment import course_with_lessons, enroll, fast_students


async def _count(container: Any, course_id: str, **where: Any) -> int:
    from smartcourse.models import Enrollment

    async with container.uow() as uow:
        stmt = select(func.count()).select_from(Enrollment).where(Enrollment.course_id == uuid.UUID(course_id))
        for column, value in where.items():
            stmt = stmt.where(getattr(Enrollment, column) == value)
        return int(await uow.session.scalar(stmt) or 0)


async def test_a_key_that_lost_the_race_to_another_course_is_refused_not_answered_with_that_course(
    api: Api, worker: object, container: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    teacher = await api.user("instructor")
    a, b = await api.published_course(teacher), await api.published_course(teacher)
    (student,) = await fast_students(container, 1)
    real_admit = enrollment_service._admit
    raced: list[Any] = []

    async def the_other_request_commits_first(conn: Any, params: dict[str, Any], session: Any) -> Any:
        if not raced:  # this request (course A) read no enrollment for its key; B's, same key, commits now
            raced.append(None)  # first: B's own request passes through here too
            raced[0] = await enroll(api, student, b["id"], **{"Idempotency-Key": "one-key"})
        return await real_admit(conn, params, session)

    monkeypatch.setattr(enrollment_service, "_admit", the_other_request_commits_first)
    r = await enroll(api, student, a["id"], **{"Idempotency-Key": "one-key"})
    assert raced[0].status_code == 201, raced[0].text
    assert r.status_code == 409 and r.json()["code"] == "idempotency_key_reused", r.text
    assert await _count(container, a["id"]) == 0


async def test_an_enroll_racing_its_own_drop_never_answers_with_the_dropped_enrollment(
    api: Api, worker: object, container: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.ext.asyncio import AsyncSession

    from smartcourse.models import Enrollment

    teacher = await api.user("instructor")
    course = await api.published_course(teacher)
    (student,) = await fast_students(container, 1)
    first = (await enroll(api, student, course["id"])).json()
    real_get = AsyncSession.get
    dropped: list[Any] = []

    async def dropped_in_between(self: AsyncSession, entity: Any, ident: Any, *args: Any, **kwargs: Any) -> Any:
        if entity is Enrollment and str(ident) == first["id"] and not dropped:  # the facts said "live"
            dropped.append(None)  # first: the drop loads the enrollment through here too
            dropped[0] = await api.client.delete(f"/enrollments/{first['id']}", headers=student["headers"])
        return await real_get(self, entity, ident, *args, **kwargs)

    monkeypatch.setattr(AsyncSession, "get", dropped_in_between)
    r = await enroll(api, student, course["id"])
    assert dropped and dropped[0].status_code == 200, dropped
    assert r.status_code == 201, r.text  # a new attempt, not the enrollment the drop just ended
    assert r.json()["status"] != "dropped" and r.json()["attempt"] == 2 and r.json()["id"] != first["id"]


@pytest.mark.parametrize("full", [False, True], ids=["seat", "waitlist"])
async def test_no_admission_commits_after_the_archive_that_it_waited_for(
    api: Api, worker: object, container: Any, monkeypatch: pytest.MonkeyPatch, full: bool
) -> None:
    teacher = await api.user("instructor")
    course = await api.published_course(teacher, capacity=1, waitlist_enabled=True)
    holder, student = await fast_students(container, 2)
    if full:
        assert (await enroll(api, holder, course["id"])).status_code == 201
    real_admit = enrollment_service._admit
    archived: list[Any] = []

    async def archived_meanwhile(conn: Any, params: dict[str, Any], session: Any) -> Any:
        if not archived:  # the facts said "published"; the archive commits before the statement takes the row
            archived.append(None)
            archived[0] = await api.client.delete(f"/courses/{course['id']}", headers=teacher["headers"])
        return await real_admit(conn, params, session)

    monkeypatch.setattr(enrollment_service, "_admit", archived_meanwhile)
    r = await enroll(api, student, course["id"])
    assert archived[0].status_code == 200, archived[0].text
    assert r.status_code == 409 and r.json()["code"] == "course_archived", r.text
    assert await _count(container, course["id"], student_id=uuid.UUID(student["id"])) == 0


async def test_the_head_of_the_waitlist_gets_the_seat_while_its_own_request_is_in_flight(
    api: Api, worker: object, container: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    teacher = await api.user("instructor")
    course, lessons = await course_with_lessons(api, teacher, capacity=1, waitlist_enabled=True)
    holder, first, second = await fast_students(container, 3)
    seat = (await enroll(api, holder, course["id"])).json()
    w1, w2 = (await enroll(api, first, course["id"])).json(), (await enroll(api, second, course["id"])).json()
    assert (w1["position"], w2["position"]) == (1, 2)
    real_lessons = progress_service.published_lessons
    dropped: list[Any] = []

    async def the_seat_is_freed_meanwhile(documents: Any, course_row: Any) -> Any:
        if not dropped:  # inside the head's "complete lesson" request (403 enrollment_not_active)
            dropped.append(None)
            dropped[0] = await api.client.delete(f"/enrollments/{seat['id']}", headers=holder["headers"])
        return await real_lessons(documents, course_row)

    monkeypatch.setattr(progress_service, "published_lessons", the_seat_is_freed_meanwhile)
    r = await api.client.post(f"/lessons/{lessons[0]['id']}/complete", headers=first["headers"])
    assert r.status_code == 403 and r.json()["code"] == "enrollment_not_active", r.text
    assert r.json()["details"] == {"status": "waitlisted"}
    assert dropped and dropped[0].status_code == 200, dropped
    mine = (await api.client.get(f"/enrollments/{w1['id']}", headers=first["headers"])).json()
    theirs = (await api.client.get(f"/enrollments/{w2['id']}", headers=second["headers"])).json()
    assert mine["status"] in {"pending", "active"}, mine  # the head of the queue, not the one behind it
    assert theirs["status"] == "waitlisted" and theirs["position"] == 1, theirs


async def test_a_seat_freed_in_an_archived_course_goes_to_nobody_on_its_waitlist(
    api: Api, worker: object, container: Any
) -> None:
    teacher = await api.user("instructor")
    course = await api.published_course(teacher, capacity=1, waitlist_enabled=True)
    holder, waiting = await fast_students(container, 2)
    seat = (await enroll(api, holder, course["id"])).json()
    queued = (await enroll(api, waiting, course["id"])).json()
    assert queued["status"] == "waitlisted"
    assert (await api.client.delete(f"/courses/{course['id']}", headers=teacher["headers"])).status_code == 200
    assert (await api.client.delete(f"/enrollments/{seat['id']}", headers=holder["headers"])).status_code == 200
    after = (await api.client.get(f"/enrollments/{queued['id']}", headers=waiting["headers"])).json()
    assert after["status"] == "dropped", after  # released at the archive, never admitted into a withdrawn course


async def test_archiving_releases_the_waitlist_and_tells_each_student(api: Api, worker: object, container: Any) -> None:
    teacher = await api.user("instructor")
    course = await api.published_course(teacher, capacity=1, waitlist_enabled=True)
    holder, first, second = await fast_students(container, 3)
    seat = (await enroll(api, holder, course["id"])).json()
    queued = [(await enroll(api, s, course["id"])).json() for s in (first, second)]
    assert [q["status"] for q in queued] == ["waitlisted", "waitlisted"]
    assert (await api.client.delete(f"/courses/{course['id']}", headers=teacher["headers"])).status_code == 200
    assert (await api.client.delete(f"/courses/{course['id']}", headers=teacher["headers"])).status_code == 200
    for student, q in zip((first, second), queued, strict=True):
        e = (await api.client.get(f"/enrollments/{q['id']}", headers=student["headers"])).json()
        assert e["status"] == "dropped" and e["position"] is None, e
        history = (await api.client.get(f"/enrollments/{q['id']}/history", headers=student["headers"])).json()
        assert [(h["to_status"], h["actor"], h["reason"]) for h in history][-1] == (
            "dropped",
            "system",
            "course archived",
        )
        notes = (await api.client.get("/notifications", headers=student["headers"])).json()
        items = notes["items"] if isinstance(notes, dict) else notes
        released = [n for n in items if n["kind"] == "waitlist.released"]
        assert len(released) == 1 and "withdrawn" in released[0]["title"], items  # once, an archive twice
    kept = (await api.client.get(f"/enrollments/{seat['id']}", headers=holder["headers"])).json()
    assert kept["status"] in {"pending", "active"}  # the enrolled keep their place in an archived course
    from tests.e2e.test_enrollment import drained

    await drained(container)
    async with container.uow() as uow:
        from smartcourse.models import OutboxEvent

        dropped_events = await uow.session.scalar(
            select(func.count())
            .select_from(OutboxEvent)
            .where(
                OutboxEvent.event_type == "enrollment.dropped",
                OutboxEvent.payload["data"]["course_id"].astext == course["id"],
            )
        )
    assert dropped_events == 2
