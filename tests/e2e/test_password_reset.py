"""A forgotten password: POST /auth/password-reset e-mails a reset code (through Celery and the SMTP sink), and
POST /auth/password-reset/confirm sets a new password with it, once, ending every session and any lock-out."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from tests.conftest import Api, read_mail

SUBJECT = "Reset your SmartCourse password"


@pytest.fixture(autouse=True)
def _room_per_address(container: Any) -> Iterator[None]:
    """The suite's requests all come from one address: its own limit (5 a minute) is not what these tests check."""
    original = container.settings
    container.settings = original.model_copy(update={"password_reset_rate_limit_ip": "1000/minute"})
    yield
    container.settings = original


async def reset_mail(container: Any, to: str, count: int = 1, timeout: float = 30) -> list[Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = [m for m in read_mail(container.settings.mail_dir, to=to) if str(m["Subject"]) == SUBJECT]
        if len(found) >= count:
            return found
        assert asyncio.get_running_loop().time() < deadline, f"{len(found)} reset e-mails to {to}, not {count}"
        await asyncio.sleep(0.2)


def code_in(mail: Any) -> str:
    body = mail.get_body(preferencelist=("plain",)).get_content()
    found = re.search(r"^\s*([\w-]+\.[\w-]+\.[\w-]+)\s*$", body, re.MULTILINE)  # the code on a line of its own
    assert found, body
    return found.group(1)


async def test_a_forgotten_password_is_reset_once_with_the_e_mailed_code(
    api: Api, container: Any, celery_worker: object
) -> None:
    user = await api.user()
    mail_sent_after = datetime.now(UTC) - timedelta(seconds=1)
    r = await api.client.post("/auth/password-reset", json={"email": user["email"].upper()})
    assert r.status_code == 202, r.text
    stranger = await api.client.post("/auth/password-reset", json={"email": f"nobody-{uuid.uuid4().hex}@example.com"})
    assert (stranger.status_code, stranger.json()) == (202, r.json())  # nothing tells who has an account

    [mail] = await reset_mail(container, user["email"])
    code = code_in(mail)
    body = mail.get_body(preferencelist=("plain",)).get_content()
    assert "30 minutes" in body and user["full_name"] in body
    # The task's outcome rows (kept, listed to admins) keep no address typed, an account's or not (explore67 F4).
    from sqlalchemy import select

    from smartcourse.models import TaskRun

    deadline = asyncio.get_running_loop().time() + 30
    while True:
        async with container.uow() as uow:
            runs = (
                await uow.session.scalars(
                    select(TaskRun).where(TaskRun.task == "accounts.send_password_reset", TaskRun.status == "succeeded")
                )
            ).all()
        if sum(1 for run in runs if run.created_at >= mail_sent_after) >= 2:
            break
        assert asyncio.get_running_loop().time() < deadline, [run.args for run in runs]
        await asyncio.sleep(0.2)
    assert runs and not [run.args for run in runs if "@" in str(run.args)]
    assert all(str(run.args["args"][0]).startswith("hidden:") for run in runs), [run.args for run in runs]
    # The code opens nothing by itself: it is no access token.
    r = await api.client.get("/auth/me", headers={"Authorization": f"Bearer {code}"})
    assert r.status_code == 401

    r = await api.client.post("/auth/password-reset/confirm", json={"token": code, "password": "short"})
    assert (r.status_code, r.json()["code"]) == (422, "validation_error")  # the registration's rules
    r = await api.client.post("/auth/password-reset/confirm", json={"token": code, "password": "a-brand-new-one"})
    assert r.status_code == 204, r.text
    # Once: the reset moved the account on.
    r = await api.client.post("/auth/password-reset/confirm", json={"token": code, "password": "yet-another-one"})
    assert (r.status_code, r.json()["code"]) == (422, "invalid_reset_token"), r.text
    # Every session ended, the old password is gone, the new one works.
    assert (await api.client.get("/auth/me", headers=user["headers"])).status_code == 401
    r = await api.client.post("/auth/refresh", json={"refresh_token": user["refresh_token"]})
    assert r.status_code == 401
    old = await api.client.post("/auth/login", json={"email": user["email"], "password": user["password"]})
    assert old.status_code == 401
    new = await api.client.post("/auth/login", json={"email": user["email"], "password": "a-brand-new-one"})
    assert new.status_code == 200, new.text


async def test_a_reset_ends_a_lock_out_and_bad_codes_are_refused(
    api: Api, container: Any, celery_worker: object
) -> None:
    user = await api.user()
    wrong = {"email": user["email"], "password": "wrong-password"}
    for _ in range(container.settings.login_free_failures + 1):
        assert (await api.client.post("/auth/login", json=wrong)).status_code == 401
    good = {"email": user["email"], "password": user["password"]}
    assert (await api.client.post("/auth/login", json=good)).status_code == 429
    assert (await api.client.post("/auth/password-reset", json={"email": user["email"]})).status_code == 202
    code = code_in((await reset_mail(container, user["email"]))[0])

    settings = container.settings
    claims = jwt.decode(code, settings.jwt_secret, algorithms=["HS256"], issuer=settings.jwt_issuer)
    expired = jwt.encode(
        {**claims, "exp": datetime.now(UTC) - timedelta(seconds=1)}, settings.jwt_secret, algorithm="HS256"
    )
    forged = jwt.encode(claims, "x" * 64, algorithm="HS256")
    access_token = user["access_token"]  # a token of another type
    for token in (expired, forged, access_token, "not-a-token"):
        r = await api.client.post("/auth/password-reset/confirm", json={"token": token, "password": "new-password-1"})
        assert (r.status_code, r.json()["code"]) == (422, "invalid_reset_token"), r.text

    r = await api.client.post("/auth/password-reset/confirm", json={"token": code, "password": "new-password-1"})
    assert r.status_code == 204, r.text
    r = await api.client.post("/auth/login", json={"email": user["email"], "password": "new-password-1"})
    assert r.status_code == 200, r.text  # the lock-out ended with the reset


async def test_reset_requests_are_limited_per_address(api: Api, container: Any, celery_worker: object) -> None:
    user = await api.user()
    codes = [
        (await api.client.post("/auth/password-reset", json={"email": user["email"]})).status_code for _ in range(4)
    ]
    assert codes == [202, 202, 202, 429], codes  # PASSWORD_RESET_RATE_LIMIT_ACCOUNT: 3/hour
    # ... from this client: anyone else (the owner, say) still may (explore30 F2: three anonymous requests spent
    # the owner's resets for an hour), up to the address's cap from anywhere (…_ACCOUNT_ALL: 10/hour).
    from smartcourse.errors import RateLimited
    from smartcourse.ratelimit import rate_limiter
    from smartcourse.services import accounts

    async def from_elsewhere(ip: str) -> None:
        await accounts.request_password_reset(
            settings=container.settings,
            email=user["email"],
            enqueue=lambda email: True,
            limiter=rate_limiter(container),
            client_ip=ip,
        )

    for n in range(7):  # 3 + 7 = 10
        await from_elsewhere(f"203.0.113.{n + 1}")
    with pytest.raises(RateLimited):
        await from_elsewhere("203.0.113.99")
    mails = await reset_mail(container, user["email"], count=3)
    await asyncio.sleep(1)
    assert len([m for m in read_mail(container.settings.mail_dir, to=user["email"]) if m["Subject"] == SUBJECT]) == 3
    assert len(mails) == 3


async def test_a_reset_the_broker_does_not_take_is_a_503_to_retry(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from smartcourse import tasks

    def refuse(*_: Any, **__: Any) -> None:
        raise ConnectionRefusedError("the broker is down")

    monkeypatch.setattr(tasks.send_password_reset_task, "apply_async", refuse)
    r = await api.client.post("/auth/password-reset", json={"email": f"anyone-{uuid.uuid4().hex}@example.com"})
    assert (r.status_code, r.json()["code"]) == (503, "service_unavailable"), r.text
    assert int(r.headers["Retry-After"]) >= 1


async def test_an_address_beyond_ascii_gets_its_reset_code(api: Api, container: Any, celery_worker: object) -> None:
    """explore12 F1: a registration takes `zoë@…`, but `formataddr` refuses such an address, so its e-mails (this one,
    and every notification's) failed for ever. It goes out with SMTPUTF8."""
    email = f"zoë-{uuid.uuid4().hex[:8]}@example.com"
    r = await api.client.post(
        "/auth/register", json={"email": email, "password": "a-long-password", "full_name": "Zoë", "role": "student"}
    )
    assert r.status_code == 201, r.text
    assert (await api.client.post("/auth/password-reset", json={"email": email})).status_code == 202
    [mail] = await reset_mail(container, email)
    assert email in str(mail["To"])
    r = await api.client.post("/auth/password-reset/confirm", json={"token": code_in(mail), "password": "zoë-new-pass"})
    assert r.status_code == 204, r.text


async def test_a_reset_ends_the_lock_out_of_the_owners_own_device(
    api: Api, container: Any, celery_worker: object
) -> None:
    """explore12 F2: the owner, having forgotten the password, locked their own device with wrong guesses; the reset
    ended the account-wide lock only, and that device stayed refused for up to 15 minutes."""
    user = await api.user()
    device = user["device_token"]
    wrong = {"email": user["email"], "password": "wrong-password", "device_token": device}
    for _ in range(container.settings.login_free_failures + 1):
        assert (await api.client.post("/auth/login", json=wrong)).status_code == 401
    assert (await api.client.post("/auth/login", json=wrong)).status_code == 429  # the device is locked
    assert (await api.client.post("/auth/password-reset", json={"email": user["email"]})).status_code == 202
    code = code_in((await reset_mail(container, user["email"]))[0])
    r = await api.client.post("/auth/password-reset/confirm", json={"token": code, "password": "a-fresh-password"})
    assert r.status_code == 204, r.text
    r = await api.client.post(
        "/auth/login", json={"email": user["email"], "password": "a-fresh-password", "device_token": device}
    )
    assert r.status_code == 200, r.text
    assert r.json()["device_token"] != device  # the old token counts as an unknown device now: a new one is given


async def test_an_admin_makes_accounts_and_invites_their_owners(
    api: Api, container: Any, celery_worker: object
) -> None:
    """explore68 F1: an HR sync could only use the public sign-up (10 a minute and 50 an hour from its address),
    inventing a password per employee. An admin makes accounts (`POST /users`), under the admin's write limit; made
    without a password, its owner is invited by e-mail to choose one."""
    admin = await api.admin(container)
    tag = uuid.uuid4().hex[:10]
    made = []
    for i in range(12):  # more than the sign-up's 10 a minute from one address
        r = await api.client.post(
            "/users",
            json={"email": f"emp{i}-{tag}@academy.example", "full_name": f"Employee {i}"},
            headers=admin["headers"],
        )
        assert r.status_code == 201 and r.headers["location"] == f"/users/{r.json()['id']}", r.text
        made.append(r.json())
    assert all(m["invited"] and m["role"] == "student" for m in made), made
    [mail] = await _mails(container, made[0]["email"], "Your SmartCourse account: choose your password")
    body = mail.get_body(preferencelist=("plain",)).get_content()
    assert "an administrator made you a SmartCourse account" in body and "7 days" in body, body
    r = await api.client.post(
        "/auth/password-reset/confirm", json={"token": code_in(mail), "password": "lantern-orchard-99"}
    )
    assert r.status_code == 204, r.text
    r = await api.client.post("/auth/login", json={"email": made[0]["email"], "password": "lantern-orchard-99"})
    assert r.status_code == 200, r.text
    # With a password: the account's, no invitation; an instructor too.
    r = await api.client.post(
        "/users",
        json={
            "email": f"trainer-{tag}@academy.example",
            "full_name": "A Trainer",
            "role": "instructor",
            "password": "quiet-meadow-ledger-4",
        },
        headers=admin["headers"],
    )
    assert r.status_code == 201 and (r.json()["invited"], r.json()["role"]) == (False, "instructor"), r.text
    login = {"email": f"trainer-{tag}@academy.example", "password": "quiet-meadow-ledger-4"}
    assert (await api.client.post("/auth/login", json=login)).status_code == 200
    # Taken: named, for the sync to carry on with; a weak password refused; nobody else makes accounts.
    r = await api.client.post(
        "/users", json={"email": made[1]["email"].upper(), "full_name": "Again"}, headers=admin["headers"]
    )
    assert (r.status_code, r.json()["code"]) == (409, "email_taken"), r.text
    assert r.json()["details"] == {"user_id": made[1]["id"]}, r.text
    r = await api.client.post(
        "/users",
        json={"email": f"weak-{tag}@academy.example", "full_name": "Weak", "password": "password1"},
        headers=admin["headers"],
    )
    assert (r.status_code, r.json()["code"]) == (422, "password_too_weak"), r.text
    student = await api.user()
    r = await api.client.post(
        "/users", json={"email": f"x-{tag}@academy.example", "full_name": "X"}, headers=student["headers"]
    )
    assert (r.status_code, r.json()["code"]) == (403, "admin_only"), r.text


async def _mails(container: Any, to: str, subject: str, timeout: float = 30) -> list[Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = [m for m in read_mail(container.settings.mail_dir, to=to) if str(m["Subject"]) == subject]
        if found:
            return found
        assert asyncio.get_running_loop().time() < deadline, f"no '{subject}' e-mail to {to}"
        await asyncio.sleep(0.2)
