"""Accounts: registration, login, refresh-token rotation with reuse detection, profiles."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import unicodedata
import uuid
from collections.abc import Awaitable, Callable, Collection
from datetime import UTC, datetime, timedelta
from email.utils import make_msgid, parseaddr
from typing import Any

from sqlalchemy import String, and_, bindparam, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from smartcourse.adapters.mail import recipient, send_email
from smartcourse.config import Settings
from smartcourse.db import UnitOfWork
from smartcourse.domain.events import DomainEvent
from smartcourse.domain.moments import in_utc
from smartcourse.domain.text import fold_marks
from smartcourse.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized, Unavailable, field_problem
from smartcourse.models import AccountChange, Course, Enrollment, RefreshToken, User, utcnow
from smartcourse.ratelimit import Backoff, RateLimiter, enforce, key_part
from smartcourse.schemas import (
    AccountChangeOut,
    AccountChangePage,
    AdminIn,
    CourseSummary,
    InstructorPublic,
    RegisterIn,
    TokenPair,
    UserCreated,
    UserCreateIn,
    UserPage,
    UserPublic,
    UserUpdated,
    UserUpdateIn,
    password_weakness_error,
    stored_address,
)
from smartcourse.security import (
    Principal,
    address_digest,
    decode_reset_token,
    decode_verification_token,
    device_of,
    hash_password_async,
    issue_access_token,
    issue_device_token,
    issue_reset_token,
    issue_verification_token,
    verify_password_async,
)
from smartcourse.services.waitlist import seat_the_eligible


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def _create_user(
    uow: UnitOfWork, *, email: str, password: str, full_name: str, role: str, vouched: bool = False
) -> User:
    """`vouched`: an admin made it, so its address counts as proved (`email_verified_at`)."""
    user = User(
        id=uuid.uuid4(),
        email=email.strip(),
        password_hash=await hash_password_async(password),
        full_name=full_name,
        role=role,
        email_verified_at=utcnow() if vouched else None,
    )
    uow.session.add(user)
    uow.emit(DomainEvent("user.registered", str(user.id), {"user_id": str(user.id), "role": role}))
    try:
        await uow.commit()
    except IntegrityError as exc:
        raise Conflict("an account with this email already exists", code="email_taken") from exc
    return user


async def register(
    *,
    uow: UnitOfWork,
    data: RegisterIn,
    settings: Settings | None = None,
    limiter: RateLimiter | None = None,
    client_ip: str = "unknown",
    verify: Callable[[str], bool] | None = None,
) -> UserPublic:
    """Create a student or instructor account (admins come from `smartcourse create-admin`), and queue the e-mail with
    the link proving its address (`verify`: `tasks.enqueue_email_verification`, blocking; not queued, its owner asks
    again with `POST /auth/verify-email/resend`). With
    `INSTRUCTOR_REGISTRATION=admins`, an instructor account is an admin's to make (403
    `instructor_registration_closed`): a certificate then names only a course of an instructor an admin made one
    (explore59 F2)."""
    if settings is not None and data.role == "instructor" and settings.instructor_registration == "admins":
        raise Forbidden(
            "instructor accounts are made by an admin here: register as a student, and ask an admin to make the "
            "account an instructor",
            code="instructor_registration_closed",
        )
    if limiter is not None and settings is not None:
        enforce(await limiter.hit(("register", "ip", client_ip), settings.register_rate_limit_ip))
    user = await _create_user(
        uow, email=str(data.email), password=data.password, full_name=data.full_name, role=data.role
    )
    if verify is not None and settings is not None and settings.email_verification != "off":
        await asyncio.to_thread(verify, str(user.id))
    return UserPublic.model_validate(user)


async def create_for(
    *, uow: UnitOfWork, principal: Principal, data: UserCreateIn, invite: Callable[[str], bool]
) -> UserCreated:
    """An admin makes an account (explore68 F1: the only way was the public sign-up, limited per client address to
    50 an hour, with a password the admin had to invent). With a password, it is the account's; without one, the
    account gets one nobody knows and `invite` (`tasks.enqueue_invitation`, blocking: run in a thread) queues the
    e-mail inviting its owner to choose theirs. An address already taken: 409 `email_taken` naming the account (an
    admin finds it anyway). Not under the sign-up's per-address limit: the admin's writes are limited per account."""
    if not principal.is_admin:
        raise Forbidden(
            "only an admin makes accounts for others; anyone registers with POST /auth/register", code="admin_only"
        )
    email = str(data.email)
    try:
        user = await _create_user(
            uow,
            email=email,
            password=data.password or secrets.token_urlsafe(32),
            full_name=data.full_name,
            role=data.role,
            vouched=True,
        )
    except Conflict as exc:
        await uow.session.rollback()
        taken = await uow.session.scalar(select(User.id).where(func.lower(User.email) == email.lower()))
        raise Conflict(exc.message, code="email_taken", details={"user_id": str(taken) if taken else None}) from exc
    record_change(uow, user.id, principal.user_id, {"created": {"role": data.role, "invited": data.password is None}})
    await uow.commit()
    invited = data.password is None and await asyncio.to_thread(invite, str(user.id))
    return UserCreated.model_validate({**UserPublic.model_validate(user).model_dump(), "invited": invited})


async def create_admin(*, uow: UnitOfWork, email: str, password: str, full_name: str) -> UserPublic:
    """An admin account, held to a registration's rules (`AdminIn`: pydantic's ValidationError otherwise)."""
    data = AdminIn(email=email, password=password, full_name=full_name)
    return UserPublic.model_validate(
        await _create_user(
            uow, email=data.email, password=data.password, full_name=data.full_name, role="admin", vouched=True
        )
    )


def _login_start(token: RefreshToken) -> datetime:
    """When the token's login began (migration 0038; a token issued before has only its own `created_at`)."""
    return token.session_started_at or token.created_at


