"""Worlds for the benches, the chaos rig and tests needing many students: a course published through the API, and
students inserted directly, as registration writes them.

Hashing a password per student (as `POST /auth/register` does) would dominate a bench's or a race's set-up, so the
rows share one hash of an unused password; each comes with its `user.registered` event in the same transaction,
because analytics counts students from that event (docs/analytics.md) and a reconcile would otherwise see drift.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx

from smartcourse.db import UnitOfWork
from smartcourse.domain.events import DomainEvent
from smartcourse.models import User
from smartcourse.security import hash_password


async def insert_students(sessions: Any, count: int, *, label: str, chunk: int = 500) -> list[tuple[uuid.UUID, str]]:
    """`count` students (role student, e-mail `<label>-<n>-<random>@example.com`) in transactions of `chunk`, each
    with its `user.registered` outbox event. `sessions` is an async sessionmaker. Returns [(id, e-mail)] in order."""
    password_hash = hash_password("unused-password")
    out: list[tuple[uuid.UUID, str]] = []
    for start in range(0, count, chunk):
        users = [
            User(
                id=uuid.uuid4(),
                email=f"{label}-{n:05d}-{uuid.uuid4().hex[:8]}@example.com",
                password_hash=password_hash,
                full_name=f"{label.capitalize()} Student {n}",
                role="student",
            )
            for n in range(start, min(start + chunk, count))
        ]
        async with UnitOfWork(sessions) as uow:
            uow.session.add_all(users)
            for u in users:
                uow.emit(DomainEvent("user.registered", str(u.id), {"user_id": str(u.id), "role": "student"}))
            await uow.commit()
        out += [(u.id, u.email) for u in users]
    return out


def expect(r: httpx.Response, status: int) -> dict[str, Any]:
    """The JSON body of an answer that must have `status`; otherwise a RuntimeError naming the call."""
    if r.status_code != status:
        raise RuntimeError(f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text[:500]}")
    body: dict[str, Any] = r.json()
    return body


async def publish_course(
    client: httpx.AsyncClient,
    *,
    label: str,
    course: dict[str, Any],
    lessons: list[dict[str, Any]],
    timeout: float,
    poll: float = 0.2,
) -> str:
    """An instructor registers and logs in through the API, creates `course` with one module holding `lessons`,
    publishes it and waits until its publishing workflow completed. Returns the course id."""
    email, password = f"{label}-instructor-{uuid.uuid4().hex[:10]}@example.com", f"{label}-password-1"
    user = {"email": email, "password": password, "full_name": f"{label.capitalize()} Instructor", "role": "instructor"}
    expect(await client.post("/auth/register", json=user), 201)
    tokens = expect(await client.post("/auth/login", json={"email": email, "password": password}), 200)
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    cid = expect(await client.post("/courses", json=course, headers=auth), 201)["id"]
    module = expect(await client.post(f"/courses/{cid}/modules", json={"title": "Basics"}, headers=auth), 201)
    for lesson in lessons:
        expect(await client.post(f"/courses/{cid}/modules/{module['id']}/lessons", json=lesson, headers=auth), 201)
    started = expect(await client.post(f"/courses/{cid}/publish", headers=auth), 202)
    deadline = time.monotonic() + timeout
    while True:
        wf = expect(await client.get(f"/workflows/{started['workflow_id']}", headers=auth), 200)
        if wf["status"] == "completed":
            return str(cid)
        if wf["status"] not in {"running", "not_started"} or time.monotonic() > deadline:
            raise RuntimeError(f"publishing workflow ended {wf['status']}: {wf}")
        await asyncio.sleep(poll)
