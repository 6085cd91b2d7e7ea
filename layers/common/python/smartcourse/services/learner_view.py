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
    if course.content_version < 1:
        return []
    snapshot = await documents.get(VERSIONS, version_doc_id(course.id, course.content_version)) or {}
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
