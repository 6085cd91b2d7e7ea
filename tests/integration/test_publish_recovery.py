"""A Temporal worker killed in the middle of a publish: a fresh worker finishes it, and the result is whole."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from tests.conftest import Api
from tests.integration.test_worker_recovery import _wait_file, _worker


async def test_worker_killed_while_indexing_resumes_and_publishes_once(
    api: Api, worker: object, container: Any, settings: Any
) -> None:
    from smartcourse.models import ContentChunk, OutboxEvent
    from workflows.publishing.workflow import CoursePublishingWorkflow, PublishInput

    teacher = await api.user("instructor")
    course = await api.course(teacher)
    module = await api.module(teacher, course["id"])
    for n in range(3):
        await api.lesson(
            teacher,
            course["id"],
            module["id"],
            title=f"Part {n}",
            type="text",
            content=f"# Part {n}\n" + "Text. " * 200,
        )
    async with container.uow() as uow:
        from smartcourse.security import Principal
        from smartcourse.services import publishing

        workflow_id, version = await publishing.request_publish(
            uow=uow, principal=Principal(uuid.UUID(teacher["id"]), "instructor"), course_id=uuid.UUID(course["id"])
        )
    hold_dir = Path(settings.data_dir) / "holds"
    hold_dir.mkdir(exist_ok=True)
    name = f"publish.index.{course['id']}"
    (hold_dir / f"{name}.hold").touch()
    queue = f"publish-recovery-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "TEMPORAL_TASK_QUEUE": queue,
        "SMARTCOURSE_ENV": "test",
        "SMARTCOURSE_TEST_HOLD_DIR": str(hold_dir),
        "SMARTCOURSE_LOG_LEVEL": "WARNING",
    }
    log = Path(settings.data_dir) / f"{queue}.log"
    first = _worker(env, log)
    client = await container.temporal()
    handle = await client.start_workflow(
        CoursePublishingWorkflow.run,
        PublishInput(course["id"], version, workflow_id),
        id=workflow_id,
        task_queue=queue,
    )
    try:
        await _wait_file(hold_dir / f"{name}.reached", timeout=120)  # extract, chunk, embed done; index in flight
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        (hold_dir / f"{name}.hold").unlink()
        second = _worker(env, log)
        try:
            result = await asyncio.wait_for(handle.result(), timeout=150)
        finally:
            second.terminate()
            second.wait(timeout=20)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert all(s["status"] == "completed" for s in result["steps"]), result
    detail = (await api.client.get(f"/courses/{course['id']}", headers=teacher["headers"])).json()
    assert detail["index_status"] == "ready" and detail["index_version"] == version
    async with container.uow() as uow:
        chunks = await uow.session.scalar(
            select(func.count()).select_from(ContentChunk).where(ContentChunk.course_id == uuid.UUID(course["id"]))
        )
        published = await uow.session.scalar(
            select(func.count())
            .select_from(OutboxEvent)
            .where(OutboxEvent.event_type == "course.published", OutboxEvent.aggregate_id == course["id"])
        )
    assert published == 1
    assert await container.vector_index().count(course["id"], version) == chunks
    student = await api.user("student")
    r = await api.client.post("/enrollments", json={"course_id": course["id"]}, headers=student["headers"])
    assert r.status_code in (200, 201), r.text
    r = await api.client.get(f"/courses/{course['id']}/search", params={"q": "Part 2"}, headers=student["headers"])
    assert r.status_code == 200 and r.json()["items"]
