"""Course materials: uploads into the file store, metadata in the document store; listing, download, deletion."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select

from smartcourse.adapters.documents import DocumentStore
from smartcourse.adapters.files import FileStore
from smartcourse.db import UnitOfWork
from smartcourse.domain import courses as rules
from smartcourse.domain.materials import (
    MAX_PDF_PAGES,
    attachment_disposition,
    detect_content_type,
    file_too_large,
    safe_filename,
)
from smartcourse.errors import Conflict, DomainError, Invalid, NotFound, TooLarge
from smartcourse.models import ContentChunk, Course, Lesson
from smartcourse.ports import VectorIndex
from smartcourse.schemas import MaterialItem, MaterialList, MaterialPublic
from smartcourse.security import Principal
from smartcourse.services.courses import MATERIALS, VERSIONS, ensure_course_owner, load_course, version_doc_id
from smartcourse.services.search import can_read_content, refuse_not_enrolled

log = logging.getLogger(__name__)

# Types a browser would run or render as a page: always downloaded, never displayed inline.
ACTIVE_TYPES = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "image/svg+xml",
        "text/xml",
        "application/xml",
        "text/javascript",
        "application/javascript",
        "application/x-shockwave-flash",
    }
)


MAX_PAGE_TREE_DEPTH = 32
PDF_CHECK_SECONDS = 10.0


def check_pdf(data: bytes) -> int:
    """Parse `data` with pypdf and walk its page tree, bounded; the page count, or 422 `invalid_pdf` (422
    `encrypted_pdf` for one that needs a password to open: nothing could read it at publish either).

    Refuses what a reader would choke on later: a catalog (/Root) that is not a dictionary, a page tree
    that loops back on itself or is absurdly deep or large, a document pypdf cannot read.
    """
    from pypdf import PdfReader
    from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject

    def invalid(why: str) -> Invalid:
        return Invalid(f"the file is not a valid PDF: {why}", code="invalid_pdf")

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):  # an owner-password-only PDF opens with ""
            raise Invalid(
                "the PDF is password-protected: save it without a password to open it (or export it again), then "
                "upload that file",
                code="encrypted_pdf",
            )
        root = reader.trailer.get("/Root")
        root = root.get_object() if root is not None else None
        if not isinstance(root, DictionaryObject):
            raise invalid("its catalog (/Root) is not a dictionary")
        top = root.get("/Pages")
        pages = 0
        seen: set[tuple[int, int]] = set()
        stack: list[tuple[Any, int]] = [(top, 0)]
        while stack:
            ref, depth = stack.pop()
            if isinstance(ref, IndirectObject):
                ident = (ref.idnum, ref.generation)
                if ident in seen:
                    raise invalid("its page tree refers back to itself")
                seen.add(ident)
            node = ref.get_object() if ref is not None else None
            if not isinstance(node, DictionaryObject):
                raise invalid("a page tree node is not a dictionary")
            if depth > MAX_PAGE_TREE_DEPTH:
                raise invalid("its page tree is too deep")
            kind = node.get("/Type")
            kids = node.get("/Kids")
            if kind == "/Page" or (kind is None and kids is None):
                pages += 1
                if pages > MAX_PDF_PAGES:
                    raise invalid(f"it has more than {MAX_PDF_PAGES} pages")
                continue
            kids = kids.get_object() if kids is not None else None
            if not isinstance(kids, ArrayObject):
                raise invalid("a page tree node has no /Kids array")
            if len(kids) > MAX_PDF_PAGES:
                raise invalid(f"it has more than {MAX_PDF_PAGES} pages")
            stack.extend((kid, depth + 1) for kid in kids)
        if pages == 0:
            raise invalid("it has no pages")
        return pages
    except Invalid:
        raise
    except RecursionError as exc:
        raise invalid("its structure nests too deeply") from exc
    except Exception as exc:  # pypdf raises many types on hostile input (PdfReadError, KeyError, ValueError...)
        raise invalid("pypdf could not read it") from exc


async def validate_pdf(data: bytes) -> int:
    """check_pdf in a thread, bounded in time (the event loop keeps serving meanwhile)."""
    try:
        return await asyncio.wait_for(asyncio.to_thread(check_pdf, data), PDF_CHECK_SECONDS)
    except TimeoutError as exc:
        raise Invalid("the PDF took too long to read", code="invalid_pdf") from exc


def _public(doc: dict[str, Any]) -> MaterialPublic:
    return MaterialPublic.model_validate(doc)


async def may_upload(uow: UnitOfWork, principal: Principal, course_id: uuid.UUID) -> Course:
    """The checks an upload passes before its body is read: the course exists and `principal` may change it (404 /
    403 as `GET /courses/{id}` would answer), and it is not archived (409). The API asks them first, so a refused
    upload costs no read of a file of up to `MAX_UPLOAD_BYTES`; `upload_material` asks them again."""
    course = await load_course(uow, course_id)
    await ensure_course_owner(uow, principal, course)  # another's draft: 404, as GET /courses/{id} answers
    if course.status == "archived":
        raise Conflict("the course is archived", code="course_archived")
    return course


def _duplicate_lock(where: dict[str, str | None]) -> int:
    """pg_advisory_xact_lock key of "this content in this place": two uploads of the same file take turns."""
    key = f"material:{where['course_id']}:{where['lesson_id']}:{where['sha256']}"
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)


async def refuse_duplicate(
    uow: UnitOfWork, documents: DocumentStore, course_id: uuid.UUID, lesson_id: uuid.UUID | None, digest: str
) -> None:
    """The same bytes twice in one place (the course itself, or one lesson) are refused, 409 `duplicate_material`
    naming the material that has them: the copy would be indexed again (search and the assistant's sources quoting
    one passage twice), and a client retrying an upload whose answer it lost would add a copy each time. The same
    file for another lesson is a material of its own (a syllabus attached to two lessons). Two uploads of one file
    at once take turns on a lock held until the first is recorded (the upload's transaction): the second sees it."""
    where = {"course_id": str(course_id), "lesson_id": str(lesson_id) if lesson_id else None, "sha256": digest}
    await uow.session.execute(select(func.pg_advisory_xact_lock(_duplicate_lock(where))))
    same = await documents.find(MATERIALS, where)
    if same:
        first = same[0]
        raise Conflict(
            f"this file is already a material {'of this lesson' if lesson_id else 'of the course'}: "
            f"{first.get('filename')} ({first['id']})",
            code="duplicate_material",
            details={
                key: first.get(name)
                for key, name in (("material_id", "id"), ("filename", "filename"), ("lesson_id", "lesson_id"))
            },
        )


async def upload_material(
    *,
    uow: UnitOfWork,
    documents: DocumentStore,
    files: FileStore,
    principal: Principal,
    course_id: uuid.UUID,
    filename: str | None,
    data: bytes,
    lesson_id: uuid.UUID | None,
    max_bytes: int,
    size: int | None = None,
) -> MaterialPublic:
    """`data` may be read only up to one byte past `max_bytes` (the route reads no more): `size` is the file's own,
    when the form said it (said in the 413; explore85 F7: the limit plus one was said as the file's size)."""
    await may_upload(uow, principal, course_id)
    if len(data) > max_bytes:
        said = size if size is not None and size > max_bytes else None
        raise TooLarge(file_too_large(max_bytes, said), details={"max_bytes": max_bytes})
    if not data:
        raise Invalid("the file is empty", code="empty_file")
    name = safe_filename(filename)
    content_type = detect_content_type(name, data)  # a .pdf without the %PDF- header: 422 invalid_pdf
    if content_type == "application/pdf":
        await validate_pdf(data)  # one pypdf cannot read: 422 invalid_pdf too
    if lesson_id is not None:
        await _lesson_of(uow, course_id, lesson_id)
    digest = hashlib.sha256(data).hexdigest()
    await refuse_duplicate(uow, documents, course_id, lesson_id, digest)
    material_id = uuid.uuid4()
    key = f"courses/{course_id}/materials/{material_id}/{name}"
    await files.put(key, data, content_type)  # first: a refusal below leaves only a file no record points at
    # Checked again under share locks held until the material is recorded: an archive or the lesson's deletion that
    # came during the checks above (a large PDF's take a while) waits for the record, then finds it (the deletion
    # detaches it) or it is refused here; the material had been recorded on an archived course, or attached to a
    # deleted lesson for good (explore19 F3, F4).
    try:
        course = await uow.session.get(Course, course_id, with_for_update={"read": True}, populate_existing=True)
        if course is None or course.status == "archived":
            raise Conflict("the course is archived", code="course_archived")
        if lesson_id is not None:
            await _lesson_of(uow, course_id, lesson_id, lock=True)
    except DomainError:
        with contextlib.suppress(Exception):
            await files.delete(key)
        raise
    doc = {
        "id": str(material_id),
        "course_id": str(course_id),
        "lesson_id": str(lesson_id) if lesson_id else None,
        "filename": name,
        "content_type": content_type,
        "size": len(data),
        "sha256": digest,
        "storage_key": key,
        "uploaded_by": str(principal.user_id),
        "created_at": datetime.now(UTC).isoformat(),
    }
    await documents.put(MATERIALS, str(material_id), doc)
    return _public(doc)


async def _lesson_of(uow: UnitOfWork, course_id: uuid.UUID, lesson_id: uuid.UUID, *, lock: bool = False) -> Lesson:
    lesson = await uow.session.get(
        Lesson, lesson_id, with_for_update={"read": True} if lock else None, populate_existing=lock
    )
    if lesson is None or lesson.course_id != course_id:
        raise NotFound("lesson not found in this course", code="lesson_not_found")
    return lesson


async def _ensure_student_access(uow: UnitOfWork, principal: Principal | None, course: Course, verb: str) -> None:
    """A caller who is neither the owner nor an admin reads materials as an enrolled student of a live course, or of
    an archived one they enrolled in (archiving does not take a course from its learners): 403
    `not_enrolled` when not enrolled in a live course, 404 `course_not_found` for any other course (a draft's
    existence is not revealed, nor an archived course's to those who did not take it)."""
    if rules.is_live(course.status, course.content_version):
        if not await can_read_content(uow, principal, course):
            await refuse_not_enrolled(uow, principal, course.id, f"enroll in this course to {verb} its materials")
        return
    if not (
        rules.open_to_learners(course.status, course.content_version) and await can_read_content(uow, principal, course)
    ):
        raise NotFound("course not found", code="course_not_found")


async def _published(documents: DocumentStore, course: Course, docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The materials the course's published version (content_version) holds, by id, as it lists them (a version
    frozen before snapshots listed them: the documents); none before a publish."""
    if course.content_version <= 0:
        return {}
    snapshot = await documents.get(VERSIONS, version_doc_id(course.id, course.content_version)) or {}
    return {str(m.get("id")): m for m in _published_materials(snapshot, docs)}


#: What a student reads of a material as the live version has it, not as the working copy has it since.
_AS_PUBLISHED = ("lesson_id", "filename", "content_type", "size")


async def list_materials(
    *,
    uow: UnitOfWork,
    documents: DocumentStore,
    principal: Principal | None,
    course_id: uuid.UUID,
    page: int,
    page_size: int,
) -> MaterialList:
    """`GET /courses/{id}/materials`, one page, oldest upload first (ties by id), with the total the caller may see.

    The owner and admins: every material of the working copy, each saying whether the published version holds it
    (`published`: what students download and search cites; false for an upload since the last publish). Students
    enrolled in a live course: the materials of the live version, i.e. exactly those they may download. Anyone
    else: 403 `not_enrolled` on a live course, 404 `course_not_found` otherwise (as `get_material`)."""
    course = await load_course(uow, course_id)
    owner = rules.can_see_draft(principal, course.instructor_id)
    if not owner:
        await _ensure_student_access(uow, principal, course, "see")
    docs = await documents.find(MATERIALS, {"course_id": str(course_id)})
    published = await _published(documents, course, docs)

    def seen(d: dict[str, Any]) -> dict[str, Any]:
        """A student sees the live version's entry: the instructor's unpublished edits (a handout detached from a
        lesson deleted in the working copy) wait for the publish (explore74 F1: the list showed the working copy's
        `lesson_id` while the lesson was still live)."""
        if owner:
            return d
        entry = published[str(d["id"])]
        return {**d, **{k: entry[k] for k in _AS_PUBLISHED if k in entry}}

    items = [
        MaterialItem.model_validate(
            {
                **seen(d),
                "published": str(d["id"]) in published,
                "detached_from": d.get("detached_from") if owner else None,
            }
        )
        for d in docs
        if owner or str(d["id"]) in published
    ]
    items.sort(key=lambda m: (m.created_at, str(m.id)))
    # The course's material documents are read whole (metadata only, as the published snapshot lists them all; the
    # student's subset is known only after that comparison): the answer is what is bounded.
    start = (page - 1) * page_size
    return MaterialList(items=items[start : start + page_size], total=len(items), page=page, page_size=page_size)


async def get_material(
    *,
    uow: UnitOfWork,
    documents: DocumentStore,
    principal: Principal | None,
    course_id: uuid.UUID,
    material_id: uuid.UUID,
) -> dict[str, Any]:
    """The material's metadata, if the caller may read it.

    The owner and admins: any material of the working copy. Students enrolled in the course: only the
    materials of the live published version not deleted since (an upload after publishing stays private until
    the next publish). Anyone else: 403 `not_enrolled` on a live course, 404 otherwise.
    """

    course = await load_course(uow, course_id)
    if rules.can_see_draft(principal, course.instructor_id):
        doc = await documents.get(MATERIALS, str(material_id))
        if doc is None or doc["course_id"] != str(course_id):
            raise NotFound("material not found", code="material_not_found")
        return doc
    await _ensure_student_access(uow, principal, course, "download")
    current = await documents.get(MATERIALS, str(material_id))
    if current is None or current.get("course_id") != str(course_id):  # deleted since it was published
        raise NotFound("material not found", code="material_not_found")
    snapshot = await documents.get(VERSIONS, version_doc_id(course.id, course.content_version)) or {}
    for entry in _published_materials(snapshot, [current]):
        if entry.get("id") == str(material_id):
            return entry
    raise NotFound("material not found", code="material_not_found")


def _published_materials(snapshot: dict[str, Any], docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The snapshot's materials that still exist (`docs`: the course's current material documents, or the ones
    asked about): a material deleted after the publish is gone for students too."""
    exists = {str(d.get("id")) for d in docs}
    if "materials" in snapshot:
        return [m for m in snapshot["materials"] if str(m.get("id")) in exists]
    # A version frozen before snapshots listed their materials: those uploaded before it was frozen.
    frozen_at = str(snapshot.get("created_at", ""))
    return [d for d in docs if frozen_at and str(d.get("created_at", "")) <= frozen_at]


async def delete_material(
    *,
    uow: UnitOfWork,
    documents: DocumentStore,
    files: FileStore,
    vector_index: Callable[[], VectorIndex],
    principal: Principal,
    course_id: uuid.UUID,
    material_id: uuid.UUID,
) -> int:
    """`DELETE /courses/{id}/materials/{mid}` (the owner or an admin). Returns the index version it was removed
    from (0: the course had no index), so the caller knows the catalogue's cached search pages are stale.

    The material leaves the working copy (the next publish does not include it) and its file is deleted. On a
    course with a live index its passages leave that index at once: its rows in the live LanceDB version
    (`VectorIndex.delete_source`, which course search and the assistant's citations read) and its `content_chunks`
    rows (the catalogue's full-text match, summaries). Students can no longer list or download it.

    Refused while a publish runs (409 `publish_in_progress`): that publish's snapshot may already list the file.
    Another caller: 403 `not_course_owner` where the course is visible to them (live), 404 `course_not_found`
    otherwise (a draft's existence is not revealed); an unknown material, or one of another course: 404
    `material_not_found`.

    `vector_index` gives the index when it is needed (a course with a live index): opening it loads LanceDB and
    the embedder, which no refusal and no course without an index should wait for or depend on."""
    # FOR KEY SHARE: a publish requested meanwhile (request_publish locks the row FOR UPDATE) waits for this
    # deletion, so its snapshot cannot list the material; admissions (FOR NO KEY UPDATE) are not held up.
    course = await uow.session.get(Course, course_id, with_for_update={"read": True, "key_share": True})
    if course is None:
        raise NotFound("course not found", code="course_not_found")
    await ensure_course_owner(uow, principal, course)
    doc = await documents.get(MATERIALS, str(material_id))
    if doc is None or doc.get("course_id") != str(course_id):
        raise NotFound("material not found", code="material_not_found")
    if course.status == "publishing":
        raise Conflict(
            "the course is being published: delete the material once the publish has finished, or cancel it "
            f"(POST /courses/{course_id}/publish/cancel) first",
            code="publish_in_progress",
            details={"workflow_id": course.publish_workflow_id},
        )
    version = course.index_version
    if version > 0:
        # The index first: a failure after it leaves the material listed, and a retry finishes the job.
        await vector_index().delete_source(str(course_id), version, source_type="material", source_id=str(material_id))
        await uow.session.execute(
            delete(ContentChunk).where(
                ContentChunk.course_id == course_id,
                ContentChunk.version == version,
                ContentChunk.source_type == "material",
                ContentChunk.source_id == str(material_id),
            )
        )
    if not await documents.delete(MATERIALS, str(material_id)):
        # Another DELETE of the same material won meanwhile: it answered 204 and deletes the file; this one did
        # nothing the other had not done (the index and chunk deletes are the same) and says so.
        raise NotFound("material not found", code="material_not_found")
    _forget_warnings_about(course, str(material_id))
    await uow.commit()
    # The file last: a failure here leaves an orphan file, never a listed material without its file.
    try:
        await files.delete(doc["storage_key"])
    except Exception:  # the material is gone for everyone; only the bytes are left behind
        log.warning("material %s deleted, its file %s was not", material_id, doc["storage_key"], exc_info=True)
    return version


def _forget_warnings_about(course: Course, material_id: str) -> None:
    """The publish report's warnings about a deleted material go with it: they ask for the file to be uploaded
    again in a readable form, which no longer applies (explore31 F5). The extract step's record keeps it."""
    report = course.publish_report or {}
    warnings = report.get("warnings") or []
    kept = [w for w in warnings if str(w.get("material_id")) != material_id]
    if len(kept) != len(warnings):
        course.publish_report = {**report, "warnings": kept}


def download_headers(doc: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """Media type and headers for serving a material: always an attachment, never sniffed, never scripted."""
    content_type = str(doc.get("content_type") or "application/octet-stream")
    media_type = (
        "application/octet-stream" if content_type.split(";")[0].strip().lower() in ACTIVE_TYPES else content_type
    )
    return media_type, {
        "Content-Disposition": attachment_disposition(str(doc.get("filename") or "download")),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox; default-src 'none'",
    }
