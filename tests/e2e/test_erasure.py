"""Erasing an account's personal data (explore67 F1): at its owner's request with its password, or by an admin."""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import func, select

from smartcourse.models import AiConversation, AiInteraction, Certificate, Enrollment, Notification
from tests.conftest import Api
from tests.e2e.test_enrollment import QUIZ, complete_everything, course_with_lessons, enroll, wait_enrollment
from tests.integration.test_assistant import ScriptedChat, scripted


async def test_a_student_erases_their_account_and_the_platform_keeps_only_what_names_nobody(
    api: Api, worker: object, container: Any
) -> None:
    teacher, student, waiting = await api.user("instructor"), await api.user(), await api.user()
    admin = await api.admin(container)
    done, lessons = await course_with_lessons(api, teacher, title="Finished before leaving")
    first = (await enroll(api, student, done["id"])).json()["id"]
    await wait_enrollment(api, student, first, "active")
    await complete_everything(api, student, lessons)
    cert = (await api.client.post(f"/enrollments/{first}/certificate", headers=student["headers"])).json()
    assert (await api.client.get(f"/certificates/verify/{cert['code']}")).json()["status"] == "valid"
    full, _ = await course_with_lessons(api, teacher, title="Left half-way", capacity=1, waitlist_enabled=True)
    seat = (await enroll(api, student, full["id"])).json()["id"]
    await wait_enrollment(api, student, seat, "active")
    queued = (await enroll(api, waiting, full["id"])).json()
    assert queued["status"] == "waitlisted", queued
    with scripted(container, ScriptedChat()):  # a conversation and its usage record, as an ask leaves them
        r = await api.client.post(
            "/ai/ask",
            json={"course_id": done["id"], "question": "I was ill in week 3 (student 4711): what is a lesson about?"},
            headers=student["headers"],
        )
        assert r.status_code == 200 and r.json()["conversation_id"], r.text

    # A copy of everything held about them first (explore67 F2), without secrets; nobody else's.
    r = await api.client.get(f"/users/{student['id']}/export", headers=student["headers"])
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"], r.text
    data = r.json()
    assert data["account"]["email"] == student["email"] and "password_hash" not in data["account"], data["account"]
    assert {e["course_title"] for e in data["enrollments"]} == {"Finished before leaving", "Left half-way"}
    finished = next(e for e in data["enrollments"] if e["course_title"] == "Finished before leaving")
    assert finished["status"] == "completed" and finished["history"] and finished["lessons"], finished
    assert [c["code"] for c in data["certificates"]] == [cert["code"]]
    assert [m["role"] for m in data["assistant_conversations"][0]["messages"]][:1] == ["user"], data
    assert "student 4711" in data["assistant_interactions"][0]["question"]
    # Times as every answer writes them (explore78 F6: `+00:00` here only).
    stamps = re.findall(r'"\d{4}-\d\d-\d\dT[^"]*"', r.text)
    assert stamps and all(t.endswith('Z"') for t in stamps), [t for t in stamps if not t.endswith('Z"')][:5]
    assert data["sessions"] and all("token_hash" not in t for t in data["sessions"])
    assert student["refresh_token"] not in r.text and "$argon2" not in r.text
    r = await api.client.get(f"/users/{student['id']}/export", headers=waiting["headers"])
    assert (r.status_code, r.json()["code"]) == (403, "not_account_owner"), r.text

    url = f"/users/{student['id']}/erase"
    # Someone else's: refused; one's own: with its password.
    r = await api.client.post(url, json={}, headers=waiting["headers"])
    assert (r.status_code, r.json()["code"]) == (403, "not_account_owner"), r.text
    r = await api.client.post(url, json={}, headers=student["headers"])
    assert (r.status_code, r.json()["code"]) == (422, "current_password_required"), r.text
    r = await api.client.post(url, json={"current_password": "not-it"}, headers=student["headers"])
    assert (r.status_code, r.json()["code"]) == (403, "wrong_current_password"), r.text
    r = await api.client.post(url, json={"current_password": student["password"]}, headers=student["headers"])
    assert r.status_code == 200, r.text
    erased = r.json()
    assert (erased["enrollments_dropped"], erased["certificates_withdrawn"]) == (1, 1), erased
    assert erased["conversations_deleted"] == 1, erased
    assert erased["notifications_deleted"] >= 2, erased  # two welcomes, the certificate's once its workflow sent it

    # Signed out everywhere; its address free to register again, a new account.
    assert (await api.client.get("/auth/me", headers=student["headers"])).status_code == 401
    r = await api.client.post("/auth/login", json={"email": student["email"], "password": student["password"]})
    assert r.status_code == 401
    r = await api.client.post(
        "/auth/register",
        json={"email": student["email"], "password": "a-fresh-start-77", "full_name": "Back Again", "role": "student"},
    )
    assert r.status_code == 201 and r.json()["id"] != student["id"], r.text
    # The admin sees the placeholder; nothing changes it any more; a repeat does nothing more.
    account = (await api.client.get(f"/users/{student['id']}", headers=admin["headers"])).json()
    assert account["full_name"] == "Erased account" and account["email"].endswith("@erased.invalid"), account
    assert account["erased_at"] and account["is_active"] is False, account
    after = (await api.client.get(f"/users/{student['id']}/export", headers=admin["headers"])).json()
    assert after["account"]["full_name"] == "Erased account" and after["assistant_conversations"] == [], after
    assert all(i["question"] is None for i in after["assistant_interactions"]), after
    r = await api.client.put(f"/users/{student['id']}", json={"is_active": True}, headers=admin["headers"])
    assert (r.status_code, r.json()["code"]) == (409, "account_erased"), r.text
    again = await api.client.post(url, json={}, headers=admin["headers"])
    assert again.status_code == 200 and again.json()["erased_at"] == erased["erased_at"], again.text
    assert again.json()["enrollments_dropped"] == 0

    # The certificate names nobody: the public check says `withdrawn` and nothing else; no PDF.
    check = await api.client.get(f"/certificates/verify/{cert['code']}")
    assert check.json() == {"valid": False, "status": "withdrawn"}, check.text
    page = await api.client.get(f"/certificates/verify/{cert['code']}", headers={"Accept": "text/html"})
    assert "Withdrawn certificate" in page.text and "Erased" not in page.text and student["full_name"] not in page.text
    r = await api.client.get(f"/certificates/{cert['id']}/pdf", headers=admin["headers"])
    assert (r.status_code, r.json()["code"]) == (409, "certificate_withdrawn"), r.text
    # Its seat went to the waitlist; the roster shows the placeholder.
    await wait_enrollment(api, waiting, queued["id"], "active")
    roster = (await api.client.get(f"/courses/{full['id']}/enrollments", headers=teacher["headers"])).json()
    assert {(i["student_name"], i["status"]) for i in roster["items"]} == {
        ("Erased account", "dropped"),
        (waiting["full_name"], "active"),
    }
    # Conversations, notifications and the question gone; the enrollments stay for the figures (which the suite's
    # last test, test_enrollment.py::test_analytics_dashboard_agrees_with_the_database, reconciles).
    async with container.uow() as uow:
        sid = uuid.UUID(student["id"])
        left = {
            "conversations": await uow.session.scalar(
                select(func.count()).select_from(AiConversation).where(AiConversation.user_id == sid)
            ),
            "notifications": await uow.session.scalar(
                select(func.count()).select_from(Notification).where(Notification.user_id == sid)
            ),
            "questions": await uow.session.scalar(
                select(func.count())
                .select_from(AiInteraction)
                .where(AiInteraction.user_id == sid, AiInteraction.question.is_not(None))
            ),
            "enrollments": await uow.session.scalar(
                select(func.count()).select_from(Enrollment).where(Enrollment.student_id == sid)
            ),
        }
    assert left == {"conversations": 0, "notifications": 0, "questions": 0, "enrollments": 2}, left


