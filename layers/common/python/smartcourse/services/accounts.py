"""Accounts: registration, login, refresh-token rotation with reuse detection, profiles."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from smartcourse.config import Settings
from smartcourse.db import UnitOfWork
from smartcourse.domain.events import DomainEvent
from smartcourse.errors import Conflict, Forbidden, NotFound, Unauthorized
from smartcourse.models import Course, RefreshToken, User, utcnow
from smartcourse.schemas import (
    CourseSummary,
    InstructorPublic,
    RegisterIn,
    TokenPair,
    UserPublic,
    UserUpdateIn,
)
from smartcourse.security import Principal, hash_password, issue_access_token, verify_password


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def _create_user(uow: UnitOfWork, *, email: str, password: str, full_name: str, role: str) -> User:
    user = User(
        id=uuid.uuid4(),
        email=email.strip(),
        password_hash=hash_password(password),
        full_name=full_name,
        role=role,
    )
    uow.session.add(user)
    uow.emit(DomainEvent("user.registered", str(user.id), {"user_id": str(user.id), "role": role}))
    try:
        await uow.commit()
    except IntegrityError as exc:
        raise Conflict("an account with this email already exists", code="email_taken") from exc
    return user


async def register(*, uow: UnitOfWork, data: RegisterIn) -> UserPublic:
    """Create a student or instructor account (admins come from `smartcourse create-admin`)."""
    user = await _create_user(
        uow, email=str(data.email), password=data.password, full_name=data.full_name, role=data.role
    )
    return UserPublic.model_validate(user)


async def create_admin(*, uow: UnitOfWork, email: str, password: str, full_name: str) -> UserPublic:
    return UserPublic.model_validate(
        await _create_user(uow, email=email, password=password, full_name=full_name, role="admin")
    )


async def _issue_pair(uow: UnitOfWork, settings: Settings, user: User, family_id: uuid.UUID) -> TokenPair:
    refresh = secrets.token_urlsafe(48)
    uow.session.add(
        RefreshToken(
            user_id=user.id,
            family_id=family_id,
            token_hash=_token_hash(refresh),
            expires_at=utcnow() + timedelta(days=settings.refresh_token_days),
        )
    )
    await uow.commit()
    return TokenPair(
        access_token=issue_access_token(settings, user_id=user.id, role=user.role),
        refresh_token=refresh,
        expires_in=settings.access_token_minutes * 60,
    )


async def login(*, uow: UnitOfWork, settings: Settings, email: str, password: str) -> TokenPair:
    """Wrong password and unknown email give the same answer, after the same work."""
    user = await uow.session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))
    ok = verify_password(password, user.password_hash if user else None)
    if not ok or user is None or not user.is_active:
        raise Unauthorized("email or password is incorrect", code="invalid_credentials")
    return await _issue_pair(uow, settings, user, family_id=uuid.uuid4())


async def refresh(*, uow: UnitOfWork, settings: Settings, refresh_token: str) -> TokenPair:
    """Rotate: the presented token is spent; presenting a spent token revokes its whole family."""
    now = utcnow()
    row = await uow.session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == _token_hash(refresh_token)).with_for_update()
    )
    if row is None or row.expires_at <= now:
        raise Unauthorized("refresh token is invalid or expired", code="invalid_refresh_token")
    if row.revoked_at is not None:
        await uow.session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == row.family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        await uow.commit()
        raise Unauthorized("refresh token was already used; please log in again", code="refresh_token_reused")
    row.revoked_at = now
    user = await uow.session.get(User, row.user_id)
    if user is None or not user.is_active:
        raise Unauthorized("account is disabled", code="invalid_refresh_token")
    return await _issue_pair(uow, settings, user, family_id=row.family_id)


async def logout(*, uow: UnitOfWork, refresh_token: str) -> None:
    """Revoke the token's whole family (this login on this device). Idempotent."""
    row = await uow.session.scalar(select(RefreshToken).where(RefreshToken.token_hash == _token_hash(refresh_token)))
    if row is None:
        return
    await uow.session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == row.family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    await uow.commit()


async def get_user(*, uow: UnitOfWork, principal: Principal, user_id: uuid.UUID) -> UserPublic:
    if principal.user_id != user_id and not principal.is_admin:
        raise Forbidden("you may only read your own account", code="not_account_owner")
    user = await uow.session.get(User, user_id)
    if user is None:
        raise NotFound("user not found", code="user_not_found")
    return UserPublic.model_validate(user)


async def update_user(*, uow: UnitOfWork, principal: Principal, user_id: uuid.UUID, data: UserUpdateIn) -> UserPublic:
    if principal.user_id != user_id and not principal.is_admin:
        raise Forbidden("you may only change your own account", code="not_account_owner")
    user = await uow.session.get(User, user_id, with_for_update=True)
    if user is None:
        raise NotFound("user not found", code="user_not_found")
    if data.full_name is not None:
        user.full_name = data.full_name
    if data.bio is not None:
        user.bio = data.bio
    if data.password is not None:
        user.password_hash = hash_password(data.password)
    user.updated_at = utcnow()
    await uow.commit()
    return UserPublic.model_validate(user)


async def get_instructor(*, uow: UnitOfWork, instructor_id: uuid.UUID) -> InstructorPublic:
    """Public profile: name, bio and published courses. No email."""
    user = await uow.session.get(User, instructor_id)
    if user is None or user.role != "instructor":
        raise NotFound("instructor not found", code="instructor_not_found")
    courses = await uow.session.scalars(
        select(Course)
        .where(Course.instructor_id == instructor_id, Course.status == "published")
        .order_by(Course.published_at.desc())
    )
    return InstructorPublic(
        id=user.id,
        full_name=user.full_name,
        bio=user.bio,
        courses=[CourseSummary.model_validate(c) for c in courses],
    )
