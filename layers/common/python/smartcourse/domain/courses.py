"""Course rules: who may edit, what students may see, how quizzes are graded."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from smartcourse.domain.principal import Principal
from smartcourse.errors import Forbidden

AUTHOR_ROLES = frozenset({"instructor", "admin"})


def ensure_can_author(principal: Principal) -> None:
    if principal.role not in AUTHOR_ROLES:
        raise Forbidden("only instructors and admins may create courses", code="role_forbidden")


def teaches(principal: Principal, instructor_id: Any) -> bool:
    """The caller is the course's instructor, and still an instructor: an account demoted since (its role is read
    from the database on every request) keeps no owner's powers over the courses it made (explore30 F4)."""
    return principal.role == "instructor" and principal.user_id == instructor_id


def ensure_owner(principal: Principal, instructor_id: Any) -> None:
    if not (principal.is_admin or teaches(principal, instructor_id)):
        raise Forbidden("only the course's instructor or an admin may do this", code="not_course_owner")


def can_see_draft(principal: Principal | None, instructor_id: Any) -> bool:
    return principal is not None and (principal.is_admin or teaches(principal, instructor_id))


def is_live(status: str, content_version: int) -> bool:
    """The catalogue shows a course (and takes enrollments) once a version is published and until it is archived."""
    return content_version > 0 and status in {"published", "publishing"}


def open_to_learners(status: str, content_version: int) -> bool:
    """Its enrolled students keep reading a course once a version is published, also after it is archived (an
    archive withdraws it from the catalogue, not from those who enrolled)."""
    return content_version > 0 and status in {"published", "publishing", "archived"}


def student_view_of_lesson(lesson: dict[str, Any]) -> dict[str, Any]:
    """Strip what a student must not see: the quiz answers."""
    if lesson.get("type") != "quiz" or not lesson.get("questions"):
        return lesson
    out = dict(lesson)
    out["questions"] = [{k: v for k, v in q.items() if k != "answer"} for q in lesson["questions"]]
    return out


def quiz_fingerprint(body: dict[str, Any]) -> str:
    """What identifies a quiz as a student answers it: its questions (prompt, options, answer) and pass score, hashed.
    A republish that leaves them alone keeps it; a rewrite changes it, and with it the attempts the limit counts."""
    questions = [
        {"prompt": q.get("prompt"), "options": q.get("options"), "answer": q.get("answer")}
        for q in body.get("questions") or []
    ]
    canonical = json.dumps(
        {"questions": questions, "pass_score": int(body.get("pass_score", 70))},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def grade_quiz(questions: list[dict[str, Any]], answers: list[int], pass_score: int) -> tuple[int, bool]:
    """Score in percent (rounded down) and whether it reaches pass_score."""
    if not questions:
        return 100, True
    correct = sum(1 for q, a in zip(questions, answers, strict=False) if q["answer"] == a)
    score = correct * 100 // len(questions)
    return score, score >= pass_score
