"""Failures an admin has dealt with stop counting: a dead letter discarded with a reason, a failed task whose dead
letter was replayed, a failed run superseded by a later success of the same subject (docs/operations.md)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select, update

from tests.conftest import Api


async def _issues(api: Api, admin: dict[str, Any]) -> dict[str, int]:
    r = await api.client.get("/analytics/dashboard", headers=admin["headers"])
    assert r.status_code == 200, r.text
    return dict(r.json()["workflow_issues"])


async def _pending_ids(api: Api, admin: dict[str, Any], status: str = "pending") -> dict[str, dict[str, Any]]:
    r = await api.client.get("/ops/dead-letters", params={"status": status, "limit": 200}, headers=admin["headers"])
    assert r.status_code == 200, r.text
    return {i["id"]: i for i in r.json()["items"]}


async def test_a_dead_letter_that_cannot_be_replayed_is_discarded_with_a_reason(api: Api, container: Any) -> None:
    from smartcourse.event_consumer import dead_letter
    from smartcourse.metrics import DatabaseState
    from smartcourse.models import DeadLetter

    admin = await api.admin(container)
    admin_id = (await api.client.get("/auth/me", headers=admin["headers"])).json()["id"]
    student = await api.user()
    before = await _issues(api, admin)
    poison, foreign, replayed = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await dead_letter(container.sessionmaker, "analytics", "t", {"event_id": str(poison), "raw": "AAEC"}, "poison")
    envelope = {"event_id": str(foreign), "event_type": "user.registered", "schema_version": 1, "data": {}}
    await dead_letter(container.sessionmaker, "gone-consumer", "t", envelope, "boom")
    await dead_letter(container.sessionmaker, "analytics", "t", {**envelope, "event_id": str(replayed)}, "boom")
    try:
        async with container.sessionmaker() as session, session.begin():
            await session.execute(
                update(DeadLetter).where(DeadLetter.event_id == replayed).values(replayed_at=DeadLetter.created_at)
            )
        listed = await _pending_ids(api, admin)
        by_event = {i["event_id"]: i for i in listed.values()}
        assert str(replayed) not in by_event
        raw, gone = by_event[str(poison)], by_event[str(foreign)]
        # Neither can be replayed here: raw bytes, and a consumer this deployment does not run.
        assert raw["replayable"] is False and gone["replayable"] is False
        assert (await _issues(api, admin))["dead_letters"] == before["dead_letters"] + 2
        r = await api.client.post(f"/ops/dead-letters/{gone['id']}/replay", headers=admin["headers"])
        assert r.status_code == 409 and r.json()["code"] == "unknown_consumer"

        url = f"/ops/dead-letters/{gone['id']}/discard"
        assert (await api.client.post(url, json={"reason": "x"})).status_code == 401
        r = await api.client.post(url, json={"reason": "x"}, headers=student["headers"])
        assert r.status_code == 403 and r.json()["code"] == "admin_only"
        r = await api.client.post(url, json={"reason": "   "}, headers=admin["headers"])
        assert r.status_code == 422
        r = await api.client.post(
            f"/ops/dead-letters/{uuid.uuid4()}/discard", json={"reason": "x"}, headers=admin["headers"]
        )
        assert r.status_code == 404 and r.json()["code"] == "dead_letter_not_found"

        first = await api.client.post(url, json={"reason": " consumer retired in v2 "}, headers=admin["headers"])
        assert first.status_code == 200, first.text
        body = first.json()
        assert body["discarded_now"] is True and body["status"] == "discarded"
        assert body["discarded_by"] == admin_id and body["discard_reason"] == "consumer retired in v2"
        again = (await api.client.post(url, json={"reason": "another"}, headers=admin["headers"])).json()
        assert again["discarded_now"] is False and again["discarded_at"] == body["discarded_at"]
        assert again["discard_reason"] == "consumer retired in v2"
        r = await api.client.post(
            f"/ops/dead-letters/{raw['id']}/discard", json={"reason": "poison bytes"}, headers=admin["headers"]
        )
        assert r.status_code == 200, r.text
        # A discarded one is not replayed; a replayed one is not discarded.
        r = await api.client.post(f"/ops/dead-letters/{gone['id']}/replay", headers=admin["headers"])
        assert r.status_code == 409 and r.json()["code"] == "dead_letter_discarded"
        done = next(i for i in (await _pending_ids(api, admin, "replayed")).values() if i["event_id"] == str(replayed))
        r = await api.client.post(
            f"/ops/dead-letters/{done['id']}/discard", json={"reason": "x"}, headers=admin["headers"]
        )
        assert r.status_code == 409 and r.json()["code"] == "dead_letter_replayed"

        # No longer pending anywhere: the list, the dashboard, the worker's gauge; listed as discarded.
        pending = await _pending_ids(api, admin)
        assert gone["id"] not in pending and raw["id"] not in pending
        assert (await _issues(api, admin))["dead_letters"] == before["dead_letters"]
        discarded = await _pending_ids(api, admin, "discarded")
        assert discarded[gone["id"]]["discard_reason"] == "consumer retired in v2"
        assert discarded[gone["id"]]["discarded_by"] == admin_id and discarded[gone["id"]]["replayable"] is False
        assert gone["id"] in await _pending_ids(api, admin, "all")
        state = DatabaseState()
        await state.refresh(container.sessionmaker)
        assert state.snapshot is not None and "gone-consumer" not in state.snapshot.dead_letters
    finally:
        async with container.sessionmaker() as session, session.begin():
            await session.execute(delete(DeadLetter).where(DeadLetter.event_id.in_((poison, foreign, replayed))))


async def _live_courses_counted(container: Any, instructor_id: str, timeout: float = 30) -> float:
    """The analytics counter of this instructor's live courses once the relay delivered what it has."""
    from smartcourse.models import AnalyticsCounter

    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        async with container.sessionmaker() as session:
            value = await session.scalar(
                select(AnalyticsCounter.value).where(
                    AnalyticsCounter.metric == "instructor_live_courses", AnalyticsCounter.bucket == instructor_id
                )
            )
        if value or asyncio.get_running_loop().time() > deadline:
            return float(value or 0)
        await asyncio.sleep(0.2)


