"""Token rotation interleaved with a logout or a disable of the same account at the exact moment that used to go
wrong (found by an exploratory race test): the other request is started inside the rotation's window and let run
until it waits for a lock, so each test is deterministic.

* a logout of the family while its refresh token is being rotated (the new token outlived the logout);
* an admin disabling the account while its refresh token is being rotated (a deadlock: one of the two 503);
* a disable or a logout that commits before the rotation locks anything;
* a password change that commits while a login checks the old password (its session outlived the change).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import text

from smartcourse.services import accounts
from tests.conftest import Api


async def _until_it_waits_for_a_lock(container: Any, task: asyncio.Task[Any], timeout: float = 15) -> None:
    """Return once some session of this database waits for a lock (the other request, blocked by the one under
    test), or the other request is done."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not task.done():
        async with container.uow() as uow:
            waiting = await uow.session.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
            )
        if waiting:
            return
        assert asyncio.get_running_loop().time() < deadline, "the other request neither waited nor finished"
        await asyncio.sleep(0.02)


async def _refresh(api: Api, token: str) -> Any:
    return await api.client.post("/auth/refresh", json={"refresh_token": token})


def _in_the_rotation_window(
    monkeypatch: pytest.MonkeyPatch, container: Any, other: Any, started: list[asyncio.Task[Any]]
) -> None:
    """Start `other()` when the rotation has locked what it locks and is about to insert the new token; go on once
    `other` waits for a lock (or is done)."""
    real_issue_pair = accounts._issue_pair

    async def other_request_meanwhile(
        uow: Any, settings: Any, user: Any, family_id: uuid.UUID, spent: Any = None
    ) -> Any:
        if not started:  # first: a nested rotation passes through here too
            started.append(asyncio.create_task(other()))
            await _until_it_waits_for_a_lock(container, started[0])
        return await real_issue_pair(uow, settings, user, family_id, spent)

    monkeypatch.setattr(accounts, "_issue_pair", other_request_meanwhile)


@pytest.mark.parametrize("spent", [False, True], ids=["same-token", "spent-token-of-the-family"])
async def test_a_logout_racing_a_rotation_ends_the_new_token_too(
    api: Api, container: Any, monkeypatch: pytest.MonkeyPatch, spent: bool
) -> None:
    user = await api.user()
    logged_out_with = rotated = user["refresh_token"]
    if spent:  # the family's current token is rotated while the logout presents an earlier one
        r = await _refresh(api, rotated)
        assert r.status_code == 200, r.text
        rotated = r.json()["refresh_token"]
    started: list[asyncio.Task[Any]] = []
    _in_the_rotation_window(
        monkeypatch,
        container,
        lambda: api.client.post("/auth/logout", json={"refresh_token": logged_out_with}),
        started,
    )
    r = await _refresh(api, rotated)
    logout = await started[0]
    assert logout.status_code == 204, logout.text
    assert r.status_code == 200, r.text  # the rotation was first
    r = await _refresh(api, r.json()["refresh_token"])
    assert r.status_code == 401 and r.json()["code"] == "session_ended", r.text


async def test_a_disable_racing_a_rotation_waits_for_it_and_ends_its_new_token(
    api: Api, container: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin, user = await api.admin(container), await api.user()
    started: list[asyncio.Task[Any]] = []
    _in_the_rotation_window(
        monkeypatch,
        container,
        lambda: api.client.put(f"/users/{user['id']}", json={"is_active": False}, headers=admin["headers"]),
        started,
    )
    r = await _refresh(api, user["refresh_token"])
    disable = await started[0]
    assert disable.status_code == 200 and disable.json()["is_active"] is False, disable.text  # no deadlock (503)
    assert r.status_code == 200, r.text
    new = r.json()
    assert (await _refresh(api, new["refresh_token"])).status_code == 401
    me = await api.client.get("/auth/me", headers={"Authorization": f"Bearer {new['access_token']}"})
    assert me.status_code == 401 and me.json()["code"] == "account_disabled"


@pytest.mark.parametrize("ending", ["disable", "logout"])
async def test_an_end_committed_before_the_rotation_locks_refuses_it(
    api: Api, container: Any, monkeypatch: pytest.MonkeyPatch, ending: str
) -> None:
    admin, user = await api.admin(container), await api.user()
    real_lock = accounts._lock_account
    ended: list[Any] = []

    async def ended_meanwhile(uow: Any, user_id: uuid.UUID) -> Any:
        if not ended:  # the rotation read its token, nothing locked yet; the logout locks through here too
            ended.append(None)
            if ending == "disable":
                ended[0] = await api.client.put(
                    f"/users/{user['id']}", json={"is_active": False}, headers=admin["headers"]
                )
            else:
                ended[0] = await api.client.post("/auth/logout", json={"refresh_token": user["refresh_token"]})
        return await real_lock(uow, user_id)

    monkeypatch.setattr(accounts, "_lock_account", ended_meanwhile)
    r = await _refresh(api, user["refresh_token"])
    assert ended[0].status_code in (200, 204), ended[0].text
    assert r.status_code == 401 and r.json()["code"] == "session_ended", r.text


async def test_a_password_change_committed_during_a_login_check_refuses_that_login(
    api: Api, container: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await api.user()
    real_verify, changed = accounts.verify_password_async, []

    async def changed_meanwhile(password: str, hashed: Any) -> bool:
        ok = await real_verify(password, hashed)
        if not changed:  # the old password matched; the owner changes it before this login goes on
            changed.append(None)
            changed[0] = await api.client.put(
                f"/users/{user['id']}",
                json={"password": "a-brand-new-password-9", "current_password": user["password"]},
                headers=user["headers"],
            )
        return ok

    monkeypatch.setattr(accounts, "verify_password_async", changed_meanwhile)
    r = await api.client.post("/auth/login", json={"email": user["email"], "password": user["password"]})
    assert changed[0].status_code == 200, changed[0].text
    assert r.status_code == 401 and r.json()["code"] == "invalid_credentials", r.text  # no session after the change
    again = await api.client.post("/auth/login", json={"email": user["email"], "password": "a-brand-new-password-9"})
    assert again.status_code == 200, again.text
