"""Issue #9.2/#9.5: materials follow enrollment and the live version; active content never renders; bad PDFs 422.
Listing and deleting materials: who sees which, and a deleted file leaves search and the next publish."""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

import pytest
from sqlalchemy import update

from smartcourse.errors import NotFound
from smartcourse.models import Course
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
        assert r.status_code == 403 and r.json()["code"] == "not_enrolled", r.text
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


async def test_a_name_of_many_bytes_is_stored_and_a_deleted_material_leaves_no_directory(
    api: Api, container: Any
) -> None:
    """explore27 F2: 63 emoji and ".txt" (256 bytes) answered 503 "retry shortly" for ever, leaving a temp file each
    time; F7: a deleted material's directory stayed behind, empty."""
    teacher = await api.user("instructor")
    course = await api.course(teacher)
    r = await _upload(api, teacher, course["id"], chr(0x1F600) * 63 + ".txt", b"smiles", "text/plain")
    assert r.status_code == 201, r.text
    material = r.json()
    assert material["filename"].endswith(".txt") and len(material["filename"].encode()) <= 240
    url = f"/courses/{course['id']}/materials/{material['id']}"
    r = await api.client.get(url, headers=teacher["headers"])
    assert r.status_code == 200 and r.content == b"smiles"
    assert "filename*=UTF-8''%F0%9F%98%80" in r.headers["content-disposition"]
    folder = container.settings.files_dir / "courses" / course["id"] / "materials" / material["id"]
    assert [p.name for p in folder.iterdir()] == [material["filename"]]  # the file, no temp file beside it
    assert (await api.client.delete(url, headers=teacher["headers"])).status_code == 204
    assert not folder.exists()


WRONG_TEXT = b"Quokkafluff is the secret word of the wrong handout. " * 3
KEPT_TEXT = b"Zanzibarite is the secret word of the right handout. " * 3


async def _search(api: Api, who: dict[str, Any], cid: str, q: str, mode: str) -> list[dict[str, Any]]:
    r = await api.client.get(f"/courses/{cid}/search", params={"q": q, "mode": mode}, headers=who["headers"])
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


async def _two_handouts(api: Api, teacher: dict[str, Any], title: str) -> tuple[str, Any, Any]:
    """A draft with one lesson and two text materials: (course id, the right handout, the wrong one)."""
    cid = (await api.course(teacher, title=f"{title} {uuid.uuid4().hex[:6]}"))["id"]
    module = await api.module(teacher, cid)
    await api.lesson(teacher, cid, module["id"])
    kept = (await _upload(api, teacher, cid, "right.txt", KEPT_TEXT, "text/plain")).json()
    wrong = (await _upload(api, teacher, cid, "wrong.txt", WRONG_TEXT, "text/plain")).json()
    return cid, kept, wrong


