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


async def test_the_apis_metrics_read_the_stored_state_themselves(api: Api, container: Any) -> None:
    """explore10 F5: the backlog gauges were only on the worker's port (unscrapeable while it was down), and the
    API's /metrics showed the dispatcher's counters frozen at 0. The API reads the state on a scrape, at most every
    few seconds; the dispatcher's series exist only where a dispatcher runs."""
    import time

    state = metrics.DATABASE_STATE
    state.snapshot, state._tried = None, 0.0  # as in an API process, where the worker's refresh loop never runs
    before = time.time()
    r = await api.client.get("/metrics")
    assert r.status_code == 200
    assert state.snapshot is not None and state.snapshot.at >= before  # read by this scrape
    # (The figure itself moves with the suite's other enrollments: the one this scrape read is the one it shows.)
    assert f"smartcourse_enrollment_backlog {float(state.snapshot.enrollment_backlog)}" in r.text
    assert "smartcourse_enrollment_backlog_oldest_age_seconds" in r.text
    assert "smartcourse_outbox_backlog" in r.text
    read_at = state.snapshot.at if state.snapshot else None
    assert read_at is not None
    await api.client.get("/metrics")
    assert state.snapshot is not None and state.snapshot.at == read_at  # a second scrape within 5 s: no new read


def test_a_process_that_only_imports_the_dispatcher_has_no_dispatcher_series() -> None:
    import subprocess
    import sys

    code = (
        "import smartcourse.metrics, smartcourse.services.dispatcher, smartcourse.services.health\n"
        "from prometheus_client import REGISTRY, generate_latest\n"
        "print(generate_latest(REGISTRY).decode())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "smartcourse_dispatcher" not in out and "smartcourse_http_requests_total" in out