async def test_a_failed_publish_is_resolved_by_the_next_successful_publish(
    api: Api, worker: object, container: Any, holds: Path
) -> None:
    owner = await api.user("instructor")
    admin = await api.admin(container)
    course = await api.course(owner, title="Fails once, then publishes")
    module = await api.module(owner, course["id"])
    await api.lesson(owner, course["id"], module["id"])
    first = await api.publish_failing_at_extract(owner, course["id"], holds)
    assert first["status"] == "failed"
    subject = {"subject": f"course:{course['id']}"}
    failed = await _issues(api, admin)
    r = await api.client.get("/ops/workflows", params=subject, headers=admin["headers"])
    [item] = r.json()["items"]
    assert item["workflow_id"] == first["workflow_id"] and item["resolved"] is False and item["resolved_by"] is None

    r = await api.client.post(f"/courses/{course['id']}/publish", headers=owner["headers"])
    assert r.status_code == 202, r.text
    second = await api.wait_workflow(owner, r.json()["workflow_id"], timeout=120)
    assert second["status"] == "completed"
    # Its first go-live is version 2 (the failure spent version 1): analytics still counts a new live course.
    assert await _live_courses_counted(container, owner["id"]) == 1

    # Republished: the failure is no longer open, on the dashboard or in the default list...
    assert (await _issues(api, admin))["failed_workflows"] == failed["failed_workflows"] - 1
    r = await api.client.get("/ops/workflows", params=subject, headers=admin["headers"])
    assert r.status_code == 200 and r.json()["items"] == []
    # ...and still there to read, saying what resolved it.
    for status in ("resolved", "all", "failed,resolved"):
        r = await api.client.get("/ops/workflows", params={**subject, "status": status}, headers=admin["headers"])
        assert r.status_code == 200, r.text
        old = next(i for i in r.json()["items"] if i["workflow_id"] == first["workflow_id"])
        assert old["status"] == "failed" and old["resolved"] is True, status
        assert old["resolved_by"]["workflow_id"] == second["workflow_id"], status
    # The run's own page says the same, to its instructor (explore30 F1: always `resolved: false` there).
    r = await api.client.get(f"/workflows/{first['workflow_id']}", headers=owner["headers"])
    assert r.status_code == 200 and r.json()["failure"]["resolved"] is True, r.text
    assert r.json()["failure"]["resolved_by"]["workflow_id"] == second["workflow_id"], r.text
    r = await api.client.get("/ops/workflows", params={**subject, "status": "completed"}, headers=admin["headers"])
    assert [i["workflow_id"] for i in r.json()["items"]] == [second["workflow_id"]]
    assert r.json()["items"][0]["resolved"] is False and r.json()["items"][0]["resolved_by"] is None


async def _failed_task(container: Any, *, args: dict[str, Any]) -> tuple[str, uuid.UUID]:
    """A task run out of retries and its dead letter, as tasks.DeadLetteringTask leaves them."""
    from smartcourse.models import DeadLetter
    from smartcourse.services import operations

    task_id = str(uuid.uuid4())
    async with container.sessionmaker() as session, session.begin():
        await operations.record_task_outcome(
            session, task_id=task_id, task="tests.flaky", status="failed", retries=8, args=args, error="boom"
        )
        letter = DeadLetter(
            consumer="celery:tests.flaky",
            event_id=uuid.UUID(task_id),
            topic="smartcourse",
            payload={"task": "tests.flaky", "task_id": task_id, **args, "retries": 8},
            error="boom",
        )
        session.add(letter)
    return task_id, letter.id