async def test_materials_are_listed_per_caller_and_a_deleted_one_leaves_search_and_the_next_publish(
    api: Api, worker: object, container: Any
) -> None:
    teacher, other_teacher = await api.user("instructor"), await api.user("instructor")
    student, outsider = await api.user(), await api.user()
    admin = await api.admin(container)
    cid, kept, wrong = await _two_handouts(api, teacher, "Handouts")
    listing = f"/courses/{cid}/materials"

    # A draft: its owner and admins list it; to anyone else the course does not exist.
    r = await api.client.get(listing, headers=teacher["headers"])
    assert r.status_code == 200 and [m["published"] for m in r.json()["items"]] == [False, False], r.text
    for who in (other_teacher, outsider):
        r = await api.client.get(listing, headers=who["headers"])
        assert r.status_code == 404 and r.json()["code"] == "course_not_found", r.text
        r = await api.client.delete(f"{listing}/{wrong['id']}", headers=who["headers"])
        assert r.status_code == 404 and r.json()["code"] == "course_not_found", r.text

    r = await api.client.post(f"/courses/{cid}/publish", headers=teacher["headers"])
    assert (await api.wait_workflow(teacher, r.json()["workflow_id"]))["status"] == "completed"
    late = (await _upload(api, teacher, cid, "late.md", b"# Late\n\nafter the publish", "text/markdown")).json()

    # Owner and admin: every material, with what the published version holds.
    for who in (teacher, admin):
        r = await api.client.get(listing, headers=who["headers"])
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        assert [(m["id"], m["published"]) for m in items] == [
            (kept["id"], True),
            (wrong["id"], True),
            (late["id"], False),
        ]
        assert items[1]["filename"] == "wrong.txt" and items[1]["content_type"] == "text/plain"
        assert items[1]["size"] == len(WRONG_TEXT) and items[1]["created_at"] == wrong["created_at"]
    # Not enrolled: refused as the downloads are; anonymous: 401.
    for who in (outsider, other_teacher):
        r = await api.client.get(listing, headers=who["headers"])
        assert r.status_code == 403 and r.json()["code"] == "not_enrolled", r.text
    assert (await api.client.get(listing)).status_code == 401
    # Enrolled: the live version's materials, exactly those the student may download.
    r = await api.client.post("/enrollments", json={"course_id": cid}, headers=student["headers"])
    assert r.status_code in (201, 202), r.text
    r = await api.client.get(listing, headers=student["headers"])
    assert r.status_code == 200 and [m["id"] for m in r.json()["items"]] == [kept["id"], wrong["id"]], r.text
    assert all(m["published"] for m in r.json()["items"])

    # The wrong file is found by search and by the catalogue before it is deleted.
    for mode in ("keyword", "hybrid"):
        assert any(h["source"]["id"] == wrong["id"] for h in await _search(api, student, cid, "quokkafluff", mode))
    r = await api.client.get("/search", params={"q": "quokkafluff"})
    assert cid in [c["id"] for c in r.json()["items"]], r.text

    # Only the owner and admins delete; to others it is 403 on a live course, 401 anonymous.
    for who in (student, outsider, other_teacher):
        r = await api.client.delete(f"{listing}/{wrong['id']}", headers=who["headers"])
        assert r.status_code == 403 and r.json()["code"] == "not_course_owner", r.text
    assert (await api.client.delete(f"{listing}/{wrong['id']}")).status_code == 401
    other_course = await api.course(teacher)
    for mid in (
        str(uuid.uuid4()),
        (await _upload(api, teacher, other_course["id"], "o.txt", b"o", "text/plain")).json()["id"],
    ):
        r = await api.client.delete(f"{listing}/{mid}", headers=teacher["headers"])
        assert r.status_code == 404 and r.json()["code"] == "material_not_found", r.text

    r = await api.client.delete(f"{listing}/{wrong['id']}", headers=teacher["headers"])
    assert r.status_code == 204, r.text
    # Gone from every list and download, and from the file store.
    for who, expected in (
        (teacher, [kept["id"], late["id"]]),
        (admin, [kept["id"], late["id"]]),
        (student, [kept["id"]]),
    ):
        r = await api.client.get(listing, headers=who["headers"])
        assert [m["id"] for m in r.json()["items"]] == expected, r.text
    for who in (teacher, student):
        r = await api.client.get(f"{listing}/{wrong['id']}", headers=who["headers"])
        assert r.status_code == 404 and r.json()["code"] == "material_not_found", r.text
    with pytest.raises(NotFound):
        await container.files.get(f"courses/{cid}/materials/{wrong['id']}/wrong.txt")
    # Gone from the live index at once (course search, which the assistant retrieves through) and the catalogue.
    for mode in ("keyword", "hybrid", "vector"):
        hits = await _search(api, student, cid, "quokkafluff secret word wrong handout", mode)
        assert wrong["id"] not in {h["source"]["id"] for h in hits}, (mode, hits)
    assert any(h["source"]["id"] == kept["id"] for h in await _search(api, student, cid, "zanzibarite", "keyword"))
    r = await api.client.get("/search", params={"q": "quokkafluff"})
    assert cid not in [c["id"] for c in r.json()["items"]], r.text
    r = await api.client.delete(f"{listing}/{wrong['id']}", headers=teacher["headers"])
    assert r.status_code == 404 and r.json()["code"] == "material_not_found"

    # The next publish reads the two remaining materials only.
    r = await api.client.post(f"/courses/{cid}/publish", headers=teacher["headers"])
    run = await api.wait_workflow(teacher, r.json()["workflow_id"])
    assert run["status"] == "completed", run
    extract = next(s for s in run["steps"] if s["name"] == "extract")
    assert extract["detail"]["materials"] == 2 and extract["detail"]["skipped"] == [], extract
    r = await api.client.get(listing, headers=student["headers"])
    assert [m["id"] for m in r.json()["items"]] == [kept["id"], late["id"]], r.text
    assert await _search(api, student, cid, "quokkafluff", "keyword") == []


