"""The figures the processes count, on the suite's real engines: workflow runs through the worker's interceptor,
enrollment decisions in the API, the stored state the worker reads from PostgreSQL, all on the API's /metrics."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from smartcourse import metrics
from tests.conftest import Api


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_workflow_runs_enrollment_decisions_and_stored_state(
    api: Api, worker: Any, container: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = "smartcourse_workflow_runs_total"
    completed = value(runs, workflow="CoursePublishingWorkflow", outcome="completed")
    failed = value(runs, workflow="CoursePublishingWorkflow", outcome="failed")
    failed_extracts = value("smartcourse_activity_runs_total", activity="publish.extract", outcome="failed")

    owner = await api.user("instructor")
    course = await api.published_course(owner, capacity=1)
    assert value(runs, workflow="CoursePublishingWorkflow", outcome="completed") == completed + 1
    publishing = {"workflow": "CoursePublishingWorkflow", "outcome": "completed"}
    timed = value("smartcourse_workflow_duration_seconds_count", **publishing)
    assert timed >= 1

    # A publish failing at a step: one failed run, one failed attempt of that step.
    monkeypatch.setenv("SMARTCOURSE_TEST_HOLD_DIR", str(tmp_path))
    broken = await api.course(owner)
    module = await api.module(owner, broken["id"])
    await api.lesson(owner, broken["id"], module["id"])
    (tmp_path / f"publish.extract.{broken['id']}.fail").touch()
    r = await api.client.post(f"/courses/{broken['id']}/publish", headers=owner["headers"])
    assert r.status_code == 202, r.text
    assert (await api.wait_workflow(owner, r.json()["workflow_id"]))["status"] == "failed"
    assert value(runs, workflow="CoursePublishingWorkflow", outcome="failed") == failed + 1
    assert value("smartcourse_activity_runs_total", activity="publish.extract", outcome="failed") == failed_extracts + 1

    decisions = "smartcourse_enrollment_requests_total"
    before = {o: value(decisions, outcome=o, reason="") for o in ("admitted", "repeat")}
    full = value(decisions, outcome="refused", reason="course_full")
    first, second = await api.user("student"), await api.user("student")
    for student, status in ((first, 201), (first, 200), (second, 409)):
        r = await api.client.post("/enrollments", json={"course_id": course["id"]}, headers=student["headers"])
        assert r.status_code == status, r.text
    assert value(decisions, outcome="admitted", reason="") == before["admitted"] + 1
    assert value(decisions, outcome="repeat", reason="") == before["repeat"] + 1
    assert value(decisions, outcome="refused", reason="course_full") == full + 1

    # The worker's view of the database: the failed run is recorded; nothing older than the suite is invented.
    await metrics.DATABASE_STATE.refresh(container.sessionmaker)
    snapshot = metrics.DATABASE_STATE.snapshot
    assert snapshot is not None
    assert snapshot.workflow_runs.get(("course_publishing", "failed"), 0) >= 1
    assert snapshot.outbox_backlog >= 0 and snapshot.outbox_oldest_age >= 0

    r = await api.client.get("/metrics")
    assert r.status_code == 200
    body = r.text
    assert 'smartcourse_enrollment_requests_total{outcome="refused",reason="course_full"}' in body
    assert 'smartcourse_workflow_runs_recorded{kind="course_publishing",status="failed"}' in body
    assert 'smartcourse_build_info{kind="api"' in body
    assert str(uuid.UUID(course["id"])) not in body  # ids never become label values
