"""What a learner follows: the lessons of the course's published version, in order."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from smartcourse.adapters.documents import DocumentStore
from smartcourse.domain.enrollment import LessonRef
from smartcourse.models import Course
from smartcourse.services.courses import VERSIONS, version_doc_id


@dataclass(frozen=True)
class PublishedLesson:
    lesson_id: uuid.UUID
    module_id: uuid.UUID
    module_title: str
    title: str
    type: str
    body: dict[str, Any]

    @property
    def ref(self) -> LessonRef:
        return LessonRef(self.lesson_id, self.module_id)


async def published_lessons(documents: DocumentStore, course: Course) -> list[PublishedLesson]:
    return await published_lessons_of(documents, course.id, course.content_version)


async def published_lessons_of(documents: DocumentStore, course_id: uuid.UUID, version: int) -> list[PublishedLesson]:
    """The lessons of version `version` of the course (none before its first publish)."""
    if version < 1:
        return []
    return _lessons_of(await documents.get(VERSIONS, version_doc_id(course_id, version)) or {})


async def published_lessons_by_version(
    documents: DocumentStore, versions: set[tuple[uuid.UUID, int]]
) -> dict[tuple[uuid.UUID, int], list[PublishedLesson]]:
    """`published_lessons_of` for several (course, version) pairs in one read of the document store."""
    ids = {key: version_doc_id(*key) for key in versions if key[1] >= 1}
    found = await documents.get_many(VERSIONS, list(ids.values())) if ids else {}
    return {key: _lessons_of(found.get(ids[key]) or {}) if key in ids else [] for key in versions}


def _lessons_of(snapshot: dict[str, Any]) -> list[PublishedLesson]:
    out = []
    for module in snapshot.get("modules", []):
        for lesson in module.get("lessons", []):
            out.append(
                PublishedLesson(
                    lesson_id=uuid.UUID(lesson["id"]),
                    module_id=uuid.UUID(module["id"]),
                    module_title=module["title"],
                    title=lesson["title"],
                    type=lesson["type"],
                    body=lesson,
                )
            )
    return out