async def test_a_deleted_material_leaves_the_search_of_a_process_whose_index_handle_is_stale(
    api: Api, worker: object, container: Any
) -> None:
    """Another API process holds a cached LanceDB handle that sees the deletion only after its refresh interval:
    its search drops the material's passages at once all the same (`search._without_deleted_materials`)."""
    from types import SimpleNamespace

    from smartcourse.adapters.lance_index import LanceVectorIndex
    from smartcourse.services import search

    teacher, student = await api.user("instructor"), await api.user()
    cid, kept, wrong = await _two_handouts(api, teacher, "Stale")
    r = await api.client.post(f"/courses/{cid}/publish", headers=teacher["headers"])
    assert (await api.wait_workflow(teacher, r.json()["workflow_id"]))["status"] == "completed"
    r = await api.client.post("/enrollments", json={"course_id": cid}, headers=student["headers"])
    assert r.status_code in (201, 202), r.text

    live = container.vector_index()
    stale = LanceVectorIndex(
        live.uri, dimensions=live.dimensions, storage_options=live.storage_options, refresh_seconds=None
    )
    other_process = SimpleNamespace(vector_index=lambda: stale, embedder=container.embedder, uow=container.uow)
    version = (await api.client.get(f"/courses/{cid}", headers=teacher["headers"])).json()["index_version"]

    async def sources(index_owner: Any, q: str) -> set[str]:
        found = await search.retrieve_version(index_owner, course_id=uuid.UUID(cid), version=version, query=q, k=8)
        return {h.chunk.source_id for h in found.hits}

    assert wrong["id"] in await sources(other_process, "quokkafluff secret word")  # its handle is now cached
    r = await api.client.delete(f"/courses/{cid}/materials/{wrong['id']}", headers=teacher["headers"])
    assert r.status_code == 204, r.text
    # The stale handle still holds the rows (what LanceDB alone would answer for up to REFRESH_SECONDS) ...
    raw = await stale.search(cid, version, query="quokkafluff secret word", vector=None, k=8, mode="keyword")
    assert wrong["id"] in {h.chunk.source_id for h in raw}
    # ... and the search through it drops them, keeping the other material's.
    for q in ("quokkafluff secret word", "secret word handout"):
        assert wrong["id"] not in await sources(other_process, q), q
    assert kept["id"] in await sources(other_process, "zanzibarite secret word")