async def test_a_failed_task_is_resolved_by_its_replay_its_discard_or_a_later_success(api: Api, container: Any) -> None:
    from smartcourse.models import DeadLetter, TaskRun
    from smartcourse.security import Principal
    from smartcourse.services import operations

    admin = await api.admin(container)
    admin_id = uuid.UUID((await api.client.get("/auth/me", headers=admin["headers"])).json()["id"])
    before = await _issues(api, admin)
    replayed_id, replayed_letter = await _failed_task(container, args={"args": ["r"], "kwargs": {}})
    discarded_id, discarded_letter = await _failed_task(container, args={"args": ["d"], "kwargs": {}})
    succeeded_id, _ = await _failed_task(container, args={"args": ["s"], "kwargs": {}})
    ids = (replayed_id, discarded_id, succeeded_id)

    async def listed(status: str) -> dict[str, dict[str, Any]]:
        r = await api.client.get(
            "/ops/tasks", params={"status": status, "task": "tests.flaky", "limit": 200}, headers=admin["headers"]
        )
        assert r.status_code == 200, r.text
        return {i["task_id"]: i for i in r.json()["items"]}

    later = str(uuid.uuid4())
    try:
        assert (await _issues(api, admin))["failed_tasks"] == before["failed_tasks"] + 3
        assert set(await listed("failed")) == set(ids)
        # A replay that sent the task again (the broker stubbed: nothing runs it here).
        sent: list[tuple[str, list[Any], dict[str, Any]]] = []
        answer = await operations.replay_dead_letter(
            sessionmaker=container.sessionmaker,
            principal=Principal(user_id=admin_id, role="admin"),
            dead_letter_id=replayed_letter,
            consumers=[],
            send_task=lambda name, args, kwargs: sent.append((name, args, kwargs)),
        )
        assert answer["outcome"] == "resent" and sent == [("tests.flaky", ["r"], {})]
        r = await api.client.post(
            f"/ops/dead-letters/{discarded_letter}/discard", json={"reason": "obsolete"}, headers=admin["headers"]
        )
        assert r.status_code == 200, r.text
        async with container.sessionmaker() as session, session.begin():
            await operations.record_task_outcome(
                session,
                task_id=later,
                task="tests.flaky",
                status="succeeded",
                retries=0,
                args={"args": ["s"], "kwargs": {}},
            )

        assert (await _issues(api, admin))["failed_tasks"] == before["failed_tasks"]
        assert await listed("failed") == {}
        resolved = await listed("resolved")
        assert set(resolved) == set(ids)
        assert all(i["status"] == "failed" and i["resolved"] for i in resolved.values())
        assert resolved[replayed_id]["resolved_by"]["how"] == "replayed"
        assert resolved[replayed_id]["resolved_by"]["dead_letter_id"] == str(replayed_letter)
        assert resolved[discarded_id]["resolved_by"]["how"] == "discarded"
        assert resolved[succeeded_id]["resolved_by"] == {
            "how": "succeeded",
            "task_id": later,
            "at": resolved[succeeded_id]["resolved_by"]["at"],
        }
        every = await listed("all")
        assert set(ids) | {later} <= set(every) and every[later]["resolved"] is False
        # Several statuses, as `/ops/workflows` takes them (explore81 F11: `failed,retrying` was 422 here).
        assert set(await listed("resolved, succeeded")) == set(ids) | {later}
        assert set(await listed("failed,succeeded")) == {later}
        for bad in ("broken", "failed,all", "failed,"):
            r = await api.client.get("/ops/tasks", params={"status": bad}, headers=admin["headers"])
            assert (r.status_code, r.json()["code"]) == (422, "validation_error"), (bad, r.text)
        r = await api.client.get(
            "/ops/dead-letters", params={"status": "replayed,discarded", "limit": 200}, headers=admin["headers"]
        )
        letters = {i["id"] for i in r.json()["items"]}
        assert {str(replayed_letter), str(discarded_letter)} <= letters, r.text
        r = await api.client.get(
            "/ops/dead-letters", params={"status": "discarded", "limit": 200}, headers=admin["headers"]
        )
        assert str(replayed_letter) not in {i["id"] for i in r.json()["items"]}, r.text
    finally:
        async with container.sessionmaker() as session, session.begin():
            await session.execute(delete(DeadLetter).where(DeadLetter.consumer == "celery:tests.flaky"))
            await session.execute(delete(TaskRun).where(TaskRun.task == "tests.flaky"))
