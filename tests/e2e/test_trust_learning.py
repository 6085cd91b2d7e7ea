"""Issue #9.6: quiz attempts are limited and spaced, answers not leaked by feedback; prerequisites are sound."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Api
from tests.e2e.test_enrollment import course_with_lessons, enroll, wait_enrollment


@pytest.fixture
def tuned(container: Any) -> Iterator[Any]:
    original = container.settings

    def tune(**changes: Any) -> None:
        container.settings = original.model_copy(update=changes)

    yield tune
    container.settings = original


async def _quiz_for_a_student(api: Api) -> tuple[dict[str, Any], str]:
    teacher, student = await api.user("instructor"), await api.user()
    course, lessons = await course_with_lessons(api, teacher)
    eid = (await enroll(api, student, course["id"])).json()["id"]
    await wait_enrollment(api, student, eid, "active")
    quiz = next(lsn for lsn in lessons if lsn["type"] == "quiz")
    return student, f"/quizzes/{quiz['id']}/submit"


async def test_quiz_attempts_are_limited_and_feedback_comes_after(api: Api, worker: object, tuned: Any) -> None:
    student, url = await _quiz_for_a_student(api)
    tuned(quiz_max_attempts=2, quiz_cooldown_seconds=0)
    first = (await api.client.post(url, json={"answers": [0, 0]}, headers=student["headers"])).json()
    assert first["passed"] is False and first["attempts_left"] == 1 and first["correct"] is None
    last = (await api.client.post(url, json={"answers": [1, 1]}, headers=student["headers"])).json()
    assert last["attempts_left"] == 0 and last["correct"] == [True, False]  # exhausted: now it may be told
    r = await api.client.post(url, json={"answers": [1, 0]}, headers=student["headers"])
    assert r.status_code == 409 and r.json()["code"] == "quiz_attempts_exhausted"


async def test_quiz_cooldown_between_attempts(api: Api, worker: object, tuned: Any) -> None:
    student, url = await _quiz_for_a_student(api)
    tuned(quiz_max_attempts=5, quiz_cooldown_seconds=60)
    assert (await api.client.post(url, json={"answers": [0, 0]}, headers=student["headers"])).status_code == 200
    r = await api.client.post(url, json={"answers": [1, 0]}, headers=student["headers"])
    assert r.status_code == 429 and r.json()["code"] == "quiz_cooldown"
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    tuned(quiz_max_attempts=5, quiz_cooldown_seconds=0)
    passed = (await api.client.post(url, json={"answers": [1, 0]}, headers=student["headers"])).json()
    assert passed["passed"] and passed["correct"] == [True, True]


async def test_prerequisites_must_be_visible_and_acyclic(api: Api, worker: object) -> None:
    teacher, other = await api.user("instructor"), await api.user("instructor")
    others_draft = await api.course(other, title="Secret draft")
    r = await api.client.post(
        "/courses",
        json={"title": "T", "description": "D", "category": "c", "prerequisites": [others_draft["id"]]},
        headers=teacher["headers"],
    )
    assert r.status_code == 422 and r.json()["code"] == "unknown_prerequisite"
    others_live = await api.published_course(other, title="Public basics")
    a = await api.course(teacher, title="A", prerequisites=[others_live["id"]])
    b = await api.course(teacher, title="B", prerequisites=[a["id"]])  # own draft: fine
    r = await api.client.put(f"/courses/{a['id']}", json={"prerequisites": [b["id"]]}, headers=teacher["headers"])
    assert r.status_code == 422 and r.json()["code"] == "prerequisite_cycle"
    c = await api.course(teacher, title="C", prerequisites=[b["id"]])
    r = await api.client.put(f"/courses/{a['id']}", json={"prerequisites": [c["id"]]}, headers=teacher["headers"])
    assert r.status_code == 422 and r.json()["code"] == "prerequisite_cycle"
