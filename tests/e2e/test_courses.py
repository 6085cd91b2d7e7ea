"""Course authoring over HTTP, as the issue's reviewer would try it: happy path and forbidden moves."""

from __future__ import annotations

import io
import uuid

from reportlab.pdfgen import canvas

from tests.conftest import Api

QUIZ = {
    "title": "Check yourself",
    "type": "quiz",
    "pass_score": 50,
    "questions": [
        {"prompt": "2 + 2?", "options": ["3", "4"], "answer": 1},
        {"prompt": "Capital of France?", "options": ["Paris", "Rome", "Oslo"], "answer": 0},
    ],
}


def make_pdf(text: str = "Hello SmartCourse") -> bytes:
    buf = io.BytesIO()
    pdf = canvas.Canvas(buf)
    pdf.drawString(72, 720, text)
    pdf.save()
    return buf.getvalue()


async def test_full_authoring_and_publishing_flow(api: Api, worker: object) -> None:
    teacher, student = await api.user("instructor"), await api.user("student")
    course = await api.course(teacher, tags=["python"], level="beginner", capacity=30)
    assert course["status"] == "draft" and course["modules"] == []
    cid = course["id"]
    module = await api.module(teacher, cid)
    text = await api.lesson(teacher, cid, module["id"])
    quiz = await api.lesson(teacher, cid, module["id"], **QUIZ)
    assert quiz["questions"][0]["answer"] == 1  # the author sees answers

    pdf = make_pdf()
    r = await api.client.post(
        f"/courses/{cid}/materials",
        files={"file": ("notes.pdf", pdf, "application/pdf")},
        data={"lesson_id": text["id"]},
        headers=teacher["headers"],
    )
    assert r.status_code == 201, r.text
    material = r.json()
    assert material["content_type"] == "application/pdf" and material["size"] == len(pdf)

    # Not yet published: invisible to the student.
    assert (await api.client.get(f"/courses/{cid}", headers=student["headers"])).status_code == 404

    r = await api.client.post(f"/courses/{cid}/publish", headers=teacher["headers"])
    assert r.status_code == 202
    started = r.json()
    assert started["workflow_id"] == f"publish-{cid}-v1"
    wf = await api.wait_workflow(teacher, started["workflow_id"])
    assert wf["status"] == "completed"
    assert [s["name"] for s in wf["steps"]] == [
        "validate",
        "snapshot",
        "extract",
        "chunk",
        "embed",
        "index",
        "verify",
        "go_live",
        "cleanup",
    ]
    assert all(s["status"] == "completed" for s in wf["steps"])

    # Publishing again with nothing pending is idempotent per version: a new version v2.
    r = await api.client.get(f"/courses/{cid}", headers=student["headers"])
    assert r.status_code == 200
    seen = r.json()
    assert seen["status"] == "published" and seen["content_version"] == 1
    lessons = seen["modules"][0]["lessons"]
    assert [lsn["type"] for lsn in lessons] == ["text", "quiz"]
    # Not enrolled: the outline only (no bodies, no questions); enrolled students see questions, never answers.
    assert all("content" not in lsn and "questions" not in lsn for lsn in lessons)
    assert "answer" not in r.text

    r = await api.client.get("/courses", params={"q": "intro to", "page_size": 100}, headers=student["headers"])
    assert cid in [c["id"] for c in r.json()["items"]]

    # Materials are for enrolled students (and the owner): see tests/e2e/test_trust_materials.py.
    r = await api.client.get(f"/courses/{cid}/materials/{material['id']}", headers=student["headers"])
    assert r.status_code == 403 and r.json()["code"] == "enrollment_required"
    r = await api.client.get(f"/courses/{cid}/materials/{material['id']}", headers=teacher["headers"])
    assert r.status_code == 200 and r.content == pdf
    assert r.headers["content-type"] == "application/pdf"

    # Student view is the published snapshot: drafts edits after publishing are not shown until republished.
    await api.lesson(teacher, cid, module["id"], title="Draft only", type="text", content="wip")
    r = await api.client.get(f"/courses/{cid}", headers=student["headers"])
    assert [lsn["title"] for lsn in r.json()["modules"][0]["lessons"]] == ["Why test", "Check yourself"]


async def test_publish_event_is_written_with_the_state_change(api: Api, worker: object, container: object) -> None:
    from sqlalchemy import select

    from smartcourse.models import OutboxEvent

    teacher = await api.user("instructor")
    course = await api.published_course(teacher)
    async with container.uow() as uow:  # type: ignore[attr-defined]
        rows = list(
            await uow.session.scalars(
                select(OutboxEvent).where(
                    OutboxEvent.aggregate_id == course["id"], OutboxEvent.event_type == "course.published"
                )
            )
        )
    assert len(rows) == 1
    assert rows[0].payload["data"]["version"] == 1


