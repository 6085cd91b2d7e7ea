"""Students inserted directly, as registration writes them, for the benches, the chaos rig and tests needing many.

Hashing a password per student (as `POST /auth/register` does) would dominate a bench's or a race's set-up, so the
rows share one hash of an unused password; each comes with its `user.registered` event in the same transaction,
because analytics counts students from that event (docs/analytics.md) and a reconcile would otherwise see drift.
"""

from __future__ import annotations

import uuid
from typing import Any

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