async def _issue_pair(
    uow: UnitOfWork, settings: Settings, user: User, family_id: uuid.UUID, spent: RefreshToken | None = None
) -> TokenPair:
    """A new pair of a login: a new one (`family_id` new), or the next of `spent`'s, which keeps its start. Its
    refresh token expires `REFRESH_TOKEN_DAYS` from now, but never past `SESSION_MAX_DAYS` from the login's start."""
    refresh = secrets.token_urlsafe(48)
    now = utcnow()
    started = now if spent is None else _login_start(spent)
    uow.session.add(
        RefreshToken(
            user_id=user.id,
            family_id=family_id,
            token_hash=_token_hash(refresh),
            expires_at=min(
                now + timedelta(days=settings.refresh_token_days), started + timedelta(days=settings.session_max_days)
            ),
            session_started_at=started,
        )
    )
    await uow.commit()
    return TokenPair(
        access_token=issue_access_token(settings, user_id=user.id, role=user.role, token_version=user.token_version),
        refresh_token=refresh,
        expires_in=settings.access_token_minutes * 60,
    )


async def login(
    *,
    uow: UnitOfWork,
    settings: Settings,
    email: str,
    password: str,
    limiter: RateLimiter | None = None,
    backoff: Backoff | None = None,
    client_ip: str = "unknown",
    device_token: str | None = None,
) -> TokenPair:
    """Wrong password and unknown email give the same answer, after the same work.

    Guarded (when given a limiter and a back-off) per client address and per account, and an account
    locks for a growing time after consecutive failures; a locked account is refused before any
    password check, so guessing on is pointless. The attempt is reserved with the back-off before the
    password check (atomically with the look at the lock), so concurrent guesses get no more checks than
    sequential ones.

    A login that presents a valid device token of the account (handed out by an earlier success) has a window and
    a back-off of that device's own instead of the account's: whoever guesses from elsewhere locks the account for
    unknown devices only, not for its owner's (OWASP, "Slow Down Online Guessing Attacks with Device Cookies").
    """
    email = stored_address(email)  # as a registration stored it: "zoë" typed either way, a domain in punycode
    account: tuple[str, ...] = login_account(email)
    known = device_of(settings, device_token, account=account[1])
    if known is not None and backoff is not None and await backoff.device_forgotten(account[1], known[1]):
        known = None  # issued before the password's reset: an unknown device now (explore12 F2)
    device = known[0] if known is not None else None
    window: tuple[str, ...] = ("login", "account", account[1])
    if device is not None:
        account, window = (*account, "device", device), (*window, "device", device)
    # All of these fail open when Redis is down (docs/security.md). Once one found it unreachable, the rest are
    # skipped: a hung Redis costs this login one client timeout, not four.
    if limiter is not None:
        decision = await limiter.hit(("login", "ip", client_ip), settings.login_rate_limit_ip)
        enforce(decision)
        if decision.checked:
            decision = await limiter.hit(window, settings.login_rate_limit_account)
            enforce(decision)
        if not decision.checked:
            backoff = None
    user: User | None = None

    async def check() -> bool:
        nonlocal user
        user = await uow.session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))
        ok = await verify_password_async(password, user.password_hash if user else None)
        return ok and user is not None and user.is_active

    if not await password_attempt(backoff, account, check, "too many failed logins for this account; retry later"):
        raise Unauthorized("email or password is incorrect", code="invalid_credentials")
    assert user is not None
    # The password was checked against the row as read before; a password change or a disable that committed since
    # ended every session, and this one must not start after it: read the account again under its lock (a change
    # arriving now waits for this login's commit, then ends its session too).
    checked = (user.password_hash, user.token_version)
    current = await _lock_account(uow, user.id)
    if current is None or not current.is_active or (current.password_hash, current.token_version) != checked:
        raise Unauthorized("email or password is incorrect", code="invalid_credentials")
    pair = await _issue_pair(uow, settings, current, family_id=uuid.uuid4())
    kept = device_token if device is not None else None
    pair.device_token = kept or issue_device_token(settings, account=login_account(email)[1])
    return pair


async def password_attempt(
    backoff: Backoff | None, account: tuple[str, ...], check: Callable[[], Awaitable[bool]], refusal: str
) -> bool:
    """One password check under the account's back-off: reserved before (429 while the account is locked), then
    settled as a success (the failures are cleared) or a failure (counted, locking past the free ones). The login
    and a password change's `current_password` share the account's count, so a stolen access token guesses no more
    passwords than a login may."""
    attempt = secrets.token_hex(12)
    if backoff is not None:
        decision = await backoff.reserve(account, attempt)
        enforce(decision, refusal)
        if not decision.checked:
            backoff = None
    try:
        ok = await check()
    except BaseException:
        if backoff is not None:  # neither a success nor a failure: give the reservation back
            await backoff.release(account, attempt)
        raise
    if backoff is not None:
        await (backoff.success(account, attempt) if ok else backoff.failure(account, attempt))
    return ok


async def _end_lock_outs(backoff: Backoff, email: str) -> None:
    """After a reset: the account-wide lock, and every device's (the device tokens issued before now count as unknown
    devices: the owner locked out on their own phone by their forgotten password gets in at once, explore12 F2)."""
    account = login_account(email)
    await backoff.success(account)
    await backoff.forget_devices(account[1])


def login_account(email: str) -> tuple[str, str]:
    """The back-off key of an account (its e-mail, hashed: `key_part`)."""
    return ("login", key_part(email))


async def _lock_account(uow: UnitOfWork, user_id: uuid.UUID) -> User | None:
    """The account row, locked `FOR NO KEY UPDATE` and read afresh: taken first by every change to the account's
    refresh tokens (rotation, logout; a password change or a disable takes it `FOR UPDATE`), so they serialise on
    one row in one order and each sees what the one before it committed. Not `FOR UPDATE`: that would also wait
    for (and block) the `FOR KEY SHARE` of every insert referencing the user (a login's new token, an enrollment).
    """
    return await uow.session.scalar(
        select(User).where(User.id == user_id).with_for_update(key_share=True).execution_options(populate_existing=True)
    )


