"""Lists that grow with use are paginated with the catalogue's `page`/`page_size` (docs/api.md, "Pagination"):
`GET /enrollments/my-courses`, `GET /certificates/my` (bare arrays still; `X-Total-Count` and `Link` headers) and
`GET /courses/{id}/materials` (its object body gains `total`, `page`, `page_size`). Rows are inserted directly, with
one shared timestamp so that only the id tiebreaker orders them, and walked with a small `page_size`."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import Api

BAD_PARAMS = [
    ({"page": 0}, "page"),
    ({"page": -1}, "page"),
    ({"page": "two"}, "page"),
    ({"page": 100_001}, "page"),
    ({"page_size": 0}, "page_size"),
    ({"page_size": 101}, "page_size"),
    ({"page_size": "1.5"}, "page_size"),
]


async def _enrollments(container: Any, student_id: str, course_id: str, n: int) -> list[str]:
    """`n` past (dropped) attempts of one student at one course, all created at the same instant."""
    from smartcourse.models import Enrollment

    at = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        Enrollment(
            id=uuid.uuid4(),
            student_id=uuid.UUID(student_id),
            course_id=uuid.UUID(course_id),
            status="dropped",
            attempt=i + 1,
            dropped_at=at,
            created_at=at,
            updated_at=at,
        )
        for i in range(n)
    ]
    async with container.uow() as uow:
        uow.session.add_all(rows)
        await uow.commit()
    return [str(r.id) for r in rows]


async def _certificates(container: Any, student_id: str, course_id: str, enrollment_ids: list[str]) -> list[str]:
    from smartcourse.domain.certificates import new_code
    from smartcourse.models import Certificate

    at = datetime(2026, 1, 2, tzinfo=UTC)
    rows = [
        Certificate(
            id=uuid.uuid4(),
            enrollment_id=uuid.UUID(eid),
            student_id=uuid.UUID(student_id),
            course_id=uuid.UUID(course_id),
            code=new_code(),
            student_name="A student",
            course_title="Intro to Testing",
            issued_at=at,
        )
        for eid in enrollment_ids
    ]
    async with container.uow() as uow:
        uow.session.add_all(rows)
        await uow.commit()
    return [str(r.id) for r in rows]


def _links(header: str | None) -> dict[str, str]:
    return {rel: ref for ref, rel in re.findall(r'<([^>]*)>; rel="(\w+)"', header or "")}


async def _walk(api: Api, url: str, headers: dict[str, str], page_size: int) -> list[str]:
    """Every id, following the `Link` header's next page from page 1; checks the headers on the way."""
    ids: list[str] = []
    params: dict[str, Any] = {"page": 1, "page_size": page_size}
    while True:
        r = await api.client.get(url, params=params, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        items = body["items"] if isinstance(body, dict) else body
        assert 0 < len(items) <= page_size
        ids += [item["id"] for item in items]
        links = _links(r.headers.get("link"))
        if params["page"] > 1:
            assert links["prev"] == f"?page={params['page'] - 1}&page_size={page_size}"
        if "next" not in links:
            assert len(ids) == int(r.headers["x-total-count"])
            return ids
        assert links["next"] == f"?page={params['page'] + 1}&page_size={page_size}"
        params["page"] += 1


async def test_my_courses_are_paged(api: Api, container: Any) -> None:
    teacher, student, other = await api.user("instructor"), await api.user(), await api.user()
    course = await api.course(teacher)
    ids = await _enrollments(container, student["id"], course["id"], 21)
    await _enrollments(container, other["id"], course["id"], 1)

    # The default page is 20 long; the headers say there is more.
    r = await api.client.get("/enrollments/my-courses", headers=student["headers"])
    assert r.status_code == 200 and len(r.json()) == 20, r.text
    assert r.headers["x-total-count"] == "21"
    assert _links(r.headers.get("link")) == {"next": "?page=2&page_size=20"}

    # Pages neither overlap nor skip (one created_at for all: the id orders them), and follow the full list's order.
    walked = await _walk(api, "/enrollments/my-courses", student["headers"], page_size=4)
    assert sorted(walked) == sorted(ids) and len(set(walked)) == 21
    assert walked == [
        e["id"]
        for e in (
            await api.client.get("/enrollments/my-courses", params={"page_size": 100}, headers=student["headers"])
        ).json()
    ]
    # Past the end: an empty page, with the way back.
    r = await api.client.get("/enrollments/my-courses", params={"page": 9, "page_size": 4}, headers=student["headers"])
    assert r.json() == [] and _links(r.headers.get("link")) == {"prev": "?page=6&page_size=4"}

    # Only the caller's own.
    r = await api.client.get("/enrollments/my-courses", headers=other["headers"])
    assert [e["student_id"] for e in r.json()] == [other["id"]] and r.headers["x-total-count"] == "1"
    assert "link" not in r.headers
    assert (await api.client.get("/enrollments/my-courses")).status_code == 401


async def test_my_certificates_are_paged(api: Api, container: Any) -> None:
    teacher, student, other = await api.user("instructor"), await api.user(), await api.user()
    course = await api.course(teacher)
    enrollments = await _enrollments(container, student["id"], course["id"], 5)
    ids = await _certificates(container, student["id"], course["id"], enrollments)

    r = await api.client.get("/certificates/my", headers=student["headers"])
    assert r.status_code == 200 and len(r.json()) == 5 and r.headers["x-total-count"] == "5", r.text
    assert "link" not in r.headers  # all on the default page
    walked = await _walk(api, "/certificates/my", student["headers"], page_size=2)
    assert sorted(walked) == sorted(ids) and len(set(walked)) == 5

    r = await api.client.get("/certificates/my", headers=other["headers"])
    assert r.json() == [] and r.headers["x-total-count"] == "0"
    assert (await api.client.get("/certificates/my")).status_code == 401


async def test_materials_are_paged(api: Api, worker: object) -> None:
    teacher, student, outsider = await api.user("instructor"), await api.user(), await api.user()
    course = await api.course(teacher)
    cid = course["id"]
    mid = (await api.module(teacher, cid))["id"]
    await api.lesson(teacher, cid, mid)
    url = f"/courses/{cid}/materials"

    async def upload(name: str) -> str:
        r = await api.client.post(
            url, files={"file": (name, f"notes of {name}".encode(), "text/plain")}, headers=teacher["headers"]
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    live = [await upload(f"live-{i}.txt") for i in range(3)]
    r = await api.client.post(f"/courses/{cid}/publish", headers=teacher["headers"])
    assert (await api.wait_workflow(teacher, r.json()["workflow_id"], timeout=120))["status"] == "completed"
    later = [await upload(f"later-{i}.txt") for i in range(2)]

    # The owner: every material, the default page size in the body, the total in body and header.
    r = await api.client.get(url, headers=teacher["headers"])
    body = r.json()
    assert (body["total"], body["page"], body["page_size"], len(body["items"])) == (5, 1, 20, 5), r.text
    assert r.headers["x-total-count"] == "5" and "link" not in r.headers
    walked = await _walk(api, url, teacher["headers"], page_size=2)
    assert walked == [m["id"] for m in body["items"]] and sorted(walked) == sorted(live + later)
    r = await api.client.get(url, params={"page": 2, "page_size": 2}, headers=teacher["headers"])
    assert (r.json()["total"], r.json()["page"], r.json()["page_size"]) == (5, 2, 2)

    # An enrolled student: the live version's materials only, and the total counts those.
    r = await api.client.post("/enrollments", json={"course_id": cid}, headers=student["headers"])
    assert r.status_code in (200, 201, 202), r.text
    from tests.e2e.test_enrollment import wait_enrollment

    await wait_enrollment(api, student, r.json()["id"], "active")
    r = await api.client.get(url, params={"page_size": 2}, headers=student["headers"])
    assert r.json()["total"] == 3 and len(r.json()["items"]) == 2, r.text
    assert sorted(await _walk(api, url, student["headers"], page_size=2)) == sorted(live)

    # Someone not enrolled is refused as before, page parameters or not.
    for params in ({}, {"page": 2, "page_size": 1}):
        r = await api.client.get(url, params=params, headers=outsider["headers"])
        assert (r.status_code, r.json()["code"]) == (403, "not_enrolled"), r.text


@pytest.mark.parametrize("path", ["/enrollments/my-courses", "/certificates/my", "/courses/{cid}/materials"])
async def test_bad_page_parameters_are_422_naming_the_parameter(api: Api, path: str) -> None:
    teacher = await api.user("instructor")
    cid = (await api.course(teacher))["id"]
    for params, field in BAD_PARAMS:
        r = await api.client.get(path.format(cid=cid), params=params, headers=teacher["headers"])
        assert r.status_code == 422, (params, r.text)
        body = r.json()
        assert body["code"] == "validation_error" and [d["field"] for d in body["details"]] == [field], r.text
    # The same parameters as the catalogue's, which answers the same way.
    r = await api.client.get("/courses", params={"page_size": 101})
    assert (r.status_code, r.json()["code"], r.json()["details"][0]["field"]) == (422, "validation_error", "page_size")


async def test_the_openapi_document_declares_the_page_parameters(api: Api) -> None:
    doc = (await api.client.get("/openapi.json")).json()
    for path in ("/enrollments/my-courses", "/certificates/my", "/courses/{course_id}/materials", "/courses"):
        op = doc["paths"][path]["get"]
        params = {p["name"]: p["schema"] for p in op["parameters"] if p["in"] == "query"}
        assert params["page"]["minimum"] == 1 and params["page"]["default"] == 1, path
        size = params["page_size"]
        assert (size["minimum"], size["maximum"], size["default"]) == (1, 100, 20), path
    for path in ("/enrollments/my-courses", "/certificates/my", "/courses/{course_id}/materials"):
        assert set(doc["paths"][path]["get"]["responses"]["200"]["headers"]) == {"X-Total-Count", "Link"}
    material_list = doc["components"]["schemas"]["MaterialList"]
    assert set(material_list["required"]) == {"items", "total", "page", "page_size"}
