"""A copy of everything the platform holds about an account, in one JSON document (GDPR art. 15 and 20; explore67 F2:
a student could read their data only piece by piece, some of it not at all: the questions they asked the assistant,
their sessions). For the account itself or an admin (a disabled account cannot sign in: an admin exports it for
them). Secrets are left out: the password's hash, the refresh tokens' hashes, the token version."""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import select

from smartcourse.db import UnitOfWork
from smartcourse.errors import Forbidden, NotFound
from smartcourse.models import (
    AccountChange,
    AiConversation,
    AiInteraction,
    AiMessage,
    Certificate,
    Course,
    Enrollment,
    EnrollmentHistory,
    LessonProgress,
    Notification,
    QuizAttempt,
    RefreshToken,
    User,
    utcnow,
)
from smartcourse.security import Principal
from smartcourse.services.accounts import record_change

#: Columns never exported: secrets, and what only the platform's bookkeeping reads.
_LEFT_OUT = frozenset({"password_hash", "token_version", "token_hash", "idempotency_key", "pdf_key"})


def _row(obj: Any, *leave_out: str) -> dict[str, Any]:
    """A row's columns by their attribute names, less `_LEFT_OUT` and `leave_out`."""
    skip = _LEFT_OUT | set(leave_out)
    return {c.key: getattr(obj, c.key) for c in obj.__mapper__.column_attrs if c.key not in skip}


async def export(*, uow: UnitOfWork, principal: Principal, user_id: uuid.UUID) -> dict[str, Any]:
    """The account's data: the account, its enrollments (each with its history, lessons done and quiz attempts),
    certificates, notifications, assistant conversations (with their messages) and usage records, the sessions it
    has signed in with, and the courses it teaches. JSON-ready apart from times and ids (the route encodes them)."""
    if principal.user_id != user_id and not principal.is_admin:
        raise Forbidden("you may only export your own account", code="not_account_owner")
    s = uow.session
    user = await s.get(User, user_id)
    if user is None:
        raise NotFound("user not found", code="user_not_found")
    enrollments = list(
        await s.scalars(select(Enrollment).where(Enrollment.student_id == user_id).order_by(Enrollment.created_at))
    )
    ids = [e.id for e in enrollments]
    by_enrollment: dict[str, dict[uuid.UUID, list[dict[str, Any]]]] = {
        "history": defaultdict(list),
        "lessons": defaultdict(list),
        "quiz_attempts": defaultdict(list),
    }
    if ids:
        for h in await s.scalars(
            select(EnrollmentHistory).where(EnrollmentHistory.enrollment_id.in_(ids)).order_by(EnrollmentHistory.at)
        ):
            by_enrollment["history"][h.enrollment_id].append(_row(h, "enrollment_id"))
        for p in await s.scalars(select(LessonProgress).where(LessonProgress.enrollment_id.in_(ids))):
            by_enrollment["lessons"][p.enrollment_id].append(_row(p, "enrollment_id"))
        for a in await s.scalars(
            select(QuizAttempt).where(QuizAttempt.enrollment_id.in_(ids)).order_by(QuizAttempt.submitted_at)
        ):
            by_enrollment["quiz_attempts"][a.enrollment_id].append(_row(a, "enrollment_id"))
    titles = dict(
        (
            await s.execute(select(Course.id, Course.title).where(Course.id.in_({e.course_id for e in enrollments})))
        ).all()
    )
    conversations = list(
        await s.scalars(
            select(AiConversation).where(AiConversation.user_id == user_id).order_by(AiConversation.created_at)
        )
    )
    messages: dict[uuid.UUID, list[dict[str, Any]]] = defaultdict(list)
    if conversations:
        for m in await s.scalars(
            select(AiMessage).where(AiMessage.conversation_id.in_([c.id for c in conversations])).order_by(AiMessage.id)
        ):
            messages[m.conversation_id].append(_row(m, "conversation_id", "id"))

    async def rows(model: Any, *where: Any, order: Any) -> list[dict[str, Any]]:
        return [_row(r) for r in await s.scalars(select(model).where(*where).order_by(order))]

    data = {
        "exported_at": utcnow(),
        "account": _row(user),
        "enrollments": [
            {
                **_row(e),
                "course_title": titles.get(e.course_id),
                **{part: rows_of[e.id] for part, rows_of in by_enrollment.items()},
            }
            for e in enrollments
        ],
        "certificates": await rows(Certificate, Certificate.student_id == user_id, order=Certificate.issued_at),
        "notifications": await rows(Notification, Notification.user_id == user_id, order=Notification.created_at),
        "assistant_conversations": [{**_row(c), "messages": messages[c.id]} for c in conversations],
        "assistant_interactions": await rows(
            AiInteraction, AiInteraction.user_id == user_id, order=AiInteraction.created_at
        ),
        "sessions": await rows(RefreshToken, RefreshToken.user_id == user_id, order=RefreshToken.created_at),
        "courses_taught": [
            {"id": c.id, "title": c.title, "status": c.status, "created_at": c.created_at}
            for c in await s.scalars(select(Course).where(Course.instructor_id == user_id).order_by(Course.created_at))
        ],
        # What admins did to the account (explore71 F6), this export included: an admin's copy of a student's
        # conversations is recorded, as every other thing an admin does to the account (F4).
        "account_changes": await rows(AccountChange, AccountChange.user_id == user_id, order=AccountChange.at),
    }
    record_change(uow, user_id, principal.user_id, {"exported": True})
    await uow.commit()
    return data
