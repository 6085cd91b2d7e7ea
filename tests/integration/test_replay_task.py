"""Replaying a dead-lettered e-mail task: the task is sent only once the replay has committed (a worker that took it
earlier found the notification locked by the replay, took that for another worker's claim and stopped: the flaky
e2e test of 2026-12-03), and a broker that refuses it leaves the dead letter replayable (PostgreSQL)."""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from smartcourse.errors import Conflict
from smartcourse.models import DeadLetter, Notification
from smartcourse.security import Principal
from smartcourse.services import operations
from smartcourse.services.notifications import create_notification
from tests.conftest import Api

pytestmark = [pytest.mark.timeout(60)]

ADMIN = Principal(user_id=uuid.uuid4(), role="admin")
TASK = "notifications.send_email"


async def _failed_email(container: Any, api: Api) -> tuple[uuid.UUID, uuid.UUID]:
    """A notification whose e-mail failed, and the task's dead letter (the user registered through the API, so
    the analytics that count registrations stay true for the tests that reconcile them)."""
    user_id = uuid.UUID((await api.user())["id"])
    async with container.uow() as uow:
        nid = await create_notification(
            uow.session,
            user_id=user_id,
            kind="enrollment.welcome",
            title="t",
            body="b",
            dedupe_key=f"replay:{uuid.uuid4()}",
        )
        note = await uow.session.get(Notification, nid)
        assert note is not None
        note.email_status = "failed"
        dl = DeadLetter(
            consumer=f"celery:{TASK}",
            event_id=uuid.uuid4(),
            topic="celery",
            payload={"task": TASK, "args": [str(nid)], "kwargs": {}},
            error="ConnectionRefusedError",
        )
        uow.session.add(dl)
        await uow.commit()
    return nid, dl.id


async def test_the_task_is_sent_after_the_replay_commits(container: Any, api: Api) -> None:
    nid, dl_id = await _failed_email(container, api)
    seen: list[tuple[str, str | None]] = []

    async def what_a_worker_sees() -> tuple[str, str | None]:
        # Its own engine and connection, as a worker's.
        engine = create_async_engine(container.settings.database_url, poolclass=NullPool)
        try:
            async with AsyncSession(engine) as session, session.begin():
                # Is the row still locked by the replay's transaction? (SKIP LOCKED: this probe never waits; a
                # worker's `deliver_email` would wait, and before its claim was an advisory lock it gave up.)
                claimed = await session.scalar(
                    select(Notification.email_status).where(Notification.id == nid).with_for_update(skip_locked=True)
                )
                replayed = await session.scalar(
                    text("select replay_outcome from dead_letters where id = :id"), {"id": dl_id}
                )
                return claimed or "locked", replayed
        finally:
            await engine.dispose()

    def send_task(name: str, args: list[Any], kwargs: dict[str, Any]) -> None:
        assert (name, args, kwargs) == (TASK, [str(nid)], {})
        # On a thread and loop of its own, as a worker's would be (whether or not this runs on the API's loop).
        with ThreadPoolExecutor(1) as pool:
            seen.append(pool.submit(asyncio.run, what_a_worker_sees()).result())

    first = await operations.replay_dead_letter(
        sessionmaker=container.sessionmaker, principal=ADMIN, dead_letter_id=dl_id, consumers=[], send_task=send_task
    )
    assert (first["outcome"], first["replayed_now"]) == ("resent", True)
    assert seen == [("pending", "resent")]  # before: [("locked", None)]
    again = await operations.replay_dead_letter(
        sessionmaker=container.sessionmaker, principal=ADMIN, dead_letter_id=dl_id, consumers=[], send_task=send_task
    )
    assert again["replayed_now"] is False and len(seen) == 1


async def test_a_refused_send_leaves_the_dead_letter_replayable(container: Any, api: Api) -> None:
    nid, dl_id = await _failed_email(container, api)
    sent: list[str] = []

    def broker_down(name: str, args: list[Any], kwargs: dict[str, Any]) -> None:
        raise ConnectionError("the broker is down")

    with pytest.raises(Conflict) as refused:
        await operations.replay_dead_letter(
            sessionmaker=container.sessionmaker,
            principal=ADMIN,
            dead_letter_id=dl_id,
            consumers=[],
            send_task=broker_down,
        )
    assert refused.value.code == "replay_failed" and "the broker is down" in refused.value.message
    async with container.sessionmaker() as session:
        dl = await session.get(DeadLetter, dl_id)
        note = await session.get(Notification, nid)
        assert dl is not None and (dl.replayed_at, dl.replay_outcome) == (None, "failed")
        assert note is not None and note.email_status == "pending"  # the sweeper would send it anyway

    again = await operations.replay_dead_letter(
        sessionmaker=container.sessionmaker,
        principal=ADMIN,
        dead_letter_id=dl_id,
        consumers=[],
        send_task=lambda name, args, kwargs: sent.append(name),
    )
    assert again["outcome"] == "resent" and again["replayed_now"] is True and sent == [TASK]
