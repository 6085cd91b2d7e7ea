"""Course materials: uploads into the file store, metadata in the document store."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

from smartcourse.adapters.documents import DocumentStore
from smartcourse.adapters.files import FileStore
from smartcourse.db import UnitOfWork
from smartcourse.domain import courses as rules
from smartcourse.domain.materials import detect_content_type, safe_filename
from smartcourse.errors import Conflict, Invalid, NotFound, TooLarge
from smartcourse.models import Lesson
from smartcourse.schemas import MaterialPublic
from smartcourse.security import Principal
from smartcourse.services.courses import load_course

MATERIALS = "materials"


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
    content_type = detect_content_type(name, data)
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
    """The material's metadata, if the caller may read the course."""
    course = await load_course(uow, course_id)
    if not rules.can_see_draft(principal, course.instructor_id) and not rules.is_live(
        course.status, course.content_version
    ):
        raise NotFound("course not found", code="course_not_found")
    doc = await documents.get(MATERIALS, str(material_id))
    if doc is None or doc["course_id"] != str(course_id):
        raise NotFound("material not found", code="material_not_found")
    return doc