async def test_an_instructor_with_a_live_course_is_not_erased_until_it_is_archived(
    api: Api, worker: object, container: Any
) -> None:
    """Students take a live course and its certificates name its instructor: an admin archives it first. Drafts and
    archived courses do not hold the erasure back (explore69 F4: every course ever made did, and none can change
    owner)."""
    teacher = await api.user("instructor")
    admin = await api.admin(container)
    live = await api.published_course(teacher)
    draft = await api.course(teacher, title="A draft")
    await api.lesson(teacher, draft["id"], (await api.module(teacher, draft["id"]))["id"])
    r = await api.client.post(f"/users/{teacher['id']}/erase", json={}, headers=admin["headers"])
    assert (r.status_code, r.json()["code"]) == (409, "owns_courses"), r.text
    assert r.json()["details"] == {"courses": 1, "course_ids": [live["id"]]}  # which, to hand over (explore81 F7)
    r = await api.client.delete(f"/courses/{live['id']}", headers=admin["headers"])  # archived
    assert r.status_code == 200, r.text
    r = await api.client.post(f"/users/{teacher['id']}/erase", json={}, headers=admin["headers"])
    assert r.status_code == 200, r.text
    # Nor are they put live again, taught by "Erased account" (explore71 F2).
    r = await api.client.post(f"/courses/{live['id']}/restore", headers=admin["headers"])
    assert (r.status_code, r.json()["code"]) == (409, "instructor_erased"), r.text
    r = await api.client.post(f"/courses/{draft['id']}/publish", headers=admin["headers"])
    assert (r.status_code, r.json()["code"]) == (409, "instructor_erased"), r.text


