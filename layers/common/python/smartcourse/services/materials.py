"""Course materials: uploads into the file store, metadata in the document store."""

from __future__ import annotations

import asyncio
import hashlib
import io
import uuid
from datetime import UTC, datetime
from typing import Any

from smartcourse.adapters.documents import DocumentStore
from smartcourse.adapters.files import FileStore
from smartcourse.db import UnitOfWork
from smartcourse.domain import courses as rules
from smartcourse.domain.materials import detect_content_type, safe_filename
from smartcourse.errors import Conflict, Forbidden, Invalid, NotFound, TooLarge
from smartcourse.models import Lesson
from smartcourse.schemas import MaterialPublic
from smartcourse.security import Principal
from smartcourse.services.courses import VERSIONS, load_course, version_doc_id
from smartcourse.services.search import can_read_content

MATERIALS = "materials"
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


MAX_PDF_PAGES = 5000
MAX_PAGE_TREE_DEPTH = 32
PDF_CHECK_SECONDS = 10.0


def check_pdf(data: bytes) -> int:
    """Parse `data` with pypdf and walk its page tree, bounded; the page count, or 422 `invalid_pdf`.

    Refuses what a reader would choke on later: a catalog (/Root) that is not a dictionary, a page tree
    that loops back on itself or is absurdly deep or large, a document pypdf cannot read.
    """
    from pypdf import PdfReader
    from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject

    def invalid(why: str) -> Invalid:
        return Invalid(f"the file is not a valid PDF: {why}", code="invalid_pdf")

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
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
) -> MaterialPublic:
    course = await load_course(uow, course_id)
    rules.ensure_owner(principal, course.instructor_id)
    if course.status == "archived":
        raise Conflict("the course is archived", code="course_archived")
    if len(data) > max_bytes:
        raise TooLarge(f"the file is larger than {max_bytes} bytes", details={"max_bytes": max_bytes})
    if not data:
        raise Invalid("the file is empty", code="empty_file")
    name = safe_filename(filename)
    content_type = detect_content_type(name, data)  # a .pdf without the %PDF- header: 422 invalid_pdf
    if content_type == "application/pdf":
        await validate_pdf(data)  # one pypdf cannot read: 422 invalid_pdf too
    if lesson_id is not None:
        lesson = await uow.session.get(Lesson, lesson_id)
        if lesson is None or lesson.course_id != course_id:
            raise NotFound("lesson not found in this course", code="lesson_not_found")
    material_id = uuid.uuid4()
    key = f"courses/{course_id}/materials/{material_id}/{name}"
    await files.put(key, data, content_type)
    doc = {
        "id": str(material_id),
        "course_id": str(course_id),
        "lesson_id": str(lesson_id) if lesson_id else None,
        "filename": name,
        "content_type": content_type,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "storage_key": key,
        "uploaded_by": str(principal.user_id),
        "created_at": datetime.now(UTC).isoformat(),
    }
    await documents.put(MATERIALS, str(material_id), doc)
    return _public(doc)


async def list_materials(*, documents: DocumentStore, course_id: uuid.UUID) -> list[dict[str, Any]]:
    return await documents.find(MATERIALS, {"course_id": str(course_id)})


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
    materials of the live published version (an upload after publishing stays private until the next
    publish). Anyone else: 403 `enrollment_required` on a live course, 404 otherwise.
    """

    course = await load_course(uow, course_id)
    if rules.can_see_draft(principal, course.instructor_id):
        doc = await documents.get(MATERIALS, str(material_id))
        if doc is None or doc["course_id"] != str(course_id):
            raise NotFound("material not found", code="material_not_found")
        return doc
    if not rules.is_live(course.status, course.content_version):
        raise NotFound("course not found", code="course_not_found")
    if not await can_read_content(uow, principal, course):
        raise Forbidden("enroll in this course to download its materials", code="enrollment_required")
    snapshot = await documents.get(VERSIONS, version_doc_id(course.id, course.content_version)) or {}
    for entry in await _published_materials(documents, course_id, snapshot):
        if entry.get("id") == str(material_id):
            return entry
    raise NotFound("material not found", code="material_not_found")


async def _published_materials(
    documents: DocumentStore, course_id: uuid.UUID, snapshot: dict[str, Any]
) -> list[dict[str, Any]]:
    if "materials" in snapshot:
        return list(snapshot["materials"])
    # A version frozen before snapshots listed their materials: those uploaded before it was frozen.
    frozen_at = str(snapshot.get("created_at", ""))
    docs = await documents.find(MATERIALS, {"course_id": str(course_id)})
    return [d for d in docs if frozen_at and str(d.get("created_at", "")) <= frozen_at]


def download_headers(doc: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """Media type and headers for serving a material: always an attachment, never sniffed, never scripted."""
    from urllib.parse import quote

    content_type = str(doc.get("content_type") or "application/octet-stream")
    media_type = (
        "application/octet-stream" if content_type.split(";")[0].strip().lower() in ACTIVE_TYPES else content_type
    )
    return media_type, {
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(str(doc.get('filename') or 'download'))}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox; default-src 'none'",
    }
