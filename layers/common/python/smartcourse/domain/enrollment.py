"""Enrollment rules: deterministic workflow ids, prerequisites, progress arithmetic. No I/O."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

LIVE_STATUSES = frozenset({"waitlisted", "pending", "active", "completed"})
SEAT_STATUSES = frozenset({"pending", "active", "completed"})
LEARNING_STATUSES = frozenset({"active"})

# Who may move an enrollment from one status to another.
TRANSITIONS: Mapping[str, frozenset[str]] = {
    "waitlisted": frozenset({"pending", "dropped"}),
    "pending": frozenset({"active", "dropped"}),
    "active": frozenset({"completed", "dropped"}),
    "completed": frozenset(),
    "dropped": frozenset(),
}


def can_transition(current: str, target: str) -> bool:
    return target in TRANSITIONS.get(current, frozenset())


def enrollment_workflow_id(course_id: uuid.UUID, student_id: uuid.UUID, attempt: int) -> str:
    """One run per student x course x attempt: a retried request never starts a second one."""
    return f"enroll-{course_id}-{student_id}-{attempt}"


def certificate_workflow_id(enrollment_id: uuid.UUID) -> str:
    return f"certificate-{enrollment_id}"


def missing_prerequisites(required: Iterable[uuid.UUID], completed: Iterable[uuid.UUID]) -> list[str]:
    return sorted(str(c) for c in set(required) - set(completed))


@dataclass(frozen=True)
class LessonRef:
    lesson_id: uuid.UUID
    module_id: uuid.UUID


def percent_complete(lessons: list[LessonRef], completed: set[uuid.UUID]) -> float:
    """Share of the course's current lessons that are complete, 0-100, two decimals."""
    if not lessons:
        return 0.0
    done = sum(1 for lesson in lessons if lesson.lesson_id in completed)
    return round(done * 100 / len(lessons), 2)


def completed_modules(lessons: list[LessonRef], completed: set[uuid.UUID]) -> set[uuid.UUID]:
    by_module: dict[uuid.UUID, list[uuid.UUID]] = {}
    for lesson in lessons:
        by_module.setdefault(lesson.module_id, []).append(lesson.lesson_id)
    return {m for m, ids in by_module.items() if ids and all(i in completed for i in ids)}
