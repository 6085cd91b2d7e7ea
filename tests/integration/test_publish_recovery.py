"""A Temporal worker killed in the middle of a publish: a fresh worker finishes it, and the result is whole."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select

from tests.conftest import Api
from tests.integration.test_worker_recovery import run_killing_the_worker


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

        workflow_id, version, _ = await publishing.request_publish(
            uow=uow, principal=Principal(uuid.UUID(teacher["id"]), "instructor"), course_id=uuid.UUID(course["id"])
        )
    # Extract, chunk and embed done; index in flight when the worker dies. The next worker retries the step once
    # it has gone 6 s without a heartbeat (PUBLISH_HEARTBEAT_SECONDS; 20 s by default).
    result = await run_killing_the_worker(
        settings,
        container,
        f"publish.index.{course['id']}",
        lambda client, queue: client.start_workflow(
            CoursePublishingWorkflow.run,
            PublishInput(course["id"], version, workflow_id, heartbeat_seconds=6),
            id=workflow_id,
            task_queue=queue,
        ),
        reach_timeout=120,
        finish_timeout=150,
    )
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
