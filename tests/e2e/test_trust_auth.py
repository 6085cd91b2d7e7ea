"""Issue #9.3/#9.4: tokens follow their accounts; logins and writes are rate limited; hashing is off the loop."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import delete, update

from smartcourse.models import User
from smartcourse.security import issue_access_token
from tests.conftest import Api


@pytest.fixture
def tuned(container: Any) -> Iterator[Any]:
    """Change some settings of the running container for one test."""
    original = container.settings

    def tune(**changes: Any) -> None:
        container.settings = original.model_copy(update=changes)

    yield tune
    container.settings = original


async def test_token_of_an_unknown_user_is_401_everywhere(api: Api, container: Any) -> None:
    token = issue_access_token(container.settings, user_id=uuid.uuid4(), role="admin")
    headers = {"Authorization": f"Bearer {token}"}
    for method, path, body in [
        ("GET", "/auth/me", None),
        ("GET", "/analytics/dashboard", None),
        ("POST", "/enrollments", {"course_id": str(uuid.uuid4())}),
        ("POST", "/courses", {"title": "T", "description": "D", "category": "c"}),
    ]:
        r = await api.client.request(method, path, json=body, headers=headers)
        assert r.status_code == 401, (path, r.text)
        assert r.json()["code"] == "account_not_found"


async def test_deleted_user_token_stops_working(api: Api, container: Any) -> None:
    # The row is made and removed behind the API's back (as an operator's DELETE would): no user.registered
    # event, so the analytics counters stay in step with the table for the suite's final reconcile.
    uid = uuid.uuid4()
    async with container.uow() as uow:
        uow.session.add(User(id=uid, email=f"{uid.hex}@x.io", password_hash="-", full_name="Gone", role="student"))
        await uow.commit()
    headers = {"Authorization": f"Bearer {issue_access_token(container.settings, user_id=uid, role='student')}"}
    assert (await api.client.get("/auth/me", headers=headers)).status_code == 200
    async with container.uow() as uow:
        await uow.session.execute(delete(User).where(User.id == uid))
        await uow.commit()
    r = await api.client.post("/enrollments", json={"course_id": str(uuid.uuid4())}, headers=headers)
    assert r.status_code == 401 and r.json()["code"] == "account_not_found"


async def test_disabled_account_is_refused_at_once(api: Api, container: Any) -> None:
    from smartcourse.services import accounts

    user = await api.user()
    assert (await api.client.get("/auth/me", headers=user["headers"])).status_code == 200
    async with container.uow() as uow:
        await accounts.set_active(uow=uow, user_id=uuid.UUID(user["id"]), active=False)
    r = await api.client.get("/auth/me", headers=user["headers"])
    assert r.status_code == 401
    assert (await api.client.post("/auth/refresh", json={"refresh_token": user["refresh_token"]})).status_code == 401


async def test_an_admin_disables_an_account_over_http(api: Api, container: Any) -> None:
    admin, user = await api.admin(container), await api.user()
    url = f"/users/{user['id']}"
    assert (await api.client.get("/auth/me", headers=user["headers"])).json()["is_active"] is True
    r = await api.client.put(url, json={"is_active": False}, headers=user["headers"])
    assert r.status_code == 403 and r.json()["code"] == "admin_only"
    r = await api.client.put(url, json={"is_active": False}, headers=admin["headers"])
    assert r.status_code == 200 and r.json()["is_active"] is False
    # The admin can confirm it later.
    r = await api.client.get(url, headers=admin["headers"])
    assert r.status_code == 200 and r.json()["is_active"] is False
    r = await api.client.get("/auth/me", headers=user["headers"])
    assert r.status_code == 401 and r.json()["code"] == "account_disabled"
    r = await api.client.post("/auth/login", json={"email": user["email"], "password": user["password"]})
    assert r.status_code == 401
    r = await api.client.put(url, json={"is_active": True}, headers=admin["headers"])
    assert r.status_code == 200 and r.json()["is_active"] is True
    assert (await api.client.get(url, headers=admin["headers"])).json()["is_active"] is True
    # A token issued before the disable stays dead, and says why without claiming a password change.
    r = await api.client.get("/auth/me", headers=user["headers"])
    assert r.status_code == 401 and r.json()["code"] == "token_revoked"
    assert r.json()["message"] == (
        "this token was revoked (password changed, role changed, account disabled or a stolen session "
        "detected); refresh or log in again"
    )
    r = await api.client.post("/auth/login", json={"email": user["email"], "password": user["password"]})
    assert r.status_code == 200
    # Another user still cannot read the account at all.
    other = await api.user()
    assert (await api.client.get(url, headers=other["headers"])).status_code == 403


async def test_a_demoted_role_applies_to_existing_tokens(api: Api, container: Any, worker: object) -> None:
    """A role changed in the database applies to tokens already issued, and an instructor demoted to student keeps
    no owner's powers over the courses they made (explore30 F4: they could still edit them and read their
    analytics)."""
    user = await api.user("instructor")
    course = await api.published_course(user)
    async with container.uow() as uow:
        await uow.session.execute(update(User).where(User.id == uuid.UUID(user["id"])).values(role="student"))
        await uow.commit()
    try:
        r = await api.client.post(
            "/courses", json={"title": "T", "description": "D", "category": "c"}, headers=user["headers"]
        )
        assert r.status_code == 403
        r = await api.client.put(f"/courses/{course['id']}", json={"title": "Mine still?"}, headers=user["headers"])
        assert (r.status_code, r.json()["code"]) == (403, "not_course_owner"), r.text
        r = await api.client.get(f"/analytics/course/{course['id']}", headers=user["headers"])
        assert r.status_code == 404, r.text
        r = await api.client.get(f"/courses/{course['id']}/roster", headers=user["headers"])
        assert r.status_code in (403, 404), r.text
    finally:
        # Put the role back: the demotion was made behind the API's back (no event), and the suite's final
        # analytics reconcile counts instructors by role.
        async with container.uow() as uow:
            await uow.session.execute(update(User).where(User.id == uuid.UUID(user["id"])).values(role="instructor"))
            await uow.commit()
    r = await api.client.put(f"/courses/{course['id']}", json={"title": "Mine again"}, headers=user["headers"])
    assert r.status_code == 200, r.text


async def test_an_admin_changes_an_accounts_role_over_http(api: Api, container: Any, worker: object) -> None:
    """`PUT /users/{id}` with `role`: admins only, not their own; an instructor who owns courses and a student in a
    course keep theirs; the new role holds for tokens already issued, and analytics counts the account under it."""
    from tests.e2e.test_enrollment import assert_no_drift, fast_students

    admin, (student, live), (teacher, other) = (
        await api.admin(container),
        await fast_students(container, 2),
        await fast_students(container, 2, "instructor"),
    )
    url = f"/users/{student['id']}"
    r = await api.client.put(url, json={"role": "instructor"}, headers=student["headers"])
    assert (r.status_code, r.json()["code"]) == (403, "admin_only"), r.text
    admin_id = (await api.client.get("/auth/me", headers=admin["headers"])).json()["id"]
    r = await api.client.put(f"/users/{admin_id}", json={"role": "student"}, headers=admin["headers"])
    assert (r.status_code, r.json()["code"]) == (409, "cannot_change_own_role"), r.text
    r = await api.client.put(url, json={"role": "teacher"}, headers=admin["headers"])
    assert r.status_code == 422, r.text

    # A student becomes an instructor: the access token they hold carried the old role and is cut off (the
    # catalogue's reads decide on it: explore37 F3); logged in again, they author at once.
    r = await api.client.put(url, json={"role": "instructor"}, headers=admin["headers"])
    assert r.status_code == 200 and r.json()["role"] == "instructor", r.text
    assert r.json()["tokens"] is None  # a new login only for one's own password change
    r = await api.client.get("/auth/me", headers=student["headers"])
    assert (r.status_code, r.json()["code"]) == (401, "token_revoked"), r.text
    student["headers"] = _bearer(container, student["id"], "instructor", token_version=1)  # as a refresh gives
    course = await api.course(student)
    mine = await api.client.get("/courses", params={"mine": "true"}, headers=student["headers"])
    assert [c["id"] for c in mine.json()["items"]] == [course["id"]], mine.text
    # ...and, owning a course, stays one.
    r = await api.client.put(url, json={"role": "student"}, headers=admin["headers"])
    assert (r.status_code, r.json()["code"], r.json()["details"]) == (409, "owns_courses", {"courses": 1}), r.text
    assert (await api.client.get(url, headers=admin["headers"])).json()["role"] == "instructor"

    # A student with a live enrollment keeps the role; an instructor may become an admin, and an admin who owns
    # courses does not become a student (explore37 F4).
    published = await api.published_course(teacher)
    r = await api.client.post("/enrollments", json={"course_id": published["id"]}, headers=live["headers"])
    assert r.status_code in (201, 202), r.text
    r = await api.client.put(f"/users/{live['id']}", json={"role": "instructor"}, headers=admin["headers"])
    assert (r.status_code, r.json()["code"]) == (409, "has_live_enrollments"), r.text
    for who in (other, teacher):
        r = await api.client.put(f"/users/{who['id']}", json={"role": "admin"}, headers=admin["headers"])
        assert r.status_code == 200 and r.json()["role"] == "admin", r.text
    other["headers"] = _bearer(container, other["id"], "admin", token_version=1)
    assert (await api.client.get("/users", headers=other["headers"])).status_code == 200
    r = await api.client.put(f"/users/{teacher['id']}", json={"role": "student"}, headers=other["headers"])
    assert (r.status_code, r.json()["code"]) == (409, "owns_courses"), r.text
    # Two admins demoting each other at once: one of them remains (explore37 F5).
    first, second = await asyncio.gather(
        api.client.put(f"/users/{admin_id}", json={"role": "instructor"}, headers=other["headers"]),
        api.client.put(f"/users/{other['id']}", json={"role": "instructor"}, headers=admin["headers"]),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 403], (first.text, second.text)
    remaining = other if first.status_code == 200 else admin

    # The registered-users counters follow the roles (the consumer read user.role_changed).
    await assert_no_drift(api, container, remaining, ("registered_students", "registered_instructors"))


async def test_two_admins_disabling_or_demoting_each_other_at_once_leave_one_active_admin(
    api: Api, container: Any
) -> None:
    """explore59 F1: two admins disabling each other at once (or one disabling while the other demoted) both
    succeeded and left no active admin: the API could not be administered any more. Disabling an admin is serial with
    every change of admins, and re-reads the caller under it."""
    for second_change in ({"is_active": False}, {"role": "instructor"}):
        one, two = await api.admin(container), await api.admin(container)
        ids = [(await api.client.get("/auth/me", headers=a["headers"])).json()["id"] for a in (one, two)]
        first, second = await asyncio.gather(
            api.client.put(f"/users/{ids[1]}", json={"is_active": False}, headers=one["headers"]),
            api.client.put(f"/users/{ids[0]}", json=second_change, headers=two["headers"]),
        )
        statuses = sorted([first.status_code, second.status_code])
        refused = first if first.status_code != 200 else second
        assert statuses in ([200, 401], [200, 403]), (second_change, first.text, second.text)
        assert refused.json()["code"] in ("admin_only", "token_revoked", "account_disabled"), refused.text
        kept = [u for u in [await _user_row(container, i) for i in ids] if u.role == "admin" and u.is_active]
        assert len(kept) == 1, (second_change, first.text, second.text)


async def _user_row(container: Any, user_id: str) -> Any:
    from smartcourse.models import User

    async with container.uow() as uow:
        return await uow.session.get(User, uuid.UUID(user_id))


def _bearer(container: Any, user_id: str, role: str, *, token_version: int = 0) -> dict[str, str]:
    token = issue_access_token(container.settings, user_id=uuid.UUID(user_id), role=role, token_version=token_version)
    return {"Authorization": f"Bearer {token}"}


async def test_password_change_needs_the_current_password_and_ends_other_sessions(api: Api) -> None:
    user = await api.user()
    other = (await api.client.post("/auth/login", json={"email": user["email"], "password": user["password"]})).json()
    url = f"/users/{user['id']}"
    r = await api.client.put(url, json={"password": "a-new-password"}, headers=user["headers"])
    assert r.status_code == 422 and r.json()["code"] == "current_password_required"
    # Sent without a new password ("to confirm" an edit), it was accepted unchecked (explore13 F10).
    r = await api.client.put(url, json={"full_name": "New", "current_password": "x"}, headers=user["headers"])
    assert (r.status_code, r.json()["code"]) == (422, "invalid_field")
    assert r.json()["details"][0]["field"] == "current_password"
    r = await api.client.put(
        url, json={"password": "a-new-password", "current_password": "not-it-at-all"}, headers=user["headers"]
    )
    assert r.status_code == 403 and r.json()["code"] == "wrong_current_password"
    # The same password again is no change (explore59 F4: accepted, every session ended for nothing) ...
    r = await api.client.put(
        url, json={"password": user["password"], "current_password": user["password"]}, headers=user["headers"]
    )
    assert (r.status_code, r.json()["code"]) == (422, "password_unchanged"), r.text
    assert r.json()["details"][0]["field"] == "password", r.text  # a list, as a refused password's
    # ... and a guessable one is refused, as at registration.
    r = await api.client.put(
        url, json={"password": "password123", "current_password": user["password"]}, headers=user["headers"]
    )
    assert (r.status_code, r.json()["code"]) == (422, "password_too_weak"), r.text
    r = await api.client.put(
        url, json={"password": "a-new-password", "current_password": user["password"]}, headers=user["headers"]
    )
    assert r.status_code == 200, r.text
    # The device that changed it gets a new login with the answer (explore60 F6: it was left with a dead session).
    fresh = r.json()["tokens"]
    assert fresh["token_type"] == "bearer" and fresh["expires_in"] > 0, r.text
    assert (await api.client.get("/auth/me", headers={"Authorization": f"Bearer {fresh['access_token']}"})).json()[
        "id"
    ] == user["id"]
    renewed = await api.client.post("/auth/refresh", json={"refresh_token": fresh["refresh_token"]})
    assert renewed.status_code == 200, renewed.text
    # Every earlier access token and every refresh token is dead.
    r = await api.client.get("/auth/me", headers={"Authorization": f"Bearer {other['access_token']}"})
    assert r.status_code == 401 and r.json()["code"] == "token_revoked"
    assert (await api.client.get("/auth/me", headers=user["headers"])).status_code == 401
    for refresh in (user["refresh_token"], other["refresh_token"]):
        assert (await api.client.post("/auth/refresh", json={"refresh_token": refresh})).status_code == 401
    r = await api.client.post("/auth/login", json={"email": user["email"], "password": "a-new-password"})
    assert r.status_code == 200
    assert (
        await api.client.get("/auth/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"})
    ).status_code == 200


async def test_a_guessable_password_is_refused_wherever_one_is_chosen(api: Api, container: Any) -> None:
    """explore59 F4: `password`, `12345678` and `aaaaaaaa` were accepted (NIST SP 800-63B has a new password checked
    against lists of common ones). Registration, the reset's confirm, an admin's reset and `create-admin` refuse
    them, 422 `password_too_weak` naming why; logging in with an old one still works (nothing is checked there)."""
    from pydantic import ValidationError

    from smartcourse.services import accounts

    for weak in ("password", "12345678", "aaaaaaaa", "password-1", "qwertyuiop"):
        body = {"email": f"{uuid.uuid4().hex}@x.io", "password": weak, "full_name": "X", "role": "student"}
        r = await api.client.post("/auth/register", json=body)
        assert (r.status_code, r.json()["code"]) == (422, "password_too_weak"), (weak, r.text)
        assert r.json()["details"][0]["field"] == "password" and "too easy to guess" in r.json()["message"], r.text
    # The account's own address is no password (explore62 F4); a long one is read, not refused (explore62 F1).
    email = f"ada.{uuid.uuid4().hex[:8]}@x.io"
    own = {"email": email, "password": email, "full_name": "Ada Lovelace", "role": "student"}
    r = await api.client.post("/auth/register", json=own)
    assert (r.status_code, r.json()["code"]) == (422, "password_too_weak"), r.text
    r = await api.client.post("/auth/register", json={**own, "password": secrets.token_urlsafe(96)[:128]})
    assert r.status_code == 201, r.text
    admin, user = await api.admin(container), await api.user()
    r = await api.client.put(f"/users/{user['id']}", json={"password": "iloveyou"}, headers=admin["headers"])
    assert (r.status_code, r.json()["code"]) == (422, "password_too_weak"), r.text
    assert r.json()["details"] == [{"field": "password", "message": r.json()["message"], "type": "value_error"}]
    r = await api.client.post("/auth/password-reset/confirm", json={"token": "x" * 40, "password": "letmein"})
    assert r.status_code == 422 and r.json()["code"] in ("password_too_weak", "validation_error"), r.text
    with pytest.raises(ValidationError, match="too easy to guess"):
        async with container.uow() as uow:
            await accounts.create_admin(uow=uow, email="weak@example.com", password="admin12345", full_name="A")


async def test_instructor_accounts_can_be_made_by_admins_only(api: Api, container: Any) -> None:
    """explore59 F2: anyone could register as an instructor and have certificates issued for any title. With
    INSTRUCTOR_REGISTRATION=admins an instructor account is an admin's to make; students still register."""
    from smartcourse.errors import Forbidden
    from smartcourse.schemas import RegisterIn
    from smartcourse.services import accounts

    closed = container.settings.model_copy(update={"instructor_registration": "admins"})

    def body(role: str) -> RegisterIn:
        return RegisterIn(email=f"{uuid.uuid4().hex}@x.io", password="quartz-lantern-1", full_name="X", role=role)

    async with container.uow() as uow:
        with pytest.raises(Forbidden) as refused:
            await accounts.register(uow=uow, data=body("instructor"), settings=closed)
    assert refused.value.code == "instructor_registration_closed"
    async with container.uow() as uow:
        assert (await accounts.register(uow=uow, data=body("student"), settings=closed)).role == "student"
    async with container.uow() as uow:  # the default: open
        assert (await accounts.register(uow=uow, data=body("instructor"), settings=container.settings)).role == (
            "instructor"
        )