async def test_publish_without_lessons_fails_and_returns_to_draft(api: Api, worker: object) -> None:
    teacher = await api.user("instructor")
    course = await api.course(teacher)
    await api.module(teacher, course["id"])  # a module but no lesson
    r = await api.client.post(f"/courses/{course['id']}/publish", headers=teacher["headers"])
    assert r.status_code == 202
    wf = await api.wait_workflow(teacher, r.json()["workflow_id"])
    assert wf["status"] == "failed"
    assert (wf["steps"][0]["name"], wf["steps"][0]["status"]) == ("validate", "failed") and wf["steps"][0]["error"]
    assert "at least one module with a lesson" in wf["steps"][0]["error"]
    assert {s["status"] for s in wf["steps"][1:]} == {"skipped"} and len(wf["steps"]) == 9
    r = await api.client.get(f"/courses/{course['id']}", headers=teacher["headers"])
    assert r.json()["status"] == "draft"


async def test_repeated_publish_request_reuses_the_workflow(api: Api, worker: object) -> None:
    teacher = await api.user("instructor")
    course = await api.course(teacher)
    module = await api.module(teacher, course["id"])
    await api.lesson(teacher, course["id"], module["id"])
    ids = set()
    for _ in range(3):
        r = await api.client.post(f"/courses/{course['id']}/publish", headers=teacher["headers"])
        assert r.status_code == 202
        ids.add(r.json()["workflow_id"])
    assert len(ids) <= 2  # the same run while publishing; at most a v2 once v1 completed
    assert f"publish-{course['id']}-v1" in ids


async def test_forbidden_moves(api: Api, worker: object) -> None:
    teacher, other, student = await api.user("instructor"), await api.user("instructor"), await api.user()
    course = await api.course(teacher)
    cid = course["id"]
    module = await api.module(teacher, cid)

    r = await api.client.post("/courses", json={"title": "x", "category": "y"}, headers=student["headers"])
    assert r.status_code == 403 and r.json()["code"] == "role_forbidden"
    r = await api.client.put(f"/courses/{cid}", json={"title": "Hijacked"}, headers=other["headers"])
    assert r.status_code == 403 and r.json()["code"] == "not_course_owner"
    r = await api.client.post(f"/courses/{cid}/modules", json={"title": "x"}, headers=other["headers"])
    assert r.status_code == 403
    r = await api.client.post(f"/courses/{cid}/publish", headers=other["headers"])
    assert r.status_code == 403
    r = await api.client.delete(f"/courses/{cid}", headers=student["headers"])
    assert r.status_code == 403
    r = await api.client.post(
        f"/courses/{cid}/materials", files={"file": ("a.txt", b"hi", "text/plain")}, headers=other["headers"]
    )
    assert r.status_code == 403
    r = await api.client.post("/courses", json={"title": "x", "category": "y"})
    assert r.status_code == 401 and r.json()["code"] == "not_authenticated"
    r = await api.client.post(
        f"/courses/{cid}/modules/{module['id']}/lessons",
        json={"title": "x", "type": "text"},
        headers=teacher["headers"],
    )
    assert r.status_code == 422 and r.json()["code"] == "validation_error"
    r = await api.client.post("/courses", json={"title": "", "category": "y"}, headers=teacher["headers"])
    assert r.status_code == 422 and r.json()["details"][0]["field"] == "title"
    r = await api.client.get(f"/courses/{uuid.uuid4()}", headers=teacher["headers"])
    assert r.status_code == 404 and r.json()["code"] == "course_not_found"
    r = await api.client.get("/courses/not-a-uuid")
    assert r.status_code == 422
    # Nothing changed.
    r = await api.client.get(f"/courses/{cid}", headers=teacher["headers"])
    assert r.json()["title"] == "Intro to Testing"


async def test_quiz_validation(api: Api) -> None:
    teacher = await api.user("instructor")
    course = await api.course(teacher)
    module = await api.module(teacher, course["id"])
    bad = {**QUIZ, "questions": [{"prompt": "?", "options": ["a", "b"], "answer": 5}]}
    r = await api.client.post(
        f"/courses/{course['id']}/modules/{module['id']}/lessons", json=bad, headers=teacher["headers"]
    )
    assert r.status_code == 422
    mixed = {"title": "t", "type": "text", "content": "x", "questions": QUIZ["questions"]}
    r = await api.client.post(
        f"/courses/{course['id']}/modules/{module['id']}/lessons", json=mixed, headers=teacher["headers"]
    )
    assert r.status_code == 422