async def test_a_material_is_not_deleted_while_a_publish_runs(api: Api, container: Any) -> None:
    teacher = await api.user("instructor")
    course = await api.course(teacher)
    cid = course["id"]
    material = (await _upload(api, teacher, cid, "n.txt", b"notes", "text/plain")).json()
    async with container.uow() as uow:  # as request_publish leaves it while the workflow runs
        await uow.session.execute(
            update(Course).where(Course.id == uuid.UUID(cid)).values(status="publishing", publish_workflow_id="wf-x")
        )
        await uow.commit()
    try:
        r = await api.client.delete(f"/courses/{cid}/materials/{material['id']}", headers=teacher["headers"])
        assert r.status_code == 409 and r.json()["code"] == "publish_in_progress", r.text
        assert r.json()["details"] == {"workflow_id": "wf-x"}
    finally:
        async with container.uow() as uow:
            await uow.session.execute(update(Course).where(Course.id == uuid.UUID(cid)).values(status="draft"))
            await uow.commit()
    r = await api.client.delete(f"/courses/{cid}/materials/{material['id']}", headers=teacher["headers"])
    assert r.status_code == 204, r.text  # a draft: no index to touch
    assert (await api.client.get(f"/courses/{cid}/materials", headers=teacher["headers"])).json()["items"] == []


