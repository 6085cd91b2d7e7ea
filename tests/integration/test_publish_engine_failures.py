"""A publish the workflow engine could not start, or whose run ended without returning its course (explore18 F1, F3):
the course is never left in `publishing`, and publishing again works once the cause is gone."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from smartcourse.errors import Unavailable
from tests.conftest import Api


class EngineDown:
    """The WorkflowStarter port with the engine gone: what the Temporal adapter raises then (its unit test checks
    that it does, from temporalio's RPCError)."""

    async def start(self, workflow: str, arg: Any, *, workflow_id: str) -> str:
        raise Unavailable(f"the workflow engine did not start {workflow_id}", code="workflow_engine_unavailable")

    async def status(self, workflow_id: str) -> str:
        raise Unavailable("the workflow engine did not answer", code="workflow_engine_unavailable")

    async def steps(self, workflow_id: str, *, completed: bool = False) -> list[dict[str, Any]]:
        raise Unavailable("the workflow engine did not answer", code="workflow_engine_unavailable")


async def _course_with_a_lesson(api: Api, teacher: dict[str, Any]) -> dict[str, Any]:
    course = await api.course(teacher)
    module = await api.module(teacher, course["id"])
    await api.lesson(teacher, course["id"], module["id"], title="Tides", type="text", content="# Tides\nTwice a day.")
    return course


async def test_a_publish_the_engine_cannot_start_is_503_and_leaves_the_course_as_it_was(
    api: Api, worker: object, container: Any, restore_starter: Any
) -> None:
    teacher, admin = await api.user("instructor"), await api.admin(container)
    course = await _course_with_a_lesson(api, teacher)
    container.use_workflow_starter(EngineDown())
    r = await api.client.post(f"/courses/{course['id']}/publish", headers=teacher["headers"])
    assert r.status_code == 503 and r.json()["code"] == "workflow_engine_unavailable", r.text
    assert r.headers["Retry-After"]
    detail = (await api.client.get(f"/courses/{course['id']}", headers=teacher["headers"])).json()
    assert detail["status"] == "draft", detail
    assert detail["publish_report"]["status"] == "failed" and detail["publish_report"]["failed_step"] == "start"
    runs = await api.client.get(
        "/ops/workflows", params={"subject": f"course:{course['id']}"}, headers=admin["headers"]
    )
    (run,) = runs.json()["items"]  # failed, so the default filter lists it (it said `running` for good)
    assert run["failed_step"] == "start" and run["failures"] == 1, run  # explore30 F7: `failures: 0`

    container.use_workflow_starter(restore_starter)  # the engine is back: publishing again just works
    # The run's page says it failed, not `not_started` beside its failure (explore30 F7).
    seen = await api.client.get(f"/workflows/{run['workflow_id']}", headers=teacher["headers"])
    assert seen.status_code == 200, seen.text
    assert seen.json()["status"] == "failed" and seen.json()["failure"]["failed_step"] == "start", seen.json()
    assert {s["status"] for s in seen.json()["steps"]} == {"skipped"}, seen.json()
    r = await api.client.post(f"/courses/{course['id']}/publish", headers=teacher["headers"])
    assert r.status_code == 202, r.text
    wf = await api.wait_workflow(teacher, r.json()["workflow_id"], timeout=120)
    assert wf["status"] == "completed", wf
    detail = (await api.client.get(f"/courses/{course['id']}", headers=teacher["headers"])).json()
    assert detail["status"] == "published"


async def test_a_course_left_publishing_by_an_ended_run_is_published_again(
    api: Api, worker: object, container: Any
) -> None:
    """The run ended (here an operator terminated it; in explore18 F1 its compensation failed too) and the course
    still said `publishing`: a publish answered the dead run's id, archiving was refused, only SQL freed it."""
    from smartcourse.domain import workflows as names
    from smartcourse.security import Principal
    from smartcourse.services import publishing

    teacher = await api.user("instructor")
    course = await _course_with_a_lesson(api, teacher)
    async with container.uow() as uow:
        stuck, version, _ = await publishing.request_publish(
            uow=uow, principal=Principal(uuid.UUID(teacher["id"]), "instructor"), course_id=uuid.UUID(course["id"])
        )
    client = await container.temporal()
    handle = await client.start_workflow(
        names.PUBLISHING,
        {"course_id": course["id"], "version": version, "workflow_id": stuck},
        id=stuck,
        task_queue=f"nobody-polls-{uuid.uuid4().hex[:8]}",
    )
    await handle.terminate("an operator ended it")
    detail = (await api.client.get(f"/courses/{course['id']}", headers=teacher["headers"])).json()
    assert detail["status"] == "publishing"

    r = await api.client.post(f"/courses/{course['id']}/publish", headers=teacher["headers"])
    assert r.status_code == 202, r.text
    assert r.json()["workflow_id"] == publishing.publish_workflow_id(uuid.UUID(course["id"]), version + 1)
    wf = await api.wait_workflow(teacher, r.json()["workflow_id"], timeout=120)
    assert wf["status"] == "completed", wf
    detail = (await api.client.get(f"/courses/{course['id']}", headers=teacher["headers"])).json()
    assert detail["status"] == "published" and detail["content_version"] == version + 1
    admin = await api.admin(container)
    runs = await api.client.get(
        "/ops/workflows", params={"subject": f"course:{course['id']}", "status": "all"}, headers=admin["headers"]
    )
    ended = next(r for r in runs.json()["items"] if r["workflow_id"] == stuck)
    assert ended["status"] != "running" and "terminated" in ended["error"], ended  # explore21 F3: said `running`


async def test_a_second_click_while_the_engine_is_away_leaves_the_publish_under_way(
    api: Api, worker: object, container: Any, restore_starter: Any
) -> None:
    """explore21 F1: a publish under way, the engine briefly away, the instructor clicks again: the second request's
    503 took the course back to draft, and the first run then failed at go_live."""
    from smartcourse.security import Principal
    from smartcourse.services import publishing

    teacher = await api.user("instructor")
    course = await _course_with_a_lesson(api, teacher)
    async with container.uow() as uow:  # the first click's attempt (its start is what the second click repeats)
        under_way, _, _ = await publishing.request_publish(
            uow=uow, principal=Principal(uuid.UUID(teacher["id"]), "instructor"), course_id=uuid.UUID(course["id"])
        )
    container.use_workflow_starter(EngineDown())
    r = await api.client.post(f"/courses/{course['id']}/publish", headers=teacher["headers"])
    assert r.status_code == 503 and r.json()["code"] == "workflow_engine_unavailable", r.text
    detail = (await api.client.get(f"/courses/{course['id']}", headers=teacher["headers"])).json()
    assert detail["status"] == "publishing" and detail["publish_report"]["status"] == "running", detail
    container.use_workflow_starter(restore_starter)
    r = await api.client.post(f"/courses/{course['id']}/publish", headers=teacher["headers"])
    assert r.status_code == 202 and r.json()["workflow_id"] == under_way, r.text
    wf = await api.wait_workflow(teacher, under_way, timeout=120)
    assert wf["status"] == "completed", wf


async def test_a_revert_that_cannot_drop_the_version_still_returns_the_course_and_tells_the_instructor(
    api: Api, container: Any
) -> None:
    """explore18 F1: the content index unwritable failed the publish at `index`, then the revert (which dropped the
    version's table first) failed the same way eight times: the course stayed `publishing`, and no notice went out."""
    from smartcourse.security import Principal
    from smartcourse.services import publishing
    from workflows.publishing.activities import PublishingActivities
    from workflows.publishing.workflow import RevertInput

    class Unwritable:
        async def drop_version(self, course_id: str, version: int) -> None:
            raise PermissionError(1, "Operation not permitted", f"index/course_{course_id}/v{version}")

    teacher = await api.user("instructor")
    course = await _course_with_a_lesson(api, teacher)
    async with container.uow() as uow:
        workflow_id, version, _ = await publishing.request_publish(
            uow=uow, principal=Principal(uuid.UUID(teacher["id"]), "instructor"), course_id=uuid.UUID(course["id"])
        )
    real = container.vector_index()
    container.use_vector_index(Unwritable())
    try:
        with pytest.raises(PermissionError):  # the activity fails (Temporal retries it), but only at its end
            await PublishingActivities(container).revert(
                RevertInput(course["id"], version, workflow_id, "index", "Operation not permitted")
            )
    finally:
        container.use_vector_index(real)
    detail = (await api.client.get(f"/courses/{course['id']}", headers=teacher["headers"])).json()
    assert detail["status"] == "draft", detail
    assert detail["publish_report"]["status"] == "failed" and detail["publish_report"]["failed_step"] == "index"
    notices = (await api.client.get("/notifications", headers=teacher["headers"])).json()
    items = notices["items"] if isinstance(notices, dict) else notices
    assert any(n["kind"] == "publish_failed" for n in items), items