async def test_an_admin_hands_a_course_to_another_instructor_and_the_departing_one_is_erased(
    api: Api, worker: object, container: Any
) -> None:
    """explore77 F2: a trainer leaving the company asked to be erased; their live programme had to be archived first
    (out of the catalogue, its waitlist released, the courses requiring it blocked). An admin hands it over."""
    leaving, taking_over, student = await api.user("instructor"), await api.user("instructor"), await api.user()
    admin = await api.admin(container)
    live = await api.published_course(leaving)
    cid = live["id"]
    handed = {"instructor_id": taking_over["id"]}
    r = await api.client.put(f"/courses/{cid}", json=handed, headers=leaving["headers"])
    assert (r.status_code, r.json()["code"]) == (403, "admin_only"), r.text
    r = await api.client.put(f"/courses/{cid}", json={"instructor_id": student["id"]}, headers=admin["headers"])
    assert (r.status_code, r.json()["code"]) == (409, "not_an_instructor"), r.text
    r = await api.client.put(f"/courses/{cid}", json={"instructor_id": str(uuid.uuid4())}, headers=admin["headers"])
    assert (r.status_code, r.json()["code"]) == (404, "user_not_found"), r.text
    r = await api.client.put(f"/courses/{cid}", json=handed, headers=admin["headers"])
    assert r.status_code == 200 and r.json()["instructor_id"] == taking_over["id"], r.text
    assert r.json()["status"] == "published"
    # The new instructor runs it; the one who left no longer may; the catalogue says who teaches it now.
    r = await api.client.put(f"/courses/{cid}", json={"title": "Handed over"}, headers=taking_over["headers"])
    assert r.status_code == 200, r.text
    r = await api.client.put(f"/courses/{cid}", json={"title": "Mine"}, headers=leaving["headers"])
    assert r.status_code == 403, r.text
    listed = (await api.client.get("/courses", params={"q": "Handed over"})).json()
    assert [c["instructor_id"] for c in listed["items"] if c["id"] == cid] == [taking_over["id"]], listed
    r = await api.client.post(f"/users/{leaving['id']}/erase", json={}, headers=admin["headers"])
    assert r.status_code == 200, r.text
    assert (await api.client.get(f"/courses/{cid}")).json()["status"] == "published"


