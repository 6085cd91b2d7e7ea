"""An e-mail task whose retry was lost (its Celery worker died holding it: Redis gives the message back only after an
hour) is taken up by the sweep: its pending e-mails enqueued again, its run marked failed saying why (explore40 F4:
pending for the hour, `/ops/tasks` said `retrying` throughout, nothing pushed it)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select, text, update

from tests.conftest import Api
from tests.integration.test_celery_notifications import notify


async def _run(container: Any, task: str, args: list[Any], *, minutes_ago: int) -> str:
    from smartcourse.models import TaskRun

    task_id = str(uuid.uuid4())
    async with container.uow() as uow:
        uow.session.add(TaskRun(task_id=task_id, task=task, status="retrying", retries=1, args={"args": args}))
        await uow.session.flush()
        await uow.session.execute(
            update(TaskRun)
            .where(TaskRun.task_id == task_id)
            .values(updated_at=text(f"now() - interval '{minutes_ago} minutes'"))
        )
        await uow.commit()
    return task_id


async def test_a_lost_retry_is_taken_up_and_said(api: Api, container: Any) -> None:
    from smartcourse.models import Notification, TaskRun
    from smartcourse.services.notifications import orphaned_email_retries

    user = await api.user()
    ids = [await notify(container, user) for _ in range(3)]  # the suite's helper: a pending welcome e-mail
    lost_one, in_batch, already_sent = ids
    async with container.uow() as uow:
        await uow.session.execute(update(Notification).where(Notification.id.in_(ids)).values(email_attempts=1))
        await uow.session.execute(
            update(Notification).where(Notification.id == already_sent).values(email_status="sent")
        )
        await uow.commit()
    lost = await _run(container, "notifications.send_email", [str(lost_one)], minutes_ago=20)
    batch = [{"id": str(in_batch)}, {"id": str(already_sent)}]
    lost_batch = await _run(container, "notifications.send_emails", [batch], minutes_ago=20)
    live = await _run(container, "notifications.send_emails", [[{"id": str(in_batch)}]], minutes_ago=5)

    found = await orphaned_email_retries(container.sessionmaker, older_than=timedelta(minutes=15))
    assert sorted(found) == sorted([lost_one, in_batch])  # the sent one is not sent again
    async with container.uow() as uow:
        runs = {
            r.task_id: r
            for r in await uow.session.scalars(select(TaskRun).where(TaskRun.task_id.in_([lost, lost_batch, live])))
        }
    assert runs[lost].status == runs[lost_batch].status == "failed" and "retry was lost" in (runs[lost].error or "")
    assert runs[live].status == "retrying"  # a chain that spoke 5 min ago is alive
    assert await orphaned_email_retries(container.sessionmaker, older_than=timedelta(minutes=15)) == []