async def refresh(*, uow: UnitOfWork, settings: Settings, refresh_token: str) -> TokenPair:
    """Rotate: the presented token is spent; presenting a spent token revokes its whole family.

    Locks the account first (`_lock_account`), then the token: a logout, password change or disable of the account
    either commits before (the token is found revoked, or the account disabled: 401) or waits for this rotation and
    then revokes the new token too. Taking the token row first deadlocked with a disable (which holds the user row
    and updates the tokens) through the new token's foreign key to the user.
    """
    now = utcnow()
    token_hash = _token_hash(refresh_token)
    user_id = await uow.session.scalar(select(RefreshToken.user_id).where(RefreshToken.token_hash == token_hash))
    if user_id is None:
        raise Unauthorized("refresh token is invalid or expired", code="invalid_refresh_token")
    user = await _lock_account(uow, user_id)
    row = await uow.session.scalar(
        select(RefreshToken)
        .where(RefreshToken.token_hash == token_hash)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if row is not None and _login_start(row) + timedelta(days=settings.session_max_days) <= now:
        # Its token expired then (`_issue_pair`), the login's end: said as such, before the token's expiry is (explore85
        # F3: `invalid_refresh_token`), a login no refresh keeps past SESSION_MAX_DAYS.
        raise Unauthorized(
            f"this login began more than {settings.session_max_days} days ago (SESSION_MAX_DAYS); please log in again",
            code="session_ended",
        )
    if row is None or row.expires_at <= now:
        raise Unauthorized("refresh token is invalid or expired", code="invalid_refresh_token")
    if row.revoked_at is not None and await _a_retry(uow, settings, row, now):
        if user is None or not user.is_active:
            raise Unauthorized("account is disabled", code="invalid_refresh_token")
        row.retried_at = now
        return await _issue_pair(uow, settings, user, family_id=row.family_id, spent=row)
    if row.revoked_at is not None:
        successor = await uow.session.scalar(
            select(RefreshToken.id)
            .where(
                RefreshToken.family_id == row.family_id,
                RefreshToken.id != row.id,
                # Issued by its rotation (in that transaction, so at or after the moment it was spent): a token of
                # the family issued before it was revoked (a grace retry's) is no successor of this one (explore78
                # F11: the unused token of a login ended for theft read "already used").
                RefreshToken.created_at >= row.revoked_at,
            )
            .limit(1)
        )
        if successor is None:  # never rotated: its session was ended (logout, password change, theft), not replayed
            raise Unauthorized("this session has ended; please log in again", code="session_ended")
        await uow.session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == row.family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        if user is not None:
            # Taken as theft: the access tokens are cut off too (explore30 F3: the thief's, minted by the rotation,
            # kept working for up to 15 minutes). Every access token of the account goes (they name no family); the
            # account's other logins refresh with their own tokens and carry on.
            user.token_version += 1
            user.updated_at = now
        await uow.commit()
        raise Unauthorized("refresh token was already used; please log in again", code="refresh_token_reused")
    row.revoked_at = now
    if user is None or not user.is_active:
        raise Unauthorized("account is disabled", code="invalid_refresh_token")
    return await _issue_pair(uow, settings, user, family_id=row.family_id, spent=row)


async def _a_retry(uow: UnitOfWork, settings: Settings, row: RefreshToken, now: datetime) -> bool:
    """Whether a spent token presented again is its client's retry: rotated less than REFRESH_REUSE_GRACE_SECONDS
    ago, by a rotation (not a logout or a password change) whose login is still live (a token of its family is
    unspent), and not retried yet. Answered with a new pair of that login: the token the lost answer carried stays
    valid too (two tabs that refreshed at once both carry on). A second retry, or a reuse later, is theft: ten
    replays within the grace made ten lasting sessions (explore82 F2)."""
    grace = settings.refresh_reuse_grace_seconds
    if not grace or row.revoked_at is None or row.retried_at is not None:
        return False
    if (now - row.revoked_at).total_seconds() > grace:
        return False
    live = await uow.session.scalar(
        select(RefreshToken.id)
        .where(
            RefreshToken.family_id == row.family_id,
            RefreshToken.created_at >= row.created_at,
            RefreshToken.id != row.id,
            RefreshToken.revoked_at.is_(None),
            RefreshToken.expires_at > now,
        )
        .limit(1)
    )
    return live is not None


async def logout(*, uow: UnitOfWork, refresh_token: str) -> None:
    """Revoke the token's whole family (this login on this device). Idempotent.

    Under the account's lock (`_lock_account`): a rotation of the family in flight commits first and the revoking
    statement, which starts after it, sees (and revokes) its new token; a rotation arriving later waits and then
    finds its token revoked. Without it a concurrent refresh's new token outlived the logout."""
    found = (
        await uow.session.execute(
            select(RefreshToken.user_id, RefreshToken.family_id).where(
                RefreshToken.token_hash == _token_hash(refresh_token)
            )
        )
    ).first()
    if found is None:
        return
    await _lock_account(uow, found.user_id)
    await uow.session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == found.family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    await uow.commit()


#: Apostrophes, the ASCII one and those typed for it (a phone's keyboard types U+2019): left out, so `O\u2019Neil`,
#: `O'Neil` and `oneil` are one name (explore69 F12: `obrien` did not find O'Brien).
_APOSTROPHES = "'\u2019\u2018\u02bc\u00b4\u0060"


_NO_APOSTROPHES = str.maketrans("", "", _APOSTROPHES)
#: The hyphens a name is written with: ASCII's, the Unicode hyphen and the non-breaking one, the figure dash.
_HYPHENS = "-\u2010\u2011\u2012"


def folded(column: Any) -> Any:
    """A name or an address as a search of people compares it: the catalogue's fold (`smartcourse_fold`: accents and
    the marks of every script dropped, NFC; migration 0030), apostrophes left out, hyphens as spaces, lower case.
    `Nguyen` finds `Nguyễn`, `محمد` finds `محمّد`, `елкина` finds `Ёлкина` (explore65 F12: `q=` compared NFC and
    case only)."""
    # Trimmed: the fold pads a CJK run with spaces (`' 王 '`), so a one-character surname could never be inside a
    # name's bigrams, and CJK names sorted first (explore69 F7).
    # A hyphen (any of them) is a space, and a run of blanks one: "maria jose" finds "María-José" (explore83 F16,
    # explore85 F9: not with a non-breaking hyphen, nor typed with two spaces).
    hyphens_and_apostrophes = func.translate(
        func.smartcourse_fold(column), _HYPHENS + _APOSTROPHES, " " * len(_HYPHENS)
    )
    return func.btrim(func.lower(func.regexp_replace(hyphens_and_apostrophes, r"\s+", " ", "g")))


def containing(column: Any, typed: str) -> Any:
    """`column` contains what was typed, both `folded` (the typed text folded in the same statement, by the same
    function: the two agree); LIKE's own characters in it are literal."""
    if not fold_marks(unicodedata.normalize("NFC", typed)).translate(_NO_APOSTROPHES).strip():
        # Only marks (a lone accent, a fatha) or apostrophes: folded to nothing, it matched everyone (explore69 F8,
        # explore71 F7).
        raise Invalid(
            "this search is only accents or marks, which searches set aside: type a letter",
            code="validation_error",
            details=[{"field": "query.q", "message": "only accents or marks", "type": "value_error"}],
        )
    text = literal(unicodedata.normalize("NFC", typed).strip(), String)
    escaped = func.replace(func.replace(func.replace(folded(text), "\\", "\\\\"), "%", "\\%"), "_", "\\_")
    return folded(column).like(func.concat("%", escaped, "%"), escape="\\")


def people_order(name: Any, tie: Any) -> tuple[Any, ...]:
    """By name as a reader looks one up (`folded`: accents and case do not split the alphabet), ties by `tie`."""
    return (folded(name), tie)


async def list_users(
    *,
    uow: UnitOfWork,
    principal: Principal,
    email: str | None,
    q: str | None,
    role: str | None,
    states: Collection[str] | None = None,
    page: int,
    page_size: int,
    sort: str = "newest",
    updated_since: datetime | None = None,
) -> UserPage:
    """Accounts for admins, newest first (`sort="name"`: by name, as `people_order` sorts): `email` the one with that
    address (any case), `q` those whose address or name contains it (any case or accent: `containing`), `role` of
    that role. How an admin finds the account to disable or reset."""
    if not principal.is_admin:
        raise Forbidden("only an admin may list accounts", code="admin_only")
    where: list[Any] = []
    # Addresses are stored as a registration's EmailStr normalises them (`stored_address`).
    if email:
        where.append(func.lower(User.email) == stored_address(email).strip().lower())
    if q:
        where.append(or_(containing(User.email, q), containing(User.full_name, q)))
    if role:
        where.append(User.role == role)
    if states:  # of `filters.USER_STATES`: erased, or not erased and active or disabled
        each = {
            "erased": User.erased_at.is_not(None),
            "active": and_(User.erased_at.is_(None), User.is_active.is_(True)),
            "disabled": and_(User.erased_at.is_(None), User.is_active.is_(False)),
        }
        where.append(or_(*(each[state] for state in states)))
    if updated_since is not None:  # an HR sync's "changed since my last run" (explore68 F4)
        where.append(User.updated_at >= in_utc(updated_since, name="updated_since", code="validation_error"))
    total = await uow.session.scalar(select(func.count()).select_from(User).where(*where)) or 0
    order = people_order(User.full_name, User.id) if sort == "name" else (User.created_at.desc(), User.id.desc())
    rows = await uow.session.scalars(
        select(User).where(*where).order_by(*order).offset((page - 1) * page_size).limit(page_size)
    )
    return UserPage(items=[UserPublic.model_validate(u) for u in rows], total=total, page=page, page_size=page_size)


async def get_user(*, uow: UnitOfWork, principal: Principal, user_id: uuid.UUID) -> UserPublic:
    if principal.user_id != user_id and not principal.is_admin:
        raise Forbidden("you may only read your own account", code="not_account_owner")
    user = await uow.session.get(User, user_id)
    if user is None:
        raise NotFound("user not found", code="user_not_found")
    return UserPublic.model_validate(user)


async def _change_address(uow: UnitOfWork, principal: Principal, user: User, email: str) -> None:
    """An admin gives the account a new address (an employee's changed: explore68 F6, the sync made a second account
    and split the training record). Unique in any case, as at registration (409 `email_taken` naming the account
    that has it); every session of the account ends (whoever logs in next uses the new address). Nobody changes
    their own: an address is how an account is reached, and a change would need the new one confirmed first."""
    if not principal.is_admin or principal.user_id == user.id:  # an admin's own too (explore71 F1)
        raise Forbidden("only an admin changes an account's address, and not their own", code="admin_only")
    taken = await uow.session.scalar(select(User.id).where(func.lower(User.email) == email.lower(), User.id != user.id))
    if taken is not None:
        raise Conflict("an account with this email already exists", code="email_taken", details={"user_id": str(taken)})
    user.email = email
    user.email_verified_at = utcnow()  # the admin vouches for it, as for an account they make
    try:
        await uow.session.flush()  # the unique index decides between two changes to one address at once
    except IntegrityError as exc:
        raise Conflict("an account with this email already exists", code="email_taken") from exc
    await end_sessions(uow, user)


#: The account's fields an admin's change is recorded with, before and after (`record_change`).
_AUDITED = ("full_name", "email", "role", "is_active")


def record_change(uow: UnitOfWork, user_id: uuid.UUID, actor_id: uuid.UUID, change: dict[str, Any]) -> None:
    """Record what an admin did to an account (`account_changes`, committed with the change; nothing when `change` is
    empty)."""
    if change:
        uow.session.add(AccountChange(user_id=user_id, actor_id=actor_id, change=change))


async def list_changes(
    *, uow: UnitOfWork, principal: Principal, user_id: uuid.UUID, page: int, page_size: int
) -> AccountChangePage:
    """What admins did to an account, newest first (admins only)."""
    if not principal.is_admin:
        raise Forbidden("only an admin reads what was done to accounts", code="admin_only")
    if await uow.session.get(User, user_id) is None:
        raise NotFound("user not found", code="user_not_found")
    where = [AccountChange.user_id == user_id]
    total = await uow.session.scalar(select(func.count()).select_from(AccountChange).where(*where)) or 0
    rows = await uow.session.scalars(
        select(AccountChange)
        .where(*where)
        .order_by(AccountChange.at.desc(), AccountChange.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    items = [AccountChangeOut.model_validate(r) for r in rows]
    return AccountChangePage(items=items, total=total, page=page, page_size=page_size)


async def check_own_password(user: User, current: str | None, backoff: Backoff | None, doing: str) -> str:
    """An account's own sensitive change (a new password, its erasure) needs its current password, checked under the
    login's back-off (wrong guesses lock the account as wrong logins do): 422 `current_password_required` without
    it, 403 `wrong_current_password`. Returns it."""
    if current is None:
        raise Invalid(f"{doing} needs current_password", code="current_password_required")
    stored = user.password_hash

    async def check() -> bool:
        return await verify_password_async(current, stored)

    refusal = "too many wrong passwords for this account; retry later"
    if not await password_attempt(backoff, login_account(user.email), check, refusal):
        raise Forbidden("current_password is incorrect", code="wrong_current_password")
    return current


def refuse_erased(user: User) -> None:
    """An erased account is not changed again (enabled, renamed, given a password or a role): it is nobody's."""
    if user.erased_at is not None:
        raise Conflict("this account was erased: it cannot be changed", code="account_erased")


async def update_user(
    *,
    uow: UnitOfWork,
    principal: Principal,
    user_id: uuid.UUID,
    data: UserUpdateIn,
    backoff: Backoff | None = None,
    settings: Settings | None = None,
) -> UserUpdated:
    """Name, bio, password (with `current_password` for one's own: checked under the login's back-off, so wrong
    guesses lock the account as wrong logins do) and, for admins, `is_active` and `role` (`_change_role`)."""
    if principal.user_id != user_id and not principal.is_admin:
        raise Forbidden("you may only change your own account", code="not_account_owner")
    user = await uow.session.get(User, user_id, with_for_update=True)
    if user is None:
        raise NotFound("user not found", code="user_not_found")
    refuse_erased(user)
    before = {field: getattr(user, field) for field in _AUDITED}
    kept = {field: getattr(user, field) for field in ("bio", "password_hash", "token_version")}
    if (field := data.null_refused()) is not None:  # null is a value for bio only (UserUpdateIn.NULLABLE)
        message = f"{field} cannot be null"
        raise Invalid(message, code="invalid_field", details=field_problem(field, message, "null_not_allowed"))
    if data.full_name is not None and data.full_name != user.full_name:
        if settings is not None and settings.name_changes == "admins" and not principal.is_admin:
            raise Forbidden(
                "names are kept by the administrators here (they are printed on certificates): ask an admin",
                code="name_managed_by_admins",
            )
        user.full_name = data.full_name
    if "bio" in data.model_fields_set:
        user.bio = data.bio  # null clears it, as "" does
    if data.current_password is not None and data.password is None:
        # Sent "to confirm" a profile edit, it was accepted unchecked (explore13 F10): say it is read with a new
        # password only.
        message = "current_password is read only with a new password"
        raise Invalid(message, code="invalid_field", details=field_problem("current_password", message))
    if data.password is not None:
        # Your own password needs the current one. An admin resetting another account's is not asked for it: one
        # sent anyway was checked against that account's password and counted toward its lock-out (explore13 F10).
        if principal.user_id == user_id:
            current = await check_own_password(user, data.current_password, backoff, "changing your password")
            if unicodedata.normalize("NFKC", data.password) == unicodedata.normalize("NFKC", current):
                # A "change" to the same password ended every session and changed nothing (explore59 F4).
                unchanged = "the new password is the current one; choose another"
                raise Invalid(  # `details` as a refused password's (explore62 F9: an object beside their list)
                    unchanged,
                    code="password_unchanged",
                    details=[{"field": "password", "message": unchanged, "type": "value_error"}],
                )
        _refuse_weak(data.password, user)
        user.password_hash = await hash_password_async(data.password)
        await end_sessions(uow, user)
        if backoff is not None and principal.user_id != user_id:  # an admin's reset ends a lock-out too (explore9)
            await _end_lock_outs(backoff, user.email)
    if data.is_active is not None and data.is_active != user.is_active:
        if not principal.is_admin:
            raise Forbidden("only an admin may enable or disable an account", code="admin_only")
        if user.id == principal.user_id:
            raise Conflict("an admin cannot disable their own account", code="cannot_disable_self")
        if user.role == "admin":
            # Serial with every change of and to admins: two admins disabling each other at once (or one disabling
            # while the other demoted) both succeeded and left no active admin (explore59 F1).
            await still_an_admin(uow, principal)
        user.is_active = data.is_active
        if not data.is_active:
            await end_sessions(uow, user)
        else:  # passed over while disabled: "enabled again, it is next", seated where a seat is free (explore37 F2)
            await seat_the_eligible(uow, user.id)
    if data.role is not None and data.role != user.role:
        await _change_role(uow, principal, user, data.role)
    if data.email is not None and str(data.email).lower() != user.email.lower():
        await _change_address(uow, principal, user, str(data.email))
    if any(getattr(user, f) != v for f, v in {**before, **kept}.items()):
        user.updated_at = utcnow()  # a PUT that changed nothing is no change for an `updated_since` sync (explore71 F9)
    if principal.user_id != user_id:  # an admin's change to another's account: recorded (explore67 F5)
        change: dict[str, Any] = {
            field: {"from": value, "to": getattr(user, field)}
            for field, value in before.items()
            if getattr(user, field) != value
        }
        if data.password is not None:
            change["password"] = "reset"
        if user.bio != kept["bio"]:
            change["bio"] = "changed"
        record_change(uow, user.id, principal.user_id, change)
    if data.password is not None and principal.user_id == user_id and settings is not None:
        # A change of one's own password ends every session, the caller's too: the device that made it gets a new
        # pair with the answer (explore60 F6: it was left with a dead session, told to refresh, which failed).
        tokens = await _issue_pair(uow, settings, user, family_id=uuid.uuid4())  # commits the change with it
        return UserUpdated.model_validate(user).model_copy(update={"tokens": tokens})
    await uow.commit()
    return UserUpdated.model_validate(user)


#: The enrollments a student is still in (a seat, or a place in a waitlist): a new role would strand them.
_LIVE_ENROLLMENT = ("waitlisted", "pending", "active")


async def _change_role(uow: UnitOfWork, principal: Principal, user: User, role: str) -> None:
    """An admin makes an account a student, an instructor or an admin (`user.role_changed`, which analytics counts).
    Refused for one's own account (an admin demoting themselves could leave none), for an account that owns courses
    becoming a student (nobody could edit them: archived ones count, they can be restored; an admin's too: explore37
    F4) and for a student with a live enrollment (waitlisted, pending or active: only students follow lessons).

    Changes of and to admins are serial (a transaction-scoped advisory lock) and re-read the caller's own role under
    it: two admins demoting each other at once both succeeded and left none (explore37 F5). The account's access
    tokens are cut off (`token_version` moves on; its refresh tokens live on): a token carries its role, which the
    catalogue's reads decide on, so a promoted student saw their new course as 404 until they logged in again
    (explore37 F3); a refresh gives a token with the new role."""
    if not principal.is_admin:
        raise Forbidden("only an admin may change an account's role", code="admin_only")
    if user.id == principal.user_id:
        raise Conflict("an admin cannot change their own role", code="cannot_change_own_role")
    if "admin" in (user.role, role):
        await still_an_admin(uow, principal)
    if role == "student":
        owned = await uow.session.scalar(
            select(func.count()).select_from(Course).where(Course.instructor_id == user.id)
        )
        if owned:
            raise Conflict(
                f"this account owns {owned} course(s); it can become a student once it owns none "
                "(to stop someone teaching, disable the account)",
                code="owns_courses",
                details={"courses": owned},
            )
    if user.role == "student":
        live = await uow.session.scalar(
            select(func.count())
            .select_from(Enrollment)
            .where(Enrollment.student_id == user.id, Enrollment.status.in_(_LIVE_ENROLLMENT))
        )
        if live:
            raise Conflict(
                f"this student has {live} live enrollment(s) (waitlisted, pending or active); "
                "a student's role changes once they have completed or dropped them",
                code="has_live_enrollments",
                details={"enrollments": live},
            )
    previous, user.role = user.role, role
    user.token_version += 1
    uow.emit(DomainEvent("user.role_changed", str(user.id), {"user_id": str(user.id), "from": previous, "to": role}))


def _refuse_weak(password: str, user: User) -> None:
    """422 `password_too_weak` for a new password zxcvbn finds guessable, the account's address and name counted
    (explore62 F4: the account's own address was accepted), as a registration's is refused."""
    error = password_weakness_error(password, (user.email, user.full_name))
    if error is not None:
        message = error.message()
        raise Invalid(
            message,
            code="password_too_weak",
            details=[{"field": "password", "message": message, "type": "value_error"}],
        )


#: The advisory lock that makes changes of and to the admin role one at a time (any fixed 64-bit key).
_ADMIN_ROLES_LOCK = 0x5C_AD_31_17


async def still_an_admin(uow: UnitOfWork, principal: Principal) -> None:
    """Take `_ADMIN_ROLES_LOCK` (changes of admins, their role or their account, one at a time) and re-read the
    caller under it: an admin demoted or disabled by a change committed meanwhile is refused, so two admins acting
    on each other at once never leave none (explore37 F5 for roles, explore59 F1 for disabling)."""
    await uow.session.execute(select(func.pg_advisory_xact_lock(_ADMIN_ROLES_LOCK)))
    current = (
        await uow.session.execute(
            select(User.role, User.is_active)
            .where(User.id == principal.user_id)
            .execution_options(populate_existing=True)
        )
    ).first()
    if current is None or current.role != "admin" or not current.is_active:
        raise Forbidden("only an active admin may change an admin's account or role", code="admin_only")


async def end_sessions(uow: UnitOfWork, user: User) -> None:
    """Every refresh token revoked and every access token issued so far refused (token_version moves on)."""
    user.token_version += 1
    await uow.session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user.id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


async def set_active(*, uow: UnitOfWork, user_id: uuid.UUID, active: bool) -> UserPublic:
    """Disable (or re-enable) an account; disabling ends its sessions at once."""
    user = await uow.session.get(User, user_id, with_for_update=True)
    if user is None:
        raise NotFound("user not found", code="user_not_found")
    refuse_erased(user)
    user.is_active = active
    if not active:
        await end_sessions(uow, user)
    user.updated_at = utcnow()
    await uow.commit()
    return UserPublic.model_validate(user)


#: Every authenticated request runs it: built once (a statement built per call costs its construction and cache key).
_ACCOUNT_CHECK = select(
    User.role, User.is_active, User.token_version, User.email_verified_at.is_not(None).label("email_verified")
).where(User.id == bindparam("user_id", type_=PG_UUID(as_uuid=True)))


async def authenticate(*, uow: UnitOfWork, claims: Principal) -> Principal:
    """The caller of a validly signed token, if its account still exists, is active and the token is current."""
    return await check_account(uow.session, claims)


async def check_account(db: AsyncConnection | AsyncSession, claims: Principal) -> Principal:
    """`authenticate` on a connection (or session) of the caller's: every authenticated request runs it, and on a
    bare connection it skips the ORM session's set-up and its statement path (docs/benchmarks.md, "Ninth pass")."""
    row = (await db.execute(_ACCOUNT_CHECK, {"user_id": claims.user_id})).first()
    return account_principal(row, claims)


def account_principal(row: Any, claims: Principal) -> Principal:
    """The caller, from the row of `_ACCOUNT_CHECK`'s columns (role, is_active, token_version) read for `claims`
    (None: no such account); raises 401 with the reason when the account no longer accepts the token."""
    if row is None:
        raise Unauthorized("the account of this token no longer exists", code="account_not_found")
    if not row.is_active:
        raise Unauthorized("this account is disabled", code="account_disabled")
    if row.token_version != claims.token_version:
        # The version moves on at a password change, when an admin disables the account (which may have been
        # enabled again since) or changes its role, and when a refresh token is replayed: nothing records which, so
        # the message names all.
        raise Unauthorized(
            "this token was revoked (password changed, role changed, account disabled or a stolen session "
            "detected); refresh or log in again",
            code="token_revoked",
        )
    return Principal(
        user_id=claims.user_id,
        role=row.role,
        token_version=row.token_version,
        email_verified=bool(getattr(row, "email_verified", True)),
    )


#: How many courses the public profile embeds; `GET /courses?instructor_id=` pages through all of them.
PROFILE_COURSES = 20


async def get_instructor(*, uow: UnitOfWork, instructor_id: uuid.UUID) -> InstructorPublic:
    """Public profile: name, bio, the newest `PROFILE_COURSES` published courses and how many there are. No email.

    The courses are the catalogue's for this instructor (`courses.list_courses` for an anonymous caller): live
    (a version published, not archived; also while a new version is being published), newest created first, then
    id. So `courses` is page 1 of `GET /courses?instructor_id=...&page_size=20`, and page 2 on lists the rest."""
    user = await uow.session.get(User, instructor_id)
    if user is None or user.role != "instructor":
        raise NotFound("instructor not found", code="instructor_not_found")
    live = (Course.instructor_id == instructor_id, Course.live())
    total = await uow.session.scalar(select(func.count()).select_from(Course).where(*live))
    courses = await uow.session.scalars(
        select(Course).where(*live).order_by(Course.created_at.desc(), Course.id).limit(PROFILE_COURSES)
    )
    return InstructorPublic(
        id=user.id,
        full_name=user.full_name,
        bio=user.bio,
        courses=[CourseSummary.model_validate(c) for c in courses],
        courses_total=total or 0,
    )


# --- forgotten passwords ---------------------------------------------------------------------------


async def request_password_reset(
    *,
    settings: Settings,
    email: str,
    enqueue: Callable[[str], bool],
    limiter: RateLimiter | None = None,
    client_ip: str = "unknown",
) -> None:
    """Ask for a reset e-mail: `enqueue` queues the task that sends it (`tasks.enqueue_password_reset`; blocking, so
    run in a thread), False if it could not. The same answer and the same work whether or not the address has an
    account (the task looks it up), so nobody learns which addresses are registered; limited per client address,
    per address asked for from that client, and per address asked for from anywhere (nobody's mailbox is flooded).
    The second keeps an anonymous client from spending the owner's resets (explore30 F2: keyed by the address alone,
    three requests from anywhere refused the owner's for an hour); the third is the flood's cap, which many
    clients together can still reach."""
    if limiter is not None:
        decision = await limiter.hit(("reset", "ip", client_ip), settings.password_reset_rate_limit_ip)
        enforce(decision)
        if decision.checked:
            account = key_part(email)
            enforce(
                await limiter.hit(("reset", "account", account, client_ip), settings.password_reset_rate_limit_account)
            )
            enforce(await limiter.hit(("reset", "account", account), settings.password_reset_rate_limit_account_all))
    if not await asyncio.to_thread(enqueue, email.strip()):
        raise Unavailable("the reset e-mail could not be queued; retry shortly", code="service_unavailable")


async def _mail_account(settings: Settings, user: User, *, kind: str, subject: str, text: str) -> None:
    """An e-mail of the account itself (its invitation, its password reset), sent by the task that asked for it."""
    domain = parseaddr(settings.mail_from)[1].rpartition("@")[2] or "smartcourse.local"
    await asyncio.to_thread(
        send_email,
        host=settings.smtp_host or "127.0.0.1",
        port=settings.smtp_port,
        sender=settings.mail_from,
        to=recipient(" ".join(user.full_name.split()), user.email),
        subject=subject,
        text=f"{text}\n\n-- \nSmartCourse",
        message_id=make_msgid(kind, domain=domain),
    )


def _how_to(page: str | None, token: str, *, within: str, code: str, to_do: str) -> str:
    """An account e-mail's paragraph with its code: a link when `page` (PASSWORD_RESET_URL, EMAIL_VERIFICATION_URL)
    names the front end's page, `{token}` replaced; else the code to enter."""
    if page:
        return f"{to_do[0].upper()}{to_do[1:]} here within {within}:\n\n{page.replace('{token}', token)}"
    return f"Enter this {code} in SmartCourse within {within} to {to_do}:\n\n{token}"


async def send_invitation(
    user_id: uuid.UUID, *, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> str:
    """The Celery task's work: e-mail the owner of an account an admin made (`create_for`) the link to choose its
    password, good for INVITATION_DAYS and once (the reset token, longer-lived). "sent", or "no_account" for an
    account gone, disabled or erased meanwhile."""
    async with sessionmaker() as session:
        user = await session.get(User, user_id)
    if user is None or not user.is_active:
        return "no_account"
    days = settings.invitation_days
    token = issue_reset_token(
        settings, user_id=user.id, token_version=user.token_version, lifetime=timedelta(days=days)
    )
    how = _how_to(settings.password_reset_url, token, within=f"{days} days", code="code", to_do="choose your password")
    text = (
        f"Hello {user.full_name},\n\nan administrator made you a SmartCourse account for this address.\n\n{how}\n\n"
        "Then log in with this address and that password. If you did not expect this, ignore this e-mail."
    )
    await _mail_account(
        settings, user, kind="invitation", subject="Your SmartCourse account: choose your password", text=text
    )
    return "sent"


async def send_password_reset(email: str, *, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> str:
    """The Celery task's work: e-mail a reset token to the active account of `email`, if there is one. Returns
    "sent" or "no_account". Sent again if the task is retried: every token stays good until one of them is used."""
    async with sessionmaker() as session:
        user = await session.scalar(select(User).where(func.lower(User.email) == stored_address(email).lower()))
    if user is None or not user.is_active:
        return "no_account"
    token = issue_reset_token(settings, user_id=user.id, token_version=user.token_version)
    minutes = settings.password_reset_minutes
    how = _how_to(
        settings.password_reset_url,
        token,
        within=f"{minutes} minutes",
        code="reset code",
        to_do="choose a new password",
    )
    text = (
        f"Hello {user.full_name},\n\nsomeone (we hope you) asked to reset the password of your SmartCourse account."
        f"\n\n{how}\n\nIf it was not you, ignore this e-mail: your password stays as it is."
    )
    await _mail_account(settings, user, kind="password-reset", subject="Reset your SmartCourse password", text=text)
    return "sent"


async def send_email_verification(
    user_id: uuid.UUID, *, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> str:
    """The Celery task's work: e-mail a sign-up the link proving its address (good for EMAIL_VERIFICATION_DAYS, for
    the address as it is). "sent", "verified" (proved meanwhile: nothing sent) or "no_account"."""
    async with sessionmaker() as session:
        user = await session.get(User, user_id)
    if user is None or not user.is_active or user.erased_at is not None:
        return "no_account"
    if user.email_verified_at is not None:
        return "verified"
    token = issue_verification_token(settings, user_id=user.id, email=user.email)
    days = settings.email_verification_days
    how = _how_to(settings.email_verification_url, token, within=f"{days} days", code="code", to_do="confirm it")
    text = (
        f"Hello {user.full_name},\n\nthis address was used to make a SmartCourse account. {how}\n\n"
        "If you did not make it, ignore this e-mail: the account stays unconfirmed."
    )
    await _mail_account(
        settings, user, kind="verify-email", subject="Confirm your SmartCourse e-mail address", text=text
    )
    return "sent"


async def verify_email(*, uow: UnitOfWork, settings: Settings, token: str) -> UserPublic:
    """Prove an account's address with the code its e-mail carried: for the address it was sent to (one changed
    since makes it void), again and again (a second click answers the same). 422 `invalid_verification_token` else."""
    refused = Invalid(
        "the confirmation code is invalid, expired or for another address; ask for a new one",
        code="invalid_verification_token",
    )
    named = decode_verification_token(settings, token)
    if named is None:
        raise refused
    user = await uow.session.get(User, named[0], with_for_update=True)
    if user is None or not user.is_active or user.erased_at is not None or address_digest(user.email) != named[1]:
        raise refused
    if user.email_verified_at is None:
        user.email_verified_at = user.updated_at = utcnow()
        await uow.commit()
    return UserPublic.model_validate(user)


async def resend_verification(
    *,
    uow: UnitOfWork,
    settings: Settings,
    principal: Principal,
    verify: Callable[[str], bool],
    limiter: RateLimiter | None = None,
) -> bool:
    """Queue the confirmation e-mail again, for the caller's own account (limited as reset e-mails are, per account).
    False when its address is proved already (nothing sent); 503 when the queue did not take it."""
    verified = await uow.session.scalar(select(User.email_verified_at).where(User.id == principal.user_id))
    if verified is not None:
        return False
    if limiter is not None:
        enforce(
            await limiter.hit(("verify", "user", str(principal.user_id)), settings.password_reset_rate_limit_account)
        )
    if not await asyncio.to_thread(verify, str(principal.user_id)):
        raise Unavailable("the confirmation e-mail could not be queued; retry shortly", code="service_unavailable")
    return True


async def reset_password(
    *, uow: UnitOfWork, settings: Settings, token: str, password: str, backoff: Backoff | None = None
) -> None:
    """Set a new password with an e-mailed reset token: once (the reset moves the account's token_version on, which
    the token names), ending every session and any login lock-out (whoever holds the token reads the mailbox)."""
    refused = Invalid("the reset token is invalid, used or expired; ask for a new one", code="invalid_reset_token")
    named = decode_reset_token(settings, token)
    if named is None:
        raise refused
    user = await uow.session.get(User, named[0], with_for_update=True)
    if user is None or not user.is_active or user.token_version != named[1]:
        raise refused
    _refuse_weak(password, user)
    user.password_hash = await hash_password_async(password)
    await end_sessions(uow, user)
    user.updated_at = utcnow()
    user.email_verified_at = user.email_verified_at or user.updated_at  # the code came to its mailbox
    await uow.commit()
    if backoff is not None:
        await _end_lock_outs(backoff, user.email)