async def test_wrong_current_passwords_count_as_failed_logins(api: Api, container: Any) -> None:
    """A stolen access token guesses `current_password` no faster than a login guesses the password: the same
    back-off, shared with the login (explore8 F1: 15 guesses in a row used to be 403 each, then a takeover)."""
    from smartcourse.ratelimit import backoff, key_part

    user = await api.user()
    url, free = f"/users/{user['id']}", container.settings.login_free_failures
    guess = {"password": "a-new-password", "current_password": "not-it-at-all"}
    for _ in range(free + 1):  # the last one starts the lock
        r = await api.client.put(url, json=guess, headers=user["headers"])
        assert (r.status_code, r.json()["code"]) == (403, "wrong_current_password"), r.text
    right = {"password": "a-new-password", "current_password": user["password"]}
    r = await api.client.put(url, json=right, headers=user["headers"])  # even the right one, while locked
    assert (r.status_code, r.json()["code"]) == (429, "rate_limited") and int(r.headers["Retry-After"]) >= 1, r.text
    r = await api.client.post("/auth/login", json={"email": user["email"], "password": user["password"]})
    assert r.status_code == 429, r.text  # one count for the account: the login is locked too
    r = await api.client.get(f"/users/{user['id']}", headers=user["headers"])
    assert r.status_code == 200  # the token still works for everything else; nothing was changed
    await container.redis().delete(backoff(container)._keys(("login", key_part(user["email"])))[1])
    r = await api.client.put(url, json=right, headers=user["headers"])
    assert r.status_code == 200, r.text
    assert await container.redis().get(backoff(container)._keys(("login", key_part(user["email"])))[0]) is None


