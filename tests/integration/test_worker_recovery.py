"""A Temporal worker killed mid-workflow: a fresh worker resumes it and every effect happens exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.conftest import Api, dispatchers_paused, read_mail


def _worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "smartcourse.cli", "worker"],
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


async def _wait_file(path: Path, timeout: float = 60) -> None:
    for _ in range(int(timeout * 10)):
        if path.exists():  # noqa: ASYNC240 - a stat call in a test helper
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{path} never appeared")


async def run_killing_the_worker(
    settings: Any,
    container: Any,
    hold: str,
    start: Callable[[Any, str], Awaitable[Any]],
    *,
    reach_timeout: float = 60,
    finish_timeout: float = 90,
) -> Any:
    """Start a workflow on a worker subprocess of its own queue, SIGKILL that worker while the step holding at
    `hold` is in flight, start a fresh worker, and return the workflow's result. `start(client, queue)` starts
    the workflow and returns its handle."""
    hold_dir = Path(settings.data_dir) / "holds"
    hold_dir.mkdir(exist_ok=True)
    (hold_dir / f"{hold}.hold").touch()
    queue = f"recovery-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "TEMPORAL_TASK_QUEUE": queue,
        "SMARTCOURSE_ENV": "test",
        "SMARTCOURSE_TEST_HOLD_DIR": str(hold_dir),
        "SMARTCOURSE_LOG_LEVEL": "WARNING",
    }
    log = Path(settings.data_dir) / f"{queue}.log"
    first = _worker(env, log)
    handle = await start(await container.temporal(), queue)
    try:
        await _wait_file(hold_dir / f"{hold}.reached", timeout=reach_timeout)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        (hold_dir / f"{hold}.hold").unlink()
        second = _worker(env, log)
        try:
            return await asyncio.wait_for(handle.result(), timeout=finish_timeout)
        finally:
            second.terminate()
            second.wait(timeout=20)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)


@pytest.mark.parametrize(
    "hold",
    [
        "enroll.set_up",  # the four steps' transaction open, nothing committed
        "enroll.welcome_email",  # committed, the e-mail not enqueued, the workflow not told
    ],
)
async def test_worker_killed_mid_enrollment_resumes_with_effects_once(
    hold: str, api: Api, worker: object, celery_worker: object, container: Any, settings: Any
) -> None:
    from smartcourse.models import Enrollment, EnrollmentHistory, LessonProgress, Notification, OutboxEvent

    teacher, student = await api.user("instructor"), await api.user()
    course = await api.published_course(teacher)
    async with dispatchers_paused(container):  # this test starts the workflow itself, on a worker it kills
        result, e = await _enroll_and_kill(hold, container, settings, student, course)
    assert [s["status"] for s in result["steps"]] == ["completed"] * 4
    eid = e.id
    async with container.uow() as uow:
        row = await uow.session.get(Enrollment, eid)
        assert row is not None and row.status == "active"
        activations = await uow.session.scalar(
            select(func.count())
            .select_from(EnrollmentHistory)
            .where(EnrollmentHistory.enrollment_id == eid, EnrollmentHistory.to_status == "active")
        )
        events = dict(
            (
                await uow.session.execute(
                    select(OutboxEvent.event_type, func.count())
                    .where(OutboxEvent.payload["data"]["enrollment_id"].astext == str(eid))
                    .group_by(OutboxEvent.event_type)
                )
            ).all()
        )
        welcomes = list(
            await uow.session.scalars(select(Notification).where(Notification.dedupe_key == f"welcome:{eid}"))
        )
        progress = await uow.session.scalar(
            select(func.count()).select_from(LessonProgress).where(LessonProgress.enrollment_id == eid)
        )
    assert activations == 1
    assert events == {"enrollment.created": 1, "enrollment.activated": 1, "analytics.enrollment_recorded": 1}
    assert len(welcomes) == 1
    assert progress == result["steps"][0]["detail"]["lessons"] > 0  # one set of progress rows
    # ... and one welcome e-mail, though the set-up (and with it the enqueue) ran twice.
    nid = welcomes[0].id
    status = None
    for _ in range(600):
        async with container.uow() as uow:
            status = await uow.session.scalar(select(Notification.email_status).where(Notification.id == nid))
        if status == "sent":
            break
        await asyncio.sleep(0.1)
    assert status == "sent"
    await asyncio.sleep(1)  # a second send, if there were one, would land meanwhile
    assert len([m for m in read_mail(settings.mail_dir) if str(nid) in str(m["Message-ID"])]) == 1


async def _enroll_and_kill(hold: str, container: Any, settings: Any, student: Any, course: Any) -> tuple[Any, Any]:
    from smartcourse.security import Principal
    from smartcourse.services import enrollment
    from workflows.enrollment.workflow import EnrollmentInput, EnrollmentWorkflow

    async with container.uow() as uow:
        e, _ = await enrollment.enroll(
            uow=uow, principal=Principal(uuid.UUID(student["id"]), "student"), course_id=uuid.UUID(course["id"]),
            idempotency_key=None,
        )  # fmt: skip
    # The worker dies inside the enrollment's one local activity; the next worker re-runs it when the workflow
    # task times out.
    result = await run_killing_the_worker(
        settings,
        container,
        f"{hold}.{e.id}",
        lambda client, queue: client.start_workflow(
            EnrollmentWorkflow.run,
            EnrollmentInput(str(e.id)),
            id=e.workflow_id,
            task_queue=queue,
            task_timeout=timedelta(seconds=3),  # the dead worker's workflow task is given up after this (10 s default)
        ),
        reach_timeout=120,  # a worker subprocess takes long to import on a busy machine
    )
    return result, e