async def test_modules_and_lessons_edit_and_order(api: Api) -> None:
    teacher = await api.user("instructor")
    course = await api.course(teacher)
    cid = course["id"]
    m1 = await api.module(teacher, cid, "First")
    m2 = await api.module(teacher, cid, "Second")
    lesson = await api.lesson(teacher, cid, m1["id"])
    r = await api.client.put(
        f"/courses/{cid}/modules/{m1['id']}/lessons/{lesson['id']}",
        json={"content": "Updated body", "title": "Renamed"},
        headers=teacher["headers"],
    )
    assert r.status_code == 200 and r.json()["content"] == "Updated body" and r.json()["title"] == "Renamed"
    r = await api.client.put(f"/courses/{cid}/modules/{m2['id']}", json={"position": 0}, headers=teacher["headers"])
    assert r.status_code == 200
    r = await api.client.put(f"/courses/{cid}/modules/{m1['id']}", json={"position": 5}, headers=teacher["headers"])
    detail = (await api.client.get(f"/courses/{cid}", headers=teacher["headers"])).json()
    assert [m["title"] for m in detail["modules"]] == ["Second", "First"]
    r = await api.client.delete(f"/courses/{cid}/modules/{m1['id']}/lessons/{lesson['id']}", headers=teacher["headers"])
    assert r.status_code == 204
    r = await api.client.delete(f"/courses/{cid}/modules/{m2['id']}", headers=teacher["headers"])
    assert r.status_code == 204
    detail = (await api.client.get(f"/courses/{cid}", headers=teacher["headers"])).json()
    assert [m["title"] for m in detail["modules"]] == ["First"] and detail["modules"][0]["lessons"] == []


async def test_material_checks(api: Api) -> None:
    teacher = await api.user("instructor")
    course = await api.course(teacher)
    url, h = f"/courses/{course['id']}/materials", teacher["headers"]
    r = await api.client.post(url, files={"file": ("x.exe", b"MZ\x90\x00", "application/octet-stream")}, headers=h)
    assert r.status_code == 415 and r.json()["code"] == "unsupported_media_type"
    r = await api.client.post(url, files={"file": ("fake.pdf", b"not a pdf", "application/pdf")}, headers=h)
    assert r.status_code == 422 and r.json()["code"] == "invalid_pdf"
    r = await api.client.post(url, files={"file": ("notes.md", b"# Title\n\nbody", "text/markdown")}, headers=h)
    assert r.status_code == 201 and r.json()["content_type"] == "text/markdown"
    r = await api.client.post(url, files={"file": ("page.html", b"<h1>Hi</h1>", "text/html")}, headers=h)
    assert r.status_code == 201
    r = await api.client.post(url, files={"file": ("empty.txt", b"", "text/plain")}, headers=h)
    assert r.status_code == 422 and r.json()["code"] == "empty_file"
    r = await api.client.post(url, headers=h)
    assert r.status_code == 422


async def test_material_size_limit(api: Api, container: object) -> None:
    teacher = await api.user("instructor")
    course = await api.course(teacher)
    limit = container.settings.max_upload_bytes  # type: ignore[attr-defined]
    big = b"a" * (limit + 1)
    r = await api.client.post(
        f"/courses/{course['id']}/materials",
        files={"file": ("big.txt", big, "text/plain")},
        headers=teacher["headers"],
    )
    assert r.status_code == 413 and r.json()["code"] == "file_too_large"


async def test_listing_pagination_and_visibility(api: Api, worker: object) -> None:
    teacher = await api.user("instructor")
    category = f"cat-{uuid.uuid4().hex[:6]}"
    for i in range(3):
        await api.published_course(teacher, title=f"Course {i}", category=category)
    draft = await api.course(teacher, title="Draft", category=category)
    r = await api.client.get("/courses", params={"category": category, "page_size": 2})
    body = r.json()
    assert body["total"] == 3 and len(body["items"]) == 2 and body["page"] == 1
    r = await api.client.get("/courses", params={"category": category, "page_size": 2, "page": 2})
    assert len(r.json()["items"]) == 1
    r = await api.client.get("/courses", params={"category": category, "mine": True}, headers=teacher["headers"])
    assert draft["id"] in [c["id"] for c in r.json()["items"]] and r.json()["total"] == 4


async def test_archive_hides_course(api: Api, worker: object) -> None:
    teacher, student = await api.user("instructor"), await api.user()
    course = await api.published_course(teacher)
    r = await api.client.delete(f"/courses/{course['id']}", headers=teacher["headers"])
    assert r.status_code == 200 and r.json()["status"] == "archived"
    assert (await api.client.get(f"/courses/{course['id']}", headers=student["headers"])).status_code == 404
    r = await api.client.post(f"/courses/{course['id']}/publish", headers=teacher["headers"])
    assert r.status_code == 409 and r.json()["code"] == "course_archived"


async def test_workflow_status_is_private(api: Api, worker: object) -> None:
    teacher, other = await api.user("instructor"), await api.user("instructor")
    course = await api.course(teacher)
    module = await api.module(teacher, course["id"])
    await api.lesson(teacher, course["id"], module["id"])
    r = await api.client.post(f"/courses/{course['id']}/publish", headers=teacher["headers"])
    wf_id = r.json()["workflow_id"]
    assert (await api.client.get(f"/workflows/{wf_id}", headers=other["headers"])).status_code == 404
    assert (await api.client.get("/workflows/unknown-id", headers=teacher["headers"])).status_code == 404
    await api.wait_workflow(teacher, wf_id)


async def test_health_reports_engines(api: Api) -> None:
    r = await api.client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["engines"]["database"]["status"] == "up"
    assert body["engines"]["temporal"]["status"] == "up"
