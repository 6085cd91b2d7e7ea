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


def test_a_password_is_the_same_in_any_unicode_form() -> None:
    """NFKC before hashing and verifying (NIST SP 800-63B): the decomposed form of "päss" is the same password; a
    hash made before normalization (of the characters as typed) still verifies."""
    import unicodedata

    composed = "p\u00e4ss-w\u00f6rd-long"
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    h = hash_password(composed)
    assert verify_password(decomposed, h) and verify_password(composed, h)
    from smartcourse.security import _hasher

    legacy = _hasher().hash(decomposed)  # stored before normalization, as typed
    assert verify_password(decomposed, legacy) and not verify_password("p\u00e4ss-w\u00f6rd-lonG", legacy)


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
    expired = Settings().model_copy(update={"access_token_minutes": -1})  # a token already expired when issued
    with pytest.raises(Unauthorized, match="expired"):
        decode_access_token(s, issue_access_token(expired, user_id=uid, role="student"))


def test_production_refuses_the_development_secret() -> None:
    with pytest.raises(ValueError, match="JWT_SECRET"):
        Settings(SMARTCOURSE_ENV="production")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="JWT_SECRET"):
        Settings(SMARTCOURSE_ENV="production", JWT_SECRET="s" * 40)  # type: ignore[call-arg]


async def test_password_hashing_runs_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 takes tens of ms: in a thread pool, the loop keeps serving other requests meanwhile (#9.4). At the
    production cost: the test environment's is too cheap for a heartbeat to see."""
    import asyncio
    import time

    from smartcourse import security
    from smartcourse.security import hash_password_async, verify_password_async

    monkeypatch.setattr(security, "_hasher", lambda: security._hasher_of(3, 65536, 4))

    lags: list[float] = []
    done = asyncio.Event()

    async def heartbeat() -> None:
        while not done.is_set():
            t = time.perf_counter()
            await asyncio.sleep(0.002)
            lags.append(time.perf_counter() - t)

    await hash_password_async("warm-up")  # settings and the pool
    started = time.perf_counter()
    beat = asyncio.create_task(heartbeat())
    hashes = await asyncio.gather(*(hash_password_async(f"pw-{i}") for i in range(6)))
    assert all(await asyncio.gather(*(verify_password_async(f"pw-{i}", h) for i, h in enumerate(hashes))))
    done.set()
    await beat
    elapsed = time.perf_counter() - started
    # On the loop, the heartbeat would not run at all until every hash was done (one lag of ~elapsed).
    assert len(lags) > 10 and max(lags) < elapsed / 3, (len(lags), max(lags), elapsed)


def test_argon2_cost_is_a_setting_with_owasps_floor_outside_development() -> None:
    """The cost is the operator's (PASSWORD_HASH_*); a hash verifies whatever cost it was made with, so raising or
    lowering it never locks anyone out; production refuses less than OWASP's minimum; the test environment defaults
    to a cheap cost (explicit values stay)."""
    import secrets

    from smartcourse.security import _hasher_of

    strong = secrets.token_hex(32)
    with pytest.raises(ValueError, match="OWASP"):
        Settings(SMARTCOURSE_ENV="production", JWT_SECRET=strong, PASSWORD_HASH_MEMORY_KIB=8192)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="OWASP"):
        Settings(SMARTCOURSE_ENV="production", JWT_SECRET=strong, PASSWORD_HASH_TIME_COST=1)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="per lane"):
        Settings(PASSWORD_HASH_MEMORY_KIB=16, PASSWORD_HASH_PARALLELISM=4)  # type: ignore[call-arg]
    prod = Settings(SMARTCOURSE_ENV="production", JWT_SECRET=strong)  # type: ignore[call-arg]

    def cost(s: Settings) -> tuple[int, int, int]:
        return s.password_hash_time_cost, s.password_hash_memory_kib, s.password_hash_parallelism

    assert cost(prod) == (3, 65536, 4)
    assert cost(Settings(SMARTCOURSE_ENV="test")) == (1, 8192, 1)  # type: ignore[call-arg]
    kept = Settings(SMARTCOURSE_ENV="test", PASSWORD_HASH_TIME_COST=3)  # type: ignore[call-arg]
    assert kept.password_hash_time_cost == 3

    made_cheap = _hasher_of(1, 8192, 1).hash("correct horse")
    made_strong = _hasher_of(3, 65536, 4).hash("correct horse")
    assert "m=8192,t=1,p=1" in made_cheap and "m=65536,t=3,p=4" in made_strong
    assert verify_password("correct horse", made_cheap) and verify_password("correct horse", made_strong)