async def test_wrong_passwords_lock_the_account_with_growing_backoff(api: Api, container: Any) -> None:
    user = await api.user()
    free = container.settings.login_free_failures
    creds = {"email": user["email"], "password": "wrong-password"}
    for _ in range(free):
        assert (await api.client.post("/auth/login", json=creds)).status_code == 401
    assert (await api.client.post("/auth/login", json=creds)).status_code == 401  # starts the lock
    # Now even the right password is refused until the lock expires.
    r = await api.client.post("/auth/login", json={"email": user["email"], "password": user["password"]})
    assert r.status_code == 429 and r.json()["code"] == "rate_limited"
    first = int(r.headers["Retry-After"])
    assert first >= 1
    # Expire the lock by hand: the next wrong password locks for twice as long.
    from smartcourse.ratelimit import backoff, key_part, rate_limiter

    redis = container.redis()
    await redis.delete(backoff(container)._keys(("login", key_part(user["email"])))[1])
    assert (await api.client.post("/auth/login", json=creds)).status_code == 401
    r = await api.client.post("/auth/login", json={"email": user["email"], "password": user["password"]})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > first
    await backoff(container).success(("login", key_part(user["email"])))
    # (the per-account window, 10/minute by default, has seen these attempts too)
    await rate_limiter(container).clear(
        ("login", "account", key_part(user["email"])), container.settings.login_rate_limit_account
    )
    r = await api.client.post("/auth/login", json={"email": user["email"], "password": user["password"]})
    assert r.status_code == 200