async def test_a_deletion_opens_the_vector_index_only_for_a_course_with_a_live_index(
    api: Api, container: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening the index loads LanceDB and the embedder: the refusals and a course without an index never need it
    (in AWS, where `delete_material` once opened it before checking anything, every request answered 500)."""
    opened: list[str] = []

    def no_index() -> Any:
        opened.append("vector_index")
        raise RuntimeError("the vector index must not be opened here")

    monkeypatch.setattr(container, "vector_index", no_index)
    teacher, other_teacher = await api.user("instructor"), await api.user("instructor")
    cid = (await api.course(teacher))["id"]
    material = (await _upload(api, teacher, cid, "n.txt", b"notes", "text/plain")).json()
    cases = [
        (f"/courses/{uuid.uuid4()}/materials/{material['id']}", teacher, 404, "course_not_found"),
        (f"/courses/{cid}/materials/{uuid.uuid4()}", teacher, 404, "material_not_found"),
        (f"/courses/{cid}/materials/{material['id']}", other_teacher, 404, "course_not_found"),  # a draft's
    ]
    for path, who, status, code in cases:
        r = await api.client.delete(path, headers=who["headers"])
        assert r.status_code == status and r.json()["code"] == code, (path, r.text)
    r = await api.client.delete(f"/courses/{cid}/materials/{material['id']}", headers=teacher["headers"])
    assert r.status_code == 204, r.text  # a draft has no index: deleted without opening one
    assert opened == []


async def test_concurrent_deletes_of_one_material_answer_204_once(
    api: Api, container: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ten DELETEs of the same material at once, all past their read of it before any deletes: one deletes it
    (204), the others find it gone (404)."""
    teacher = await api.user("instructor")
    cid = (await api.course(teacher))["id"]
    material = (await _upload(api, teacher, cid, "n.txt", b"notes", "text/plain")).json()
    path = f"/courses/{cid}/materials/{material['id']}"
    everyone_read = asyncio.Barrier(10)
    read = container.documents.get

    async def get_then_wait(collection: str, doc_id: str) -> Any:
        doc = await read(collection, doc_id)
        if doc_id == material["id"]:
            await asyncio.wait_for(everyone_read.wait(), 10)
        return doc

    monkeypatch.setattr(container.documents, "get", get_then_wait)
    answers = await asyncio.gather(*(api.client.delete(path, headers=teacher["headers"]) for _ in range(10)))
    codes = sorted(r.status_code for r in answers)
    assert codes == [204] + [404] * 9, [(r.status_code, r.text) for r in answers]
    assert all(r.json()["code"] == "material_not_found" for r in answers if r.status_code == 404)
    assert (await api.client.get(f"/courses/{cid}/materials", headers=teacher["headers"])).json()["items"] == []


async def test_an_upload_without_a_file_name_is_422_invalid_filename(api: Api) -> None:
    """A part with an empty or no filename was 422 "Expected UploadFile, received: <class 'str'>" (httpx and
    requests leave an empty name out, so the part is a text field): a clear code and message instead."""
    teacher = await api.user("instructor")
    course = await api.course(teacher)
    r = await _upload(api, teacher, course["id"], "", b"some notes", "text/plain")  # no filename= at all
    assert r.status_code == 422 and r.json()["code"] == "invalid_filename", r.text
    assert r.json()["message"].startswith("the upload needs a file name") and "filename=" in r.json()["message"]
    raw = b'--b\r\nContent-Disposition: form-data; name="file"; filename=""\r\n\r\nsome notes\r\n--b--\r\n'
    r = await api.client.post(
        f"/courses/{course['id']}/materials",
        content=raw,
        headers={**teacher["headers"], "content-type": "multipart/form-data; boundary=b"},
    )
    assert r.status_code == 422 and r.json()["code"] == "invalid_filename", r.text
    assert (await _upload(api, teacher, course["id"], "notes.txt", b"some notes", "text/plain")).status_code == 201


async def test_an_upload_of_two_files_is_refused_not_cut_to_the_last(api: Api) -> None:
    teacher = await api.user("instructor")
    course = await api.course(teacher)
    r = await api.client.post(
        f"/courses/{course['id']}/materials",
        files=[("file", ("a.md", b"# A", "text/markdown")), ("file", ("b.md", b"# B", "text/markdown"))],
        headers=teacher["headers"],
    )
    assert r.status_code == 422 and r.json()["code"] == "too_many_files", r.text
    assert r.json()["details"] == {"files": 2}
    r = await api.client.get(f"/courses/{course['id']}/materials", headers=teacher["headers"])
    assert r.json()["items"] == [], r.text  # nothing half-written


async def test_a_refused_upload_is_answered_before_its_body_is_read(api: Api) -> None:
    """explore27: FastAPI read a form body (up to 21 MiB) before the route's checks ran, so an anonymous or
    unauthorised upload was read whole, and spooled to disk, before its 401/403/404. The checks come first now."""
    teacher, other_teacher, student = await api.user("instructor"), await api.user("instructor"), await api.user()
    draft = await api.course(teacher)
    archived = await api.course(teacher)
    r = await api.client.delete(f"/courses/{archived['id']}", headers=teacher["headers"])
    assert r.status_code == 200, r.text
    chunk, pulled = b"x" * (1 << 20), []

    async def twenty_mib() -> Any:
        for _ in range(20):
            pulled.append(len(chunk))
            yield chunk

    multipart = {"content-type": "multipart/form-data; boundary=b"}
    cases = [
        ({}, draft["id"], 401, "not_authenticated"),
        ({"authorization": "Bearer not-a-token"}, draft["id"], 401, "invalid_token"),
        (other_teacher["headers"], draft["id"], 404, "course_not_found"),  # another's draft is not revealed
        (student["headers"], draft["id"], 404, "course_not_found"),
        (teacher["headers"], str(uuid.uuid4()), 404, "course_not_found"),
        (teacher["headers"], archived["id"], 409, "course_archived"),
    ]
    for headers, cid, status, code in cases:
        pulled.clear()
        r = await api.client.post(f"/courses/{cid}/materials", content=twenty_mib(), headers={**headers, **multipart})
        assert (r.status_code, r.json()["code"]) == (status, code), r.text
        assert pulled == [], f"{code}: {sum(pulled)} bytes of the body were read before the answer"
    # The form's own mistakes are answered as before, once the upload may be made.
    url = f"/courses/{draft['id']}/materials"
    r = await api.client.post(url, data={"lesson_id": "not-a-uuid"}, headers=teacher["headers"])
    assert r.status_code == 422 and r.json()["code"] == "validation_error", r.text
    assert {f["field"] for f in r.json()["details"]} == {"file", "lesson_id"}, r.text
    # A body that is not a form: 415, as a JSON endpoint answers a form (explore35 F5: 422 "file: Field required").
    r = await api.client.post(url, json={"file": "notes.txt"}, headers=teacher["headers"])
    assert r.status_code == 415 and r.json()["code"] == "unsupported_media_type", r.text
    r = await api.client.post(
        url, files={"file": ("n.md", b"# N", "text/markdown")}, data={"lesson_id": ""}, headers=teacher["headers"]
    )
    assert r.status_code == 201 and r.json()["lesson_id"] is None, r.text  # an empty field is "not sent"
    # `lesson_id` in the query string is read, not ignored (explore35 F4: the file went course-wide unannounced).
    handout = {"file": ("q.md", b"# Q", "text/markdown")}
    r = await api.client.post(url, files=handout, params={"lesson_id": "not-a-uuid"}, headers=teacher["headers"])
    assert r.status_code == 422 and {f["field"] for f in r.json()["details"]} == {"lesson_id"}, r.text
    r = await api.client.post(url, files=handout, params={"lesson_id": str(uuid.uuid4())}, headers=teacher["headers"])
    assert r.status_code == 404, r.text
    r = await api.client.post(
        url,
        files=handout,
        data={"lesson_id": str(uuid.uuid4())},
        params={"lesson_id": str(uuid.uuid4())},
        headers=teacher["headers"],
    )
    assert (r.status_code, r.json()["code"]) == (422, "invalid_field"), r.text
    # A field the form does not take is named, as a JSON body's (explore44 F4: a misspelled `lessonid` sent the
    # handout course-wide with a 201).
    r = await api.client.post(
        url, files=handout, data={"lessonid": str(uuid.uuid4()), "zzz": "1"}, headers=teacher["headers"]
    )
    assert (r.status_code, r.json()["code"]) == (422, "validation_error"), r.text
    assert [(f["field"], f["type"]) for f in r.json()["details"]] == [
        ("lessonid", "extra_forbidden"),
        ("zzz", "extra_forbidden"),
    ], r.text
    # ... and so is a query parameter other than `lesson_id`, which is read there too (explore45 F4); `lesson_id` given
    # twice in the form is refused, not the last one taken.
    r = await api.client.post(url, files=handout, params={"lessonid": str(uuid.uuid4())}, headers=teacher["headers"])
    assert (r.status_code, r.json()["details"][0]["field"]) == (422, "lessonid"), r.text
    r = await api.client.post(
        url, files=handout, data={"lesson_id": [str(uuid.uuid4()), str(uuid.uuid4())]}, headers=teacher["headers"]
    )
    assert (r.status_code, r.json()["code"]) == (422, "invalid_field"), r.text


async def test_the_same_file_twice_in_a_course_is_refused_naming_the_first(api: Api) -> None:
    """explore27: a second upload of the same bytes made a second material (indexed again: search and the
    assistant quoting one passage twice), and a client retrying an upload whose answer it lost added a copy each
    time. 409 `duplicate_material` names the material that has them; two at once record one. The same file for a
    lesson, or in another course, is a material of its own."""
    teacher = await api.user("instructor")
    course, other = await api.course(teacher), await api.course(teacher)
    cid = course["id"]
    module = await api.module(teacher, cid)
    lesson = await api.lesson(teacher, cid, module["id"])
    first = await _upload(api, teacher, cid, "notes.md", b"# Notes\nthe same bytes", "text/markdown")
    assert first.status_code == 201, first.text
    again = await _upload(api, teacher, cid, "renamed.md", b"# Notes\nthe same bytes", "text/markdown")
    assert again.status_code == 409 and again.json()["code"] == "duplicate_material", again.text
    assert again.json()["details"] == {"material_id": first.json()["id"], "filename": "notes.md", "lesson_id": None}
    # Other bytes, the same bytes for a lesson (once) or in another course: a material of their own.
    for _ in range(2):
        r = await api.client.post(
            f"/courses/{cid}/materials",
            files={"file": ("notes.md", b"# Notes\nthe same bytes", "text/markdown")},
            data={"lesson_id": lesson["id"]},
            headers=teacher["headers"],
        )
    assert r.status_code == 409 and r.json()["details"]["lesson_id"] == lesson["id"], r.text
    assert "of this lesson" in r.json()["message"]
    assert (await _upload(api, teacher, cid, "notes.md", b"# Notes\nother bytes", "text/markdown")).status_code == 201
    assert (
        await _upload(api, teacher, other["id"], "n.md", b"# Notes\nthe same bytes", "text/markdown")
    ).status_code == 201
    # Deleted, the file may come back.
    r = await api.client.delete(f"/courses/{cid}/materials/{first.json()['id']}", headers=teacher["headers"])
    assert r.status_code == 204, r.text
    assert (
        await _upload(api, teacher, cid, "notes.md", b"# Notes\nthe same bytes", "text/markdown")
    ).status_code == 201
    # Eight uploads of one new file at once: one material, seven refusals naming it.
    data = f"# Raced\n{uuid.uuid4()}".encode()
    answers = await asyncio.gather(*(_upload(api, teacher, cid, f"r{i}.md", data, "text/markdown") for i in range(8)))
    codes = sorted(r.status_code for r in answers)
    assert codes == [201] + [409] * 7, [(r.status_code, r.text) for r in answers]
    made = next(r.json() for r in answers if r.status_code == 201)
    assert {r.json()["details"]["material_id"] for r in answers if r.status_code == 409} == {made["id"]}
    listed = (await api.client.get(f"/courses/{cid}/materials", headers=teacher["headers"])).json()["items"]
    # The other bytes, the lesson's copy, the one uploaded again after the deletion, and the raced one.
    assert sorted(m["filename"] for m in listed) == sorted(["notes.md"] * 3 + [made["filename"]]), listed


async def test_a_deleted_lesson_leaves_its_materials_to_the_course(api: Api) -> None:
    """A material attached to a lesson that is deleted (alone or with its module) named a lesson no version has,
    which an upload naming it is refused for: it becomes the course's own (`lesson_id` null)."""
    teacher = await api.user("instructor")
    cid = (await api.course(teacher))["id"]
    module = await api.module(teacher, cid)
    other = await api.module(teacher, cid, "Other")
    lesson = await api.lesson(teacher, cid, module["id"])
    doomed_module_lesson = await api.lesson(teacher, cid, other["id"])
    kept = await api.lesson(teacher, cid, module["id"], title="Kept", type="text", content="Kept.")
    ids = {}
    for name, lesson_id in (("a.md", lesson["id"]), ("b.md", doomed_module_lesson["id"]), ("c.md", kept["id"])):
        r = await api.client.post(
            f"/courses/{cid}/materials",
            files={"file": (name, b"# Notes", "text/markdown")},
            data={"lesson_id": lesson_id},
            headers=teacher["headers"],
        )
        assert r.status_code == 201 and r.json()["lesson_id"] == lesson_id, r.text
        ids[name] = r.json()["id"]
    r = await api.client.delete(
        f"/courses/{cid}/modules/{module['id']}/lessons/{lesson['id']}", headers=teacher["headers"]
    )
    assert r.status_code == 204, r.text
    r = await api.client.delete(f"/courses/{cid}/modules/{other['id']}", headers=teacher["headers"])
    assert r.status_code == 204, r.text
    listed = (await api.client.get(f"/courses/{cid}/materials", headers=teacher["headers"])).json()["items"]
    assert {m["id"]: m["lesson_id"] for m in listed} == {ids["a.md"]: None, ids["b.md"]: None, ids["c.md"]: kept["id"]}
    # explore29 F3: the owner sees which lesson each one left, not a handout silently turned course-wide.
    assert {m["id"]: m["detached_from"] for m in listed} == {
        ids["a.md"]: {"lesson_id": lesson["id"], "title": lesson["title"]},
        ids["b.md"]: {"lesson_id": doomed_module_lesson["id"], "title": doomed_module_lesson["title"]},
        ids["c.md"]: None,
    }


async def test_students_see_a_live_materials_lesson_until_the_republish(api: Api, worker: object) -> None:
    """explore74 F1: the instructor deleted a lesson in the working copy, not republished; its students, who still
    follow that lesson, saw its handout listed as the course's own (the working copy's `lesson_id`)."""
    teacher, student = await api.user("instructor"), await api.user()
    cid = (await api.course(teacher))["id"]
    module = await api.module(teacher, cid)
    lesson = await api.lesson(teacher, cid, module["id"])
    await api.lesson(teacher, cid, module["id"], title="Kept", type="text", content="Kept.")
    r = await api.client.post(
        f"/courses/{cid}/materials",
        files={"file": ("guide.md", b"# Guide", "text/markdown")},
        data={"lesson_id": lesson["id"]},
        headers=teacher["headers"],
    )
    assert r.status_code == 201, r.text
    handout = r.json()["id"]
    r = await api.client.post(f"/courses/{cid}/publish", headers=teacher["headers"])
    assert (await api.wait_workflow(teacher, r.json()["workflow_id"]))["status"] == "completed"
    r = await api.client.post("/enrollments", json={"course_id": cid}, headers=student["headers"])
    assert r.status_code in (201, 202), r.text
    r = await api.client.delete(
        f"/courses/{cid}/modules/{module['id']}/lessons/{lesson['id']}", headers=teacher["headers"]
    )
    assert r.status_code == 204, r.text

    def attached(who: dict[str, Any]) -> Any:
        return api.client.get(f"/courses/{cid}/materials", headers=who["headers"])

    assert {m["id"]: m["lesson_id"] for m in (await attached(student)).json()["items"]} == {handout: lesson["id"]}
    assert {m["id"]: m["lesson_id"] for m in (await attached(teacher)).json()["items"]} == {handout: None}
    r = await api.client.post(f"/courses/{cid}/publish", headers=teacher["headers"])
    assert (await api.wait_workflow(teacher, r.json()["workflow_id"]))["status"] == "completed"
    assert {m["id"]: m["lesson_id"] for m in (await attached(student)).json()["items"]} == {handout: None}


async def test_an_upload_racing_an_archive_or_its_lessons_deletion_is_refused_not_recorded(
    api: Api, container: Any
) -> None:
    """explore19 F3, F4: an upload checked the course and the lesson, then (a large PDF's checks take a while)
    recorded the material after the course was archived, or attached it to a lesson deleted meanwhile, for good.
    Here the archive and the deletion come while the file is being stored, after the first checks."""
    teacher = await api.user("instructor")
    course = await api.course(teacher)
    cid = course["id"]
    module = await api.module(teacher, cid)
    lesson = await api.lesson(teacher, cid, module["id"])
    real = container.files
    meanwhile: list[Any] = []

    class Interleaved:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        async def put(self, key: str, data: bytes, content_type: str) -> None:
            await real.put(key, data, content_type)
            if meanwhile:
                await meanwhile.pop()()

    async def delete_the_lesson() -> None:
        r = await api.client.delete(
            f"/courses/{cid}/modules/{module['id']}/lessons/{lesson['id']}", headers=teacher["headers"]
        )
        assert r.status_code == 204, r.text

    async def archive() -> None:
        assert (await api.client.delete(f"/courses/{cid}", headers=teacher["headers"])).status_code == 200

    container.files = Interleaved()
    try:
        meanwhile.append(delete_the_lesson)
        r = await api.client.post(
            f"/courses/{cid}/materials",
            data={"lesson_id": lesson["id"]},
            files={"file": ("notes.md", b"# Notes\nTides.", "text/markdown")},
            headers=teacher["headers"],
        )
        assert r.status_code == 404 and r.json()["code"] == "lesson_not_found", r.text
        meanwhile.append(archive)
        r = await _upload(api, teacher, cid, "notes.md", b"# Notes\nTides.", "text/markdown")
        assert r.status_code == 409 and r.json()["code"] == "course_archived", r.text
    finally:
        container.files = real
    listed = (await api.client.get(f"/courses/{cid}/materials", headers=teacher["headers"])).json()
    assert listed["items"] == [], listed
