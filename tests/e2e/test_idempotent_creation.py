"""`Idempotency-Key` on the creating POSTs (courses, modules, lessons, material uploads: api/idempotency.py): a
client whose answer was lost sends the request again and gets the first answer, not a second resource."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from smartcourse.models import Course, IdempotentRequest
from smartcourse.services import retention
from tests.conftest import Api

COURSE = {"title": "A course", "category": "engineering"}


def _keyed(user: dict[str, Any], key: str | None = None) -> dict[str, str]:
    return {**user["headers"], "Idempotency-Key": key or f"k-{uuid.uuid4()}"}


async def _courses_of(container: Any, teacher: dict[str, Any]) -> int:
    async with container.uow() as uow:
        count = await uow.session.scalar(
            select(func.count()).select_from(Course).where(Course.instructor_id == uuid.UUID(teacher["id"]))
        )
    return int(count or 0)


async def test_a_course_created_again_with_its_key_is_the_same_course(api: Api, container: Any) -> None:
    teacher = await api.user("instructor")
    headers = _keyed(teacher)
    body = {"title": "Retried course", "description": "made once", "category": "engineering"}
    first = await api.client.post("/courses", json=body, headers=headers)
    assert first.status_code == 201, first.text
    again = await api.client.post("/courses", json=body, headers=headers)
    assert again.status_code == 201, again.text
    assert again.json() == first.json()
    assert again.headers["Location"] == first.headers["Location"] == f"/courses/{first.json()['id']}"
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert await _courses_of(container, teacher) == 1
    # The key names that request: another body or another path with it is refused, nothing made.
    other = await api.client.post("/courses", json={**body, "title": "Another"}, headers=headers)
    assert (other.status_code, other.json()["code"]) == (409, "idempotency_key_reused"), other.text
    assert other.json()["details"] == {"route": "POST /courses", "location": first.headers["Location"]}
    cid = first.json()["id"]
    module = await api.client.post(f"/courses/{cid}/modules", json={"title": "M"}, headers=headers)
    assert (module.status_code, module.json()["code"]) == (409, "idempotency_key_reused"), module.text
    # Without a key a repeat is a new course; a key is the caller's own (another instructor's same key is theirs).
    assert (await api.client.post("/courses", json=body, headers=teacher["headers"])).status_code == 201
    assert await _courses_of(container, teacher) == 2
    colleague = await api.user("instructor")
    theirs = await api.client.post(
        "/courses", json=body, headers={**colleague["headers"], **{"Idempotency-Key": headers["Idempotency-Key"]}}
    )
    assert theirs.status_code == 201 and theirs.json()["id"] != cid and "Idempotent-Replayed" not in theirs.headers


async def test_a_double_tap_makes_one_course_and_both_answer_it(api: Api, container: Any) -> None:
    teacher = await api.user("instructor")
    headers = _keyed(teacher)
    burst = await asyncio.gather(
        *(api.client.post("/courses", json={**COURSE, "title": "Tapped twice"}, headers=headers) for _ in range(4))
    )
    assert [r.status_code for r in burst] == [201] * 4, [r.text for r in burst]
    assert len({r.json()["id"] for r in burst}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in burst) == 3
    assert await _courses_of(container, teacher) == 1


async def test_a_refused_request_binds_no_key_and_modules_lessons_and_materials_take_one(api: Api) -> None:
    teacher = await api.user("instructor")
    course = await api.course(teacher)
    cid = course["id"]
    headers = _keyed(teacher)
    # Refused (invalid title): the key is not spent, the corrected request with it makes the module.
    refused = await api.client.post(f"/courses/{cid}/modules", json={"title": ""}, headers=headers)
    assert refused.status_code == 422, refused.text
    module = await api.client.post(f"/courses/{cid}/modules", json={"title": "Week 1"}, headers=headers)
    again = await api.client.post(f"/courses/{cid}/modules", json={"title": "Week 1"}, headers=headers)
    assert module.status_code == again.status_code == 201 and again.json() == module.json(), again.text
    mid = module.json()["id"]

    lesson_headers = _keyed(teacher)
    lesson = {"title": "Intro", "type": "text", "content": "Hello"}
    url = f"/courses/{cid}/modules/{mid}/lessons"
    made = [await api.client.post(url, json=lesson, headers=lesson_headers) for _ in range(2)]
    assert [r.status_code for r in made] == [201, 201] and made[0].json() == made[1].json()

    upload_headers = _keyed(teacher)
    files = {"file": ("notes.md", b"# Notes\n\nOnce only.", "text/markdown")}
    sent = [await api.client.post(f"/courses/{cid}/materials", files=files, headers=upload_headers) for _ in range(2)]
    # Without the key the second upload of the same file is 409 duplicate_material; with it, the first answer.
    assert [r.status_code for r in sent] == [201, 201], [r.text for r in sent]
    assert sent[1].json() == sent[0].json() and sent[1].headers["Location"] == sent[0].headers["Location"]
    other = {"file": ("notes.md", b"# Notes\n\nAnother text.", "text/markdown")}
    r = await api.client.post(f"/courses/{cid}/materials", files=other, headers=upload_headers)
    assert (r.status_code, r.json()["code"]) == (409, "idempotency_key_reused"), r.text

    outline = (await api.client.get(f"/courses/{cid}", headers=teacher["headers"])).json()
    assert [(m["title"], [le["title"] for le in m["lessons"]]) for m in outline["modules"]] == [("Week 1", ["Intro"])]
    listed = (await api.client.get(f"/courses/{cid}/materials", headers=teacher["headers"])).json()
    assert [m["filename"] for m in listed["items"]] == ["notes.md"]


async def test_a_key_past_its_time_names_a_new_request_and_is_purged(api: Api, container: Any) -> None:
    teacher = await api.user("instructor")
    headers = _keyed(teacher)
    first = await api.client.post("/courses", json={"title": "Monday", "category": "engineering"}, headers=headers)
    assert first.status_code == 201
    hours = container.settings.idempotency_key_hours
    async with container.uow() as uow:
        await uow.session.execute(
            update(IdempotentRequest)
            .where(IdempotentRequest.key == headers["Idempotency-Key"])
            .values(created_at=datetime.now(UTC) - timedelta(hours=hours, minutes=1))
        )
        await uow.commit()
    # Another request with the old key: a new course, not 409.
    later = await api.client.post("/courses", json={"title": "Tuesday", "category": "engineering"}, headers=headers)
    assert later.status_code == 201 and later.json()["id"] != first.json()["id"], later.text
    assert "Idempotent-Replayed" not in later.headers
    # The sweeper's purge takes keys past their time, and only those.
    old = _keyed(teacher)
    assert (await api.client.post("/courses", json={**COURSE, "title": "Old"}, headers=old)).status_code == 201
    async with container.uow() as uow:
        await uow.session.execute(
            update(IdempotentRequest)
            .where(IdempotentRequest.key == old["Idempotency-Key"])
            .values(created_at=datetime.now(UTC) - timedelta(hours=hours + 1))
        )
        await uow.commit()
    purged = await retention.purge(container)
    assert purged.rows["idempotent_requests"] >= 1
    async with container.uow() as uow:
        kept = set(
            (
                await uow.session.scalars(
                    select(IdempotentRequest.key).where(IdempotentRequest.principal_id == uuid.UUID(teacher["id"]))
                )
            ).all()
        )
    assert kept == {headers["Idempotency-Key"]}