async def test_a_known_device_is_not_locked_out_by_guesses_from_elsewhere(api: Api, container: Any, tuned: Any) -> None:
    """explore8 F15: about 60 wrong logins an hour, sent by anyone who knows the address, kept the account locked for
    its owner. A login with the device token of an earlier success has a back-off and a window of its own."""
    from smartcourse.ratelimit import key_part
    from smartcourse.security import issue_device_token

    user = await api.user()
    tuned(login_rate_limit_ip="1000/minute", login_rate_limit_account="8/minute")
    good = {"email": user["email"], "password": user["password"]}
    r = await api.client.post("/auth/login", json=good)
    assert r.status_code == 200, r.text
    device = r.json()["device_token"]
    assert device and r.json()["access_token"]
    wrong = {"email": user["email"], "password": "wrong-password"}
    codes = [(await api.client.post("/auth/login", json=wrong)).status_code for _ in range(8)]
    assert codes == [401] * (container.settings.login_free_failures + 1) + [429] * (
        7 - container.settings.login_free_failures
    )
    assert (await api.client.post("/auth/login", json=good)).status_code == 429  # an unknown device: locked out
    r = await api.client.post("/auth/login", json={**good, "device_token": device})
    assert r.status_code == 200, r.text  # its owner's device is not
    assert r.json()["device_token"] == device
    assert (await api.client.post("/auth/login", json=good)).status_code == 429  # and the others' lock stays

    # Another account's token, a forged one or garbage: an unknown device, never an error.
    forged = issue_device_token(
        container.settings.model_copy(update={"jwt_secret": "x" * 64}), account=key_part(user["email"])
    )
    someone = await api.user()
    other = await api.client.post("/auth/login", json={"email": someone["email"], "password": someone["password"]})
    assert other.status_code == 200 and other.json()["device_token"] not in (None, device)
    for token in [other.json()["device_token"], forged, "not-a-token"]:
        r = await api.client.post("/auth/login", json={**good, "device_token": token})
        assert r.status_code == 429, r.text

    # The device's own guesses lock the device, after its own free failures.
    guesses = [
        (await api.client.post("/auth/login", json={**wrong, "device_token": device})).status_code
        for _ in range(container.settings.login_free_failures + 2)
    ]
    assert guesses[-1] == 429 and guesses.count(401) == container.settings.login_free_failures + 1, guesses


