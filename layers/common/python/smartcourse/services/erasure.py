"""Erasing an account's personal data, at its owner's or an admin's request (explore67 F1: a student who asked to
leave could only be disabled, which kept everything, and their address could never register again).

What goes: the account's address and name (replaced by placeholders: the address is free to register again), its
bio, password and sessions (and the answers its `Idempotency-Key`s keep), its assistant conversations (with
their messages) and the questions copied to its usage
records, its notifications; its certificates name nobody any more and the public check answers `withdrawn` (their
PDFs deleted). What stays, under the account that now names nobody: its enrollments and their history, progress
and quiz attempts, which the platform's figures count (the analytics agree before and after; docs/security.md,
"Personal data"). Its live enrollments are dropped first, as a drop by the same caller does it (seats and waitlist
places given back, in their own transactions); nothing is e-mailed to it from the moment it is disabled
(`notifications.deliver_email`).

Refused: another's account unless an admin (403 `not_account_owner`), one's own without its password (422
`current_password_required`, 403 `wrong_current_password`, under the login's back-off), an instructor with published
courses (409 `owns_courses`, naming them: an admin hands them over or archives them first), the last active
admin (409 `last_admin`).
Erasing an erased account again answers what is left to say (idempotent)."""

from __future__ import annotations

import asyncio
import logging
import secrets
import uuid
from typing import Any

from sqlalchemy import delete, func, select, update

from smartcourse.errors import Conflict, Forbidden, NotFound
from smartcourse.models import (
    AccountChange,
    AiConversation,
    AiInteraction,
    Certificate,
    Course,
    Enrollment,
    IdempotentRequest,
    Notification,
    RefreshToken,
    User,
    utcnow,
)
from smartcourse.ratelimit import Backoff
from smartcourse.schemas import AccountErased, EraseIn
from smartcourse.security import Principal, hash_password_async
from smartcourse.services import accounts, enrollment

log = logging.getLogger(__name__)

#: The name an erased account, and its certificates, carry.
ERASED_NAME = "Erased account"
#: The fields of `account_changes` that name the person: kept as "erased" once the account is.
_PERSONAL = ("full_name", "email")
#: After the erasure, how many times (and how far apart, seconds) its live enrollments and its certificates are
#: read again, for what was under way when it was disabled.
_SWEEPS, _SWEEP_PAUSE = 4, 0.5
#: What an erased account's enrollments were in: dropped before the erasure.
_LIVE = ("waitlisted", "pending", "active")


def placeholder_address(user_id: uuid.UUID) -> str:
    """An erased account's address: unique (the index on addresses), undeliverable (`.invalid`, RFC 2606)."""
    return f"erased-{user_id.hex}@erased.invalid"


async def erase(
    *, container: Any, principal: Principal, user_id: uuid.UUID, data: EraseIn, backoff: Backoff | None = None
) -> AccountErased:
    """Erase the account's personal data (the module's docstring says what goes and what stays)."""
    if principal.user_id != user_id and not principal.is_admin:
        raise Forbidden("you may only erase your own account", code="not_account_owner")
    async with container.uow() as uow:
        user = await uow.session.get(User, user_id, with_for_update=True)
        if user is None:
            raise NotFound("user not found", code="user_not_found")
        if user.erased_at is not None:
            return _already(user)
        if principal.user_id == user_id:
            await accounts.check_own_password(user, data.current_password, backoff, "erasing your own account")
        if user.role == "instructor":
            # Live courses only: students take them and their certificates name the instructor. Drafts and archived
            # courses stay, owned by the erased account (explore69 F4: every course ever made counted, and no
            # course changes owner, so an instructor could never be erased).
            live = list(
                await uow.session.scalars(
                    select(Course.id).where(Course.instructor_id == user.id, Course.live()).order_by(Course.created_at)
                )
            )
            if live:
                raise Conflict(
                    f"this instructor has {len(live)} published course(s): an admin hands them to another instructor "
                    "(PUT /courses/{id} with instructor_id) or archives them before the account is erased (students "
                    "take them and their certificates name the instructor)",
                    code="owns_courses",
                    # Which ones, to hand over (explore81 F7: the count alone, and only archiving was said).
                    details={"courses": len(live), "course_ids": [str(c) for c in live[:100]]},
                )
        if user.role == "admin":
            await accounts.still_an_admin(uow, principal)
            others = await uow.session.scalar(
                select(func.count())
                .select_from(User)
                .where(User.role == "admin", User.is_active.is_(True), User.id != user.id)
            )
            if not others:
                raise Conflict("the last active admin cannot be erased", code="last_admin")
        # Disabled and signed out first, in its own commit: nothing acts for the account, nor is it e-mailed, while
        # its enrollments are dropped.
        user.is_active = False
        await accounts.end_sessions(uow, user)
        await uow.commit()

    dropped = await _drop_live(container, principal, user_id)
    unusable = await hash_password_async(secrets.token_urlsafe(32))  # nobody's, never typed; not under the lock
    now = utcnow()
    async with container.uow() as uow:
        user = await uow.session.get(User, user_id, with_for_update=True, populate_existing=True)
        assert user is not None
        if user.erased_at is not None:  # a concurrent erasure of the account finished first (explore69 F6)
            return _already(user)
        scrubbed = await _scrub(container, uow, user_id)
        # The record of what admins did to the account keeps what was done, not the name or address it had.
        for row in await uow.session.scalars(select(AccountChange).where(AccountChange.user_id == user_id)):
            if any(field in row.change for field in _PERSONAL):
                row.change = {k: ("erased" if k in _PERSONAL else v) for k, v in row.change.items()}
        accounts.record_change(uow, user_id, principal.user_id, {"erased": True})
        user.email = placeholder_address(user.id)
        user.full_name = ERASED_NAME
        user.bio = None
        user.password_hash = unusable
        user.is_active = False
        user.erased_at = now
        user.erased_by = principal.user_id
        user.updated_at = now
        await uow.commit()
    # An admission or a completion under way when the account was disabled may land after the lists above were read
    # (explore69 F1, F2: an erased account enrolled, a certificate naming it valid): read again until nothing is left.
    for _ in range(_SWEEPS):
        await asyncio.sleep(_SWEEP_PAUSE)
        late = await _drop_live(container, principal, user_id)
        async with container.uow() as uow:
            more = await _scrub(container, uow, user_id)
            await uow.commit()
        dropped += late
        scrubbed = [a + b for a, b in zip(scrubbed, more, strict=True)]
        if not late and not any(more):
            break
    log.info("account %s erased by %s", user_id, principal.user_id)
    return AccountErased(
        user_id=user_id,
        erased_at=now,
        enrollments_dropped=dropped,
        certificates_withdrawn=scrubbed[0],
        conversations_deleted=scrubbed[1],
        notifications_deleted=scrubbed[2],
    )


