"""Issue #9.2/#9.5: materials follow enrollment and the live version; active content never renders; bad PDFs 422."""

from __future__ import annotations

import os
from typing import Any

from tests.conftest import Api
from tests.unit.test_security_uploads import GOOD, build_pdf

SCRIPT_HTML = b"<html><body><script>fetch('/auth/me')</script>hi</body></html>"


async def _upload(api: Api, owner: dict[str, Any], cid: str, name: str, data: bytes, ctype: str) -> Any:
    return await api.client.post(
        f"/courses/{cid}/materials", files={"file": (name, data, ctype)}, headers=owner["headers"]
    )


async def test_material_access_follows_enrollment_and_the_live_version(
    api: Api, worker: object, container: Any
) -> None:
    teacher, other_teacher = await api.user("instructor"), await api.user("instructor")
    student, outsider = await api.user(), await api.user()
    admin = await api.admin(container)
    course = await api.course(teacher)
    cid = course["id"]
    module = await api.module(teacher, cid)
    await api.lesson(teacher, cid, module["id"])
    pdf = build_pdf(GOOD)
    published = (await _upload(api, teacher, cid, "notes.pdf", pdf, "application/pdf")).json()
    page = (await _upload(api, teacher, cid, "page.html", SCRIPT_HTML, "text/html")).json()
    r = await api.client.post(f"/courses/{cid}/publish", headers=teacher["headers"])
    assert (await api.wait_workflow(teacher, r.json()["workflow_id"]))["status"] == "completed"
    late = await _upload(api, teacher, cid, "draft.txt", b"not yet published", "text/plain")
    assert late.status_code == 201
    late_id = late.json()["id"]

    def url(mid: str) -> str:
        return f"/courses/{cid}/materials/{mid}"

    # Logged in but not enrolled (student or another instructor): no files.
    for who in (outsider, other_teacher):
        r = await api.client.get(url(published["id"]), headers=who["headers"])
        assert r.status_code == 403 and r.json()["code"] == "enrollment_required", r.text
    assert (await api.client.get(url(published["id"]))).status_code == 401

    r = await api.client.post("/enrollments", json={"course_id": cid}, headers=student["headers"])
    assert r.status_code in (201, 202), r.text
    r = await api.client.get(url(published["id"]), headers=student["headers"])
    assert r.status_code == 200 and r.content == pdf
    # Uploaded after publishing: part of the working copy only, until the next publish.
    r = await api.client.get(url(late_id), headers=student["headers"])
    assert r.status_code == 404 and r.json()["code"] == "material_not_found"
    for who in (teacher, admin):
        assert (await api.client.get(url(late_id), headers=who["headers"])).status_code == 200

    # HTML with a script is a download, never a page of this origin.
    r = await api.client.get(url(page["id"]), headers=student["headers"])
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-disposition"].startswith("attachment;")
    assert r.headers["x-content-type-options"] == "nosniff"


async def test_hostile_pdf_upload_is_422_invalid_pdf(api: Api) -> None:
    teacher = await api.user("instructor")
    course = await api.course(teacher)
    looping = build_pdf({1: "<< /Type /Catalog /Pages 2 0 R >>", 2: "<< /Type /Pages /Kids [2 0 R] /Count 1 >>"})
    for data in (build_pdf(GOOD, root="42"), looping):
        r = await _upload(api, teacher, course["id"], "evil.pdf", data, "application/pdf")
        assert r.status_code == 422 and r.json()["code"] == "invalid_pdf", r.text
    r = await _upload(api, teacher, course["id"], "fine.pdf", build_pdf(GOOD), "application/pdf")
    assert r.status_code == 201, r.text


async def test_hostile_pdf_upload_without_the_header_is_422_invalid_pdf_too(api: Api) -> None:
    """Not a PDF at all (random bytes named .pdf) is answered like a PDF pypdf cannot open: 422 `invalid_pdf`."""
    teacher = await api.user("instructor")
    course = await api.course(teacher)
    for data in (os.urandom(4096).replace(b"%PDF-", b"xxxxx"), b"not a pdf", b"\x00" * 64):
        r = await _upload(api, teacher, course["id"], "x.pdf", data, "application/pdf")
        assert r.status_code == 422 and r.json()["code"] == "invalid_pdf", r.text
        assert "%PDF-" in r.json()["message"]
    r = await _upload(api, teacher, course["id"], "x.exe", b"MZ", "application/octet-stream")
    assert r.status_code == 415 and r.json()["code"] == "unsupported_media_type", r.text  # a type we do not take


async def test_a_long_file_name_is_shortened_keeping_its_type(api: Api) -> None:
    teacher = await api.user("instructor")
    course = await api.course(teacher)
    r = await _upload(api, teacher, course["id"], "a" * 300 + ".txt", b"some notes", "text/plain")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["content_type"] == "text/plain"
    assert body["filename"] == "a" * 196 + ".txt" and len(body["filename"]) == 200
    r = await api.client.get(f"/courses/{course['id']}/materials/{body['id']}", headers=teacher["headers"])
    assert r.status_code == 200 and r.content == b"some notes"