async def test_what_admins_do_to_an_account_is_recorded(api: Api, container: Any) -> None:
    """explore67 F5: disabling, renaming, an admin's password reset left no record of who did what to whom. Each
    admin change is recorded (a password as reset, never its value), read by admins; erased, the record keeps what
    was done, not the name or address."""
    admin = await api.admin(container)
    me = (await api.client.get("/auth/me", headers=admin["headers"])).json()
    tag = uuid.uuid4().hex[:8]
    r = await api.client.post(
        "/users", json={"email": f"audited-{tag}@academy.example", "full_name": "Audited One"}, headers=admin["headers"]
    )
    assert r.status_code == 201, r.text
    uid = r.json()["id"]
    for body in (
        {"full_name": "Audited Two"},
        {"is_active": False},
        {"is_active": True},
        {"password": "copper-kettle-window-8"},
        {"bio": "hello"},
    ):
        r = await api.client.put(f"/users/{uid}", json=body, headers=admin["headers"])
        assert r.status_code == 200, (body, r.text)
    changes = await api.client.get(f"/users/{uid}/changes", headers=admin["headers"])
    assert changes.status_code == 200 and changes.json()["total"] == 6, changes.text
    got = [c["change"] for c in reversed(changes.json()["items"])]  # oldest first
    assert got == [
        {"created": {"role": "student", "invited": True}},
        {"full_name": {"from": "Audited One", "to": "Audited Two"}},
        {"is_active": {"from": True, "to": False}},
        {"is_active": {"from": False, "to": True}},
        {"password": "reset"},
        {"bio": "changed"},
    ], got
    assert {c["actor_id"] for c in changes.json()["items"]} == {me["id"]}
    assert "copper-kettle" not in changes.text
    # A PUT that changes nothing records nothing and leaves updated_at alone (explore71 F9).
    before = (await api.client.get(f"/users/{uid}", headers=admin["headers"])).json()["updated_at"]
    same = {"bio": "hello", "full_name": "Audited Two"}
    r = await api.client.put(f"/users/{uid}", json=same, headers=admin["headers"])
    assert r.status_code == 200 and r.json()["updated_at"] == before, r.text
    # An export is recorded, and carries the record (explore71 F4, F6).
    exported = (await api.client.get(f"/users/{uid}/export", headers=admin["headers"])).json()
    assert exported["account_changes"][0]["change"] == {"created": {"role": "student", "invited": True}}
    changes = await api.client.get(f"/users/{uid}/changes", headers=admin["headers"])
    assert changes.json()["total"] == 7 and changes.json()["items"][0]["change"] == {"exported": True}
    student = await api.user()
    r = await api.client.get(f"/users/{uid}/changes", headers=student["headers"])
    assert (r.status_code, r.json()["code"]) == (403, "admin_only"), r.text
    # Erased: what was done stays, the name does not.
    assert (await api.client.post(f"/users/{uid}/erase", json={}, headers=admin["headers"])).status_code == 200
    after = (await api.client.get(f"/users/{uid}/changes", headers=admin["headers"])).json()
    assert after["items"][0]["change"] == {"erased": True} and "Audited" not in str(after), after


async def test_an_erasure_racing_enrollments_and_a_completion_leaves_nothing_live_or_valid(
    api: Api, worker: object, container: Any
) -> None:
    """explore69 F1, F2: enrollments sent while an account was erased left it enrolled (seats held), and a completion
    landing meanwhile left a valid certificate naming it. Whatever lands while the erasure runs is caught."""
    import asyncio

    teacher, admin = await api.user("instructor"), await api.admin(container)
    courses = [await api.published_course(teacher, title=f"Raced {i}") for i in range(2)]
    done, lessons = await course_with_lessons(api, teacher, title="Completed in the race")
    student = await api.user()
    eid = (await enroll(api, student, done["id"])).json()["id"]
    await wait_enrollment(api, student, eid, "active")
    for lesson in lessons[:-1]:
        assert (await api.client.post(f"/lessons/{lesson['id']}/complete", headers=student["headers"])).is_success
    last = lessons[-1]

    async def admit(course_id: str) -> int:
        body = {"course_id": course_id, "student_id": student["id"]}
        return (await api.client.post("/enrollments", json=body, headers=admin["headers"])).status_code

    async def finish() -> int:  # the last lesson is the quiz: passing it completes the course
        answers = {"answers": [q["answer"] for q in QUIZ["questions"]]}
        r = await api.client.post(f"/quizzes/{last['id']}/submit", json=answers, headers=student["headers"])
        return r.status_code

    erase = api.client.post(f"/users/{student['id']}/erase", json={}, headers=admin["headers"])
    *_, erased = await asyncio.gather(*(admit(c["id"]) for c in courses), finish(), erase)
    assert erased.status_code == 200, erased.text
    await asyncio.sleep(2)  # the workflows of whatever was admitted or completed run on
    sid = uuid.UUID(student["id"])
    async with container.uow() as uow:
        live = await uow.session.scalar(
            select(func.count())
            .select_from(Enrollment)
            .where(Enrollment.student_id == sid, Enrollment.status.in_(("waitlisted", "pending", "active")))
        )
        valid = await uow.session.scalar(
            select(func.count())
            .select_from(Certificate)
            .where(Certificate.student_id == sid, Certificate.withdrawn_at.is_(None))
        )
        notices = await uow.session.scalar(
            select(func.count()).select_from(Notification).where(Notification.user_id == sid)
        )
    assert (live, valid) == (0, 0), (live, valid)
    assert notices == 0, notices