def _already(user: User) -> AccountErased:
    """The answer to the erasure of an erased account: when it was, nothing more done."""
    assert user.erased_at is not None
    return AccountErased(
        user_id=user.id,
        erased_at=user.erased_at,
        enrollments_dropped=0,
        certificates_withdrawn=0,
        conversations_deleted=0,
        notifications_deleted=0,
    )


async def _drop_live(container: Any, principal: Principal, user_id: uuid.UUID) -> int:
    """Drop the account's live enrollments, each as a drop by `principal` (seats and waitlist places given back, in
    its own transaction); how many were dropped."""
    async with container.uow() as uow:
        live = list(
            await uow.session.scalars(
                select(Enrollment.id).where(Enrollment.student_id == user_id, Enrollment.status.in_(_LIVE))
            )
        )
    dropped = 0
    for enrollment_id in live:
        async with container.uow() as uow:
            try:
                await enrollment.drop(
                    uow=uow, principal=principal, enrollment_id=enrollment_id, reason="account erased"
                )
            except Conflict:  # completed meanwhile: not live any more, nothing to give back
                continue
        dropped += 1
    return dropped


async def _scrub(container: Any, uow: Any, user_id: uuid.UUID) -> list[int]:
    """In `uow` (not committed): the account's certificates withdrawn (their PDFs deleted), its conversations,
    notifications and sessions deleted, its questions forgotten. [certificates, conversations, notifications]."""
    certificates = list(
        await uow.session.scalars(
            select(Certificate)
            .where(Certificate.student_id == user_id, Certificate.withdrawn_at.is_(None))
            .with_for_update()
        )
    )
    now = utcnow()
    for cert in certificates:
        if cert.pdf_key:
            # Before the commit: a failure after it would leave the PDF, which prints the name, with nothing left to
            # find it by; deleting a file already gone is nothing (a retry of the erasure).
            await container.files.delete(cert.pdf_key)
        cert.pdf_key = None
        cert.student_name = ERASED_NAME
        cert.withdrawn_at = now
    conversations = await uow.session.execute(delete(AiConversation).where(AiConversation.user_id == user_id))
    await uow.session.execute(update(AiInteraction).where(AiInteraction.user_id == user_id).values(question=None))
    notifications = await uow.session.execute(delete(Notification).where(Notification.user_id == user_id))
    await uow.session.execute(delete(RefreshToken).where(RefreshToken.user_id == user_id))
    # The answers its Idempotency-Keys got (a day's worth: api/idempotency.py) go too: a replay is the caller's own.
    await uow.session.execute(delete(IdempotentRequest).where(IdempotentRequest.principal_id == user_id))
    return [
        len(certificates),
        int(getattr(conversations, "rowcount", 0) or 0),
        int(getattr(notifications, "rowcount", 0) or 0),
    ]
