"""Tokens and passwords."""

from __future__ import annotations

import uuid

import jwt
import pytest

from smartcourse.config import Settings
from smartcourse.errors import Unauthorized
from smartcourse.security import decode_access_token, hash_password, issue_access_token, verify_password


def test_password_hashing() -> None:
    h = hash_password("correct horse")
    assert h.startswith("$argon2") and verify_password("correct horse", h) and not verify_password("wrong", h)
    assert not verify_password("anything", None)


def test_access_token_roundtrip_and_tampering() -> None:
    s = Settings()
    uid = uuid.uuid4()
    p = decode_access_token(s, issue_access_token(s, user_id=uid, role="student"))
    assert p.user_id == uid and p.role == "student" and not p.is_admin
    forged = jwt.encode(
        {"sub": str(uid), "role": "admin", "iss": s.jwt_issuer, "exp": 9999999999, "typ": "access"}, "x" * 40
    )
    with pytest.raises(Unauthorized):
        decode_access_token(s, forged)
    expired = Settings(ACCESS_TOKEN_MINUTES=-1)  # type: ignore[call-arg]
    with pytest.raises(Unauthorized, match="expired"):
        decode_access_token(s, issue_access_token(expired, user_id=uid, role="student"))


def test_production_refuses_the_development_secret() -> None:
    with pytest.raises(ValueError, match="JWT_SECRET"):
        Settings(SMARTCOURSE_ENV="production")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="JWT_SECRET"):
        Settings(SMARTCOURSE_ENV="production", JWT_SECRET="s" * 40)  # type: ignore[call-arg]