async def test_concurrent_wrong_passwords_get_no_more_checks_than_sequential_ones(
    api: Api, container: Any, tuned: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/security.md: LOGIN_FREE_FAILURES wrong passwords, then a lock, whatever the concurrency (the back-off
    used to be looked at before the password check and counted after it: a burst was checked in full)."""
    from smartcourse.ratelimit import backoff, key_part
    from smartcourse.services import accounts

    user = await api.user()
    tuned(login_rate_limit_ip="1000/minute", login_rate_limit_account="1000/minute")  # the back-off alone
    real_verify = accounts.verify_password_async
    checks: list[str] = []

    async def slow_verify(password: str, password_hash: str | None) -> bool:
        checks.append(password)
        await asyncio.sleep(0.3)  # every request of the burst gets past the back-off before the first one fails
        return await real_verify(password, password_hash)

    monkeypatch.setattr(accounts, "verify_password_async", slow_verify)
    wrong = {"email": user["email"], "password": "wrong-password"}
    answers = await asyncio.gather(*(api.client.post("/auth/login", json=wrong) for _ in range(30)))
    free = container.settings.login_free_failures
    codes = [r.status_code for r in answers]
    assert len(checks) == free + 1, codes  # as many as one after the other: the last of them starts the lock
    assert codes.count(401) == free + 1 and codes.count(429) == 30 - free - 1, codes
    assert all(r.headers["Retry-After"] for r in answers if r.status_code == 429)
    r = await api.client.post("/auth/login", json={"email": user["email"], "password": user["password"]})
    assert r.status_code == 429 and len(checks) == free + 1  # locked: refused without a check
    await backoff(container).success(("login", key_part(user["email"])))


async def test_login_is_rate_limited_per_account_and_per_address(api: Api, tuned: Any) -> None:
    user = await api.user()
    tuned(login_rate_limit_account="2/minute")
    good = {"email": user["email"], "password": user["password"]}
    assert [(await api.client.post("/auth/login", json=good)).status_code for _ in range(3)] == [200, 200, 429]
    tuned(login_rate_limit_ip=f"1/minute;{uuid.uuid4().int % 1000 + 2}/hour")
    codes = [
        (await api.client.post("/auth/login", json={"email": f"{uuid.uuid4().hex}@x.io", "password": "p"})).status_code
        for _ in range(2)
    ]
    assert codes[-1] == 429


async def test_register_is_rate_limited_per_address(api: Api, tuned: Any) -> None:
    tuned(register_rate_limit_ip="1/minute")

    def body() -> dict[str, str]:
        return {"email": f"{uuid.uuid4().hex}@x.io", "password": "password-123", "full_name": "X", "role": "student"}

    first = await api.client.post("/auth/register", json=body())
    second = await api.client.post("/auth/register", json=body())
    assert second.status_code == 429, second.text
    assert first.status_code in (201, 429) and "Retry-After" in second.headers


async def test_writes_are_rate_limited_per_user(api: Api, tuned: Any) -> None:
    teacher, other = await api.user("instructor"), await api.user("instructor")
    tuned(rate_limit_per_minute=3)
    body = {"title": "T", "description": "D", "category": "c"}
    codes = [(await api.client.post("/courses", json=body, headers=teacher["headers"])).status_code for _ in range(4)]
    assert codes == [201, 201, 201, 429]
    assert (await api.client.post("/courses", json=body, headers=other["headers"])).status_code == 201
    assert (await api.client.get("/auth/me", headers=teacher["headers"])).status_code == 200  # reads are not


async def test_the_limit_dependency_for_other_routes(container: Any) -> None:
    """`dependencies=[limit(...)]`: the way other features (the assistant) put a route under a quota."""
    import httpx
    from fastapi import APIRouter

    from smartcourse.api.app import create_app
    from smartcourse.api.ratelimit import limit

    router = APIRouter()
    scope = f"test-{uuid.uuid4().hex[:8]}"

    @router.get("/limited", dependencies=[limit(scope, "2/minute", per="ip")])
    async def limited() -> dict[str, bool]:
        return {"ok": True}

    transport = httpx.ASGITransport(app=create_app(router))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        codes = [(await c.get("/limited")).status_code for _ in range(3)]
        r = await c.get("/limited")
    assert codes == [200, 200, 429]
    assert r.json()["code"] == "rate_limited" and int(r.headers["Retry-After"]) >= 1


async def test_an_admin_reset_ends_a_lock_out(api: Api, container: Any) -> None:
    """explore9: after an admin reset the user was still refused 429 until the lock expired."""
    user = await api.user()
    admin = await api.admin(container)
    creds = {"email": user["email"], "password": "wrong-password"}
    for _ in range(container.settings.login_free_failures + 1):
        assert (await api.client.post("/auth/login", json=creds)).status_code == 401
    locked = await api.client.post("/auth/login", json={"email": user["email"], "password": user["password"]})
    assert locked.status_code == 429
    # A current_password sent by the admin is not the user's to check (explore13 F10: it was, and each wrong one
    # counted toward the user's lock-out).
    reset = {"password": "reset-by-admin", "current_password": "the-admins-own"}
    r = await api.client.put(f"/users/{user['id']}", json=reset, headers=admin["headers"])
    assert r.status_code == 200, r.text
    r = await api.client.post("/auth/login", json={"email": user["email"], "password": "reset-by-admin"})
    assert r.status_code == 200, r.text


async def test_an_admin_changes_an_accounts_address(api: Api, container: Any) -> None:
    """explore68 F6: HR changed an employee's address and nobody could change the account's (422 extra_forbidden):
    the sync made a second account and split the training record. An admin changes it; its sessions end."""
    admin = await api.admin(container)
    user, other = await api.user(), await api.user()
    new = f"renamed-{uuid.uuid4().hex[:10]}@academy.example"
    r = await api.client.put(f"/users/{user['id']}", json={"email": new}, headers=user["headers"])
    assert (r.status_code, r.json()["code"]) == (403, "admin_only"), r.text  # not one's own
    r = await api.client.put(f"/users/{user['id']}", json={"email": other["email"].upper()}, headers=admin["headers"])
    assert (r.status_code, r.json()["code"]) == (409, "email_taken"), r.text
    assert r.json()["details"] == {"user_id": other["id"]}, r.text
    r = await api.client.put(f"/users/{user['id']}", json={"email": new}, headers=admin["headers"])
    assert r.status_code == 200 and r.json()["email"] == new, r.text
    assert (await api.client.get("/auth/me", headers=user["headers"])).status_code == 401  # signed out
    old = await api.client.post("/auth/login", json={"email": user["email"], "password": user["password"]})
    assert old.status_code == 401
    r = await api.client.post("/auth/login", json={"email": new.upper(), "password": user["password"]})
    assert r.status_code == 200, r.text
    r = await api.client.put(f"/users/{user['id']}", json={"email": "not an address"}, headers=admin["headers"])
    assert (r.status_code, r.json()["code"]) == (422, "validation_error"), r.text
    me = (await api.client.get("/auth/me", headers=admin["headers"])).json()
    r = await api.client.put(f"/users/{me['id']}", json={"email": f"x-{new}"}, headers=admin["headers"])
    assert (r.status_code, r.json()["code"]) == (403, "admin_only"), r.text  # an admin's own too (explore71 F1)


async def test_names_kept_by_admins_when_the_platform_says_so(api: Api, container: Any) -> None:
    """explore68 F7: a student renamed themselves "Chief Executive Officer", completed a course and renamed back: the
    certificate vouches for the invented name. `NAME_CHANGES=admins` keeps names with the admins."""
    admin = await api.admin(container)
    user = await api.user()
    original = container.settings
    container.settings = original.model_copy(update={"name_changes": "admins"})
    try:
        r = await api.client.put(
            f"/users/{user['id']}", json={"full_name": "Chief Executive Officer"}, headers=user["headers"]
        )
        assert (r.status_code, r.json()["code"]) == (403, "name_managed_by_admins"), r.text
        r = await api.client.put(
            f"/users/{user['id']}", json={"full_name": user["full_name"], "bio": "mine"}, headers=user["headers"]
        )
        assert r.status_code == 200, r.text  # the same name sent back with a profile edit is no change
        r = await api.client.put(f"/users/{user['id']}", json={"full_name": "HR Name"}, headers=admin["headers"])
        assert r.status_code == 200 and r.json()["full_name"] == "HR Name", r.text
    finally:
        container.settings = original
    r = await api.client.put(f"/users/{user['id']}", json={"full_name": "My Own"}, headers=user["headers"])
    assert r.status_code == 200, r.text  # the default: anyone names themselves
