"""Password hashing (pwdlib/argon2, off the event loop) and JWT access tokens (PyJWT, HS256)."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import threading
import unicodedata
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from smartcourse.config import Settings, get_settings
from smartcourse.domain.principal import Principal
from smartcourse.errors import Unauthorized


@functools.cache
def _hasher_of(time_cost: int, memory_kib: int, parallelism: int) -> PasswordHash:
    return PasswordHash((Argon2Hasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism),))


def _hasher() -> PasswordHash:
    """Argon2id at the configured cost; any stored argon2 hash verifies, whatever cost it was made with."""
    s = get_settings()
    return _hasher_of(s.password_hash_time_cost, s.password_hash_memory_kib, s.password_hash_parallelism)


@functools.cache
def _dummy_hash() -> str:
    """A real hash of a random string: verifying against it costs the same as a real account, so an unknown email
    takes as long as a wrong password. Made on the first check, not at import: an argon2 hash is about 0.15 s of CPU,
    which every process importing this module (the worker, Celery, each API process, a Lambda's cold start) paid."""
    return _hasher().hash(uuid.uuid4().hex)


def normalized(password: str) -> str:
    """NFKC, as NIST SP 800-63B asks: "päss" typed as one character or as "a" plus a combining mark (some keyboards
    and password managers send the decomposed form) is the same password."""
    return unicodedata.normalize("NFKC", password)


def hash_password(password: str) -> str:
    return _hasher().hash(normalized(password))


def verify_password(password: str, password_hash: str | None) -> bool:
    """Constant-work check: with no stored hash it still runs one verification. The password is compared normalized
    (`normalized`); a hash made before passwords were normalized was made of the characters as typed, so a password
    that normalization changes is also tried as typed (a second verification, for such passwords only)."""
    dummy = _dummy_hash()  # first, whatever the branch: a process's first check costs the same either way
    hasher = _hasher()
    if password_hash is None:
        hasher.verify(password, dummy)
        return False
    plain = normalized(password)
    if hasher.verify(plain, password_hash):
        return True
    return plain != password and hasher.verify(password, password_hash)


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _hash_pool() -> ThreadPoolExecutor:
    """Argon2 is CPU- and memory-hard: a few threads (PASSWORD_HASH_CONCURRENCY), never the event loop."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=get_settings().password_hash_concurrency, thread_name_prefix="argon2"
            )
        return _pool


async def hash_password_async(password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(_hash_pool(), hash_password, password)


async def verify_password_async(password: str, password_hash: str | None) -> bool:
    return await asyncio.get_running_loop().run_in_executor(_hash_pool(), verify_password, password, password_hash)


def _sign(settings: Settings, typ: str, subject: str, lifetime: timedelta, **claims: Any) -> str:
    """A token of type `typ` for `subject` (HS256 with JWT_SECRET), valid `lifetime` from now."""
    now = datetime.now(UTC)
    body = {"sub": subject, **claims, "iss": settings.jwt_issuer, "iat": now, "exp": now + lifetime, "typ": typ}
    return jwt.encode(body, settings.jwt_secret, algorithm="HS256")


def _verified(settings: Settings, token: str, *required: str) -> dict[str, Any]:
    """A token's claims once its signature, issuer, expiry and the `required` claims are checked (PyJWTError else)."""
    claims: dict[str, Any] = jwt.decode(
        token,
        settings.jwt_secret,
        algorithms=["HS256"],
        issuer=settings.jwt_issuer,
        options={"require": ["exp", "sub", "iss", *required]},
    )
    return claims


def issue_access_token(settings: Settings, *, user_id: uuid.UUID, role: str, token_version: int = 0) -> str:
    lifetime = timedelta(minutes=settings.access_token_minutes)
    return _sign(settings, "access", str(user_id), lifetime, role=role, tv=token_version)


def issue_device_token(settings: Settings, *, account: str) -> str:
    """A device token for the account whose login key is `account` (its hashed e-mail): proof that this client
    once logged in to it (OWASP's device cookies). It grants nothing but a back-off of its own (services.accounts)."""
    lifetime = timedelta(days=settings.login_device_token_days)
    return _sign(settings, "device", account, lifetime, jti=uuid.uuid4().hex)


def device_of(settings: Settings, token: str | None, *, account: str) -> tuple[str, float] | None:
    """The device id (`jti`) and issue time of a valid device token for `account`, else None: a missing, expired,
    forged or other account's token only makes the login an unknown device's, never an error."""
    if not token:
        return None
    try:
        claims = _verified(settings, token, "jti")
    except jwt.PyJWTError:
        return None
    if claims.get("typ") != "device" or claims.get("sub") != account:
        return None
    device, issued = claims.get("jti"), claims.get("iat")
    if not (isinstance(device, str) and device and isinstance(issued, int | float)):
        return None
    return device, float(issued)


def issue_reset_token(
    settings: Settings, *, user_id: uuid.UUID, token_version: int, lifetime: timedelta | None = None
) -> str:
    """A password-reset token for the account: good for PASSWORD_RESET_MINUTES (or `lifetime`: an invitation's), and
    once, since the reset (like any password change or a disable) moves the account's token_version past the one it
    names."""
    lifetime = lifetime or timedelta(minutes=settings.password_reset_minutes)
    return _sign(settings, "reset", str(user_id), lifetime, tv=token_version, jti=uuid.uuid4().hex)  # each its own


def address_digest(email: str) -> str:
    """What a verification token names of the address: its digest (the token is readable by anyone who holds it)."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]


def issue_verification_token(settings: Settings, *, user_id: uuid.UUID, email: str) -> str:
    """The sign-up's proof of address: good for EMAIL_VERIFICATION_DAYS, for the account's address as it is now (an
    address changed since makes it void)."""
    lifetime = timedelta(days=settings.email_verification_days)
    return _sign(settings, "verify", str(user_id), lifetime, em=address_digest(email))


def decode_verification_token(settings: Settings, token: str) -> tuple[uuid.UUID, str] | None:
    """The account id and address digest a valid verification token names; None for an expired, forged or other
    token."""
    try:
        claims = _verified(settings, token, "em")
        if claims.get("typ") != "verify":
            return None
        return uuid.UUID(str(claims["sub"])), str(claims["em"])
    except (jwt.PyJWTError, KeyError, ValueError, TypeError):
        return None


def decode_reset_token(settings: Settings, token: str) -> tuple[uuid.UUID, int] | None:
    """The account id and token_version a valid reset token names; None for an expired, forged or other token."""
    try:
        claims = _verified(settings, token, "tv")
        if claims.get("typ") != "reset":
            return None
        return uuid.UUID(str(claims["sub"])), int(claims["tv"])
    except (jwt.PyJWTError, KeyError, ValueError, TypeError):
        return None


def decode_access_token(settings: Settings, token: str) -> Principal:
    try:
        claims = _verified(settings, token)
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("access token expired", code="token_expired") from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized("invalid access token", code="invalid_token") from exc
    if claims.get("typ") != "access":
        raise Unauthorized("not an access token", code="invalid_token")
    try:
        return Principal(
            user_id=uuid.UUID(claims["sub"]), role=str(claims["role"]), token_version=int(claims.get("tv", 0))
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise Unauthorized("invalid access token", code="invalid_token") from exc
