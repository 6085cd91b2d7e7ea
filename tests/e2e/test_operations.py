"""The operations API (issue #8): a failed publish, a poison event and a failing e-mail are each found with their
cause and trace id field; a replayed dead letter is applied once; every workflow kind is readable by its owner."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select

from tests.conftest import Api, CeleryWorker, celery_worker_env, read_mail


async def wait_for(check: Callable[[], Any], *, timeout: float = 30, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


async def published(api: Api, owner: dict[str, Any], title: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A course of `owner` with one text lesson, published (a generous wait: the machine may be busy)."""
    course = await api.course(owner, title=title)
    module = await api.module(owner, course["id"])
    lesson = await api.lesson(owner, course["id"], module["id"])
    r = await api.client.post(f"/courses/{course['id']}/publish", headers=owner["headers"])
    assert r.status_code == 202, r.text
    assert (await api.wait_workflow(owner, r.json()["workflow_id"], timeout=120))["status"] == "completed"
    return course, lesson


def is_trace_id(value: Any) -> bool:
    """A real trace id (32 hex digits, not all zero): the suite traces every process (to local span files)."""
    return isinstance(value, str) and len(value) == 32 and int(value, 16) > 0


async def test_failed_publish_is_found_from_the_course_and_the_operations_api(
    api: Api, worker: object, container: Any, holds: Path
) -> None:
    owner = await api.user("instructor")
    admin = await api.admin(container)
    course = await api.course(owner, title="Breaks at extract")
    module = await api.module(owner, course["id"])
    await api.lesson(owner, course["id"], module["id"])
    wf = await api.publish_failing_at_extract(owner, course["id"], holds)
    assert wf["status"] == "failed"
    # From the course: its publish report names the run and the failure.
    report = (await api.client.get(f"/courses/{course['id']}", headers=owner["headers"])).json()["publish_report"]
    assert report["workflow_id"] == wf["workflow_id"] and report["failed_step"] == "extract"
    # From the operations API, by subject.
    r = await api.client.get(
        "/ops/workflows", params={"status": "failed", "subject": f"course:{course['id']}"}, headers=admin["headers"]
    )
    assert r.status_code == 200, r.text
    [item] = r.json()["items"]
    assert item["workflow_id"] == wf["workflow_id"] and item["kind"] == "course_publishing"
    assert item["status"] == "failed" and item["failed_step"] == "extract"
    assert "injected failure at publish.extract" in item["error"] and is_trace_id(item["trace_id"])
    assert item["subject"] == f"course:{course['id']}" and item["failures"] >= 1
    # The list is ordered by updated_at: the run's last change is its failure's record, not before it.
    assert item["updated_at"] >= item["finished_at"]
    r = await api.client.get(
        "/ops/workflows", params={"kind": "course_publishing", "since": "2020-01-01T00:00:00"}, headers=admin["headers"]
    )
    assert wf["workflow_id"] in [i["workflow_id"] for i in r.json()["items"]]
    r = await api.client.get("/ops/workflows", params={"since": "2999-01-01T00:00:00+00:00"}, headers=admin["headers"])
    assert r.status_code == 200 and r.json()["items"] == []
    # The workflow's own page carries the recorded failure too.
    detail = (await api.client.get(f"/workflows/{wf['workflow_id']}", headers=owner["headers"])).json()
    assert detail["failure"]["failed_step"] == "extract" and detail["subject"] == f"course:{course['id']}"
    # Bad filters are clear errors, and the API is for admins.
    for path, name in (("/ops/workflows", "subject"), ("/ops/tasks", "task"), ("/ops/dead-letters", "consumer")):
        r = await api.client.get(path, params={name: "\x00"}, headers=admin["headers"])
        assert r.status_code == 422 and r.json()["code"] == "validation_error", (path, r.text)
    # A bad status is one answer on every list (it was `invalid_status` here, `validation_error` on the others).
    for path, bad in (("/ops/workflows", "broken"), ("/ops/workflows", "failed,all"), ("/ops/tasks", "broken")):
        r = await api.client.get(path, params={"status": bad}, headers=admin["headers"])
        assert r.status_code == 422 and r.json()["code"] == "validation_error", (path, r.text)
        assert [d["field"] for d in r.json()["details"]] == ["status"], r.text
    r = await api.client.get("/ops/dead-letters", params={"status": "broken"}, headers=admin["headers"])
    assert r.status_code == 422 and r.json()["code"] == "validation_error", r.text
    assert (
        "must be one of all, running, retrying, failed, completed, canceled, resolved"
        in (await api.client.get("/ops/workflows", params={"status": "broken"}, headers=admin["headers"])).json()[
            "details"
        ][0]["message"]
    )
    r = await api.client.get("/ops/workflows", params={"status": "failed, resolved"}, headers=admin["headers"])
    assert r.status_code == 200, r.text
    r = await api.client.get("/ops/workflows", params={"kind": "nope"}, headers=admin["headers"])
    assert r.status_code == 422 and r.json()["code"] == "validation_error", r.text  # one answer for every filter
    assert r.json()["details"][0]["field"] == "kind", r.text
    assert (await api.client.get("/ops/workflows", headers=owner["headers"])).status_code == 403


async def test_a_publish_that_failed_then_completed_keeps_its_last_failure(
    api: Api, worker: object, container: Any, holds: Path
) -> None:
    """explore55 F8: a publish that went live after failed attempts kept `failed_step` but cleared `error`, though the
    docs say the last failure stays readable (and an enrollment run keeps it)."""
    owner = await api.user("instructor")
    admin = await api.admin(container)
    course = await api.course(owner, title="Fails once at extract")
    module = await api.module(owner, course["id"])
    await api.lesson(owner, course["id"], module["id"])
    (holds / f"publish.extract.{course['id']}.fail-once").touch()
    r = await api.client.post(f"/courses/{course['id']}/publish", headers=owner["headers"])
    assert r.status_code == 202, r.text
    wf = await api.wait_workflow(owner, r.json()["workflow_id"], timeout=120)
    assert wf["status"] == "completed", wf
    r = await api.client.get(
        "/ops/workflows", params={"status": "all", "subject": f"course:{course['id']}"}, headers=admin["headers"]
    )
    [item] = r.json()["items"]
    assert (item["status"], item["failed_step"], item["failures"]) == ("completed", "extract", 1), item
    assert "injected transient failure at publish.extract" in item["error"], item


async def test_a_publish_run_carries_the_trace_of_its_request(api: Api, worker: object, container: Any) -> None:
    """A run that never failed has the trace of the request that started it (it was "")."""
    owner, admin = await api.user("instructor"), await api.admin(container)
    course = await api.course(owner, title="Traced publish")
    module = await api.module(owner, course["id"])
    await api.lesson(owner, course["id"], module["id"])
    r = await api.client.post(f"/courses/{course['id']}/publish", headers=owner["headers"])
    assert r.status_code == 202, r.text
    assert (await api.wait_workflow(owner, r.json()["workflow_id"], timeout=120))["status"] == "completed"
    listed = await api.client.get(
        "/ops/workflows", params={"status": "all", "subject": f"course:{course['id']}"}, headers=admin["headers"]
    )
    [item] = listed.json()["items"]
    assert item["status"] == "completed" and item["failures"] == 0
    assert item["trace_id"] == r.headers["x-trace-id"] and is_trace_id(item["trace_id"])
    assert item["updated_at"] == item["finished_at"]


async def test_enrollment_and_certificate_workflows_are_readable_by_their_owner(
    api: Api, worker: object, container: Any
) -> None:
    from tests.e2e.test_enrollment import wait_enrollment

    owner = await api.user("instructor")
    course, lesson = await published(api, owner, "One lesson")
    student, stranger = await api.user(), await api.user()
    admin = await api.admin(container)
    enrollment = (
        await api.client.post("/enrollments", json={"course_id": course["id"]}, headers=student["headers"])
    ).json()
    await wait_enrollment(api, student, enrollment["id"], "active")
    detail = (await api.client.get(f"/enrollments/{enrollment['id']}", headers=student["headers"])).json()
    enroll_wf = detail["workflow_id"]
    for who in (student, admin, owner):
        r = await api.client.get(f"/workflows/{enroll_wf}", headers=who["headers"])
        assert r.status_code == 200, r.text
        assert r.json()["kind"] == "enrollment" and r.json()["subject"] == f"enrollment:{enrollment['id']}"
    assert (await api.client.get(f"/workflows/{enroll_wf}", headers=stranger["headers"])).status_code == 404

    assert (await api.client.post(f"/lessons/{lesson['id']}/complete", headers=student["headers"])).status_code == 200
    cert_wf = f"certificate-{enrollment['id']}"
    body = await api.wait_workflow(student, cert_wf, timeout=120)
    assert body["kind"] == "certificate" and body["status"] == "completed", body
    assert [s["name"] for s in body["steps"]] == ["issue", "render_pdf", "notify"]
    assert (await api.client.get(f"/workflows/{cert_wf}", headers=admin["headers"])).status_code == 200
    assert (await api.client.get(f"/workflows/{cert_wf}", headers=stranger["headers"])).status_code == 404
    assert (await api.client.get("/workflows/certificate-nope", headers=admin["headers"])).status_code == 404


async def _active_enrollment_with_a_failure(
    api: Api, container: Any, title: str, *, trace_id: str
) -> tuple[dict[str, Any], dict[str, Any], str]:
    """A student's active enrollment in a new course, and a failed set-up attempt recorded for its run, as the
    worker's hook records one: (student, enrollment, workflow id)."""
    from smartcourse.services import operations
    from tests.e2e.test_enrollment import wait_enrollment

    owner = await api.user("instructor")
    course, _ = await published(api, owner, title)
    student = await api.user()
    enrollment = (
        await api.client.post("/enrollments", json={"course_id": course["id"]}, headers=student["headers"])
    ).json()
    await wait_enrollment(api, student, enrollment["id"], "active")
    wid = (await api.client.get(f"/enrollments/{enrollment['id']}", headers=student["headers"])).json()["workflow_id"]
    await operations.record_workflow_failure(
        container.sessionmaker,
        workflow_id=wid,
        workflow_type="EnrollmentWorkflow",
        step="set_up",
        error="OperationalError: the database went away",
        final=False,
        trace_id=trace_id,
    )
    return student, enrollment, wid


async def test_a_failing_enrollment_step_is_recorded_and_settles(api: Api, worker: object, container: Any) -> None:
    """The worker hook's recording, as it runs it for an enrollment run (which the API does not record itself)."""
    from smartcourse.services import operations

    admin = await api.admin(container)
    student, enrollment, wid = await _active_enrollment_with_a_failure(
        api, container, "Recorded failure", trace_id="4bf92f3577b34da6a3ce929d0e0e4736"
    )
    subject = f"enrollment:{enrollment['id']}"
    [item] = (await api.client.get("/ops/workflows", params={"subject": subject}, headers=admin["headers"])).json()[
        "items"
    ]
    assert (item["workflow_id"], item["kind"], item["status"], item["failed_step"]) == (
        wid,
        "enrollment",
        "retrying",
        "set_up",
    )
    assert item["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736" and "went away" in item["error"]
    seen = (await api.client.get(f"/workflows/{wid}", headers=student["headers"])).json()
    assert seen["failure"]["status"] == "retrying" and seen["error"] == item["error"]
    await operations.record_workflow_progress(container.sessionmaker, workflow_id=wid, last_step=True)
    r = await api.client.get("/ops/workflows", params={"subject": subject, "status": "all"}, headers=admin["headers"])
    [item] = r.json()["items"]
    assert item["status"] == "completed" and item["failed_step"] == "set_up"  # the last failure is kept
    assert (await api.client.get("/ops/workflows", params={"subject": subject}, headers=admin["headers"])).json()[
        "items"
    ] == []


async def test_a_run_left_retrying_after_its_set_up_was_done_is_settled_by_the_sweeper(
    api: Api, worker: object, container: Any
) -> None:
    """explore41 N1: a worker killed between recording its failed set-ups and their success left 32 enrollment runs
    `retrying` for good (another worker did the set-ups at a first attempt, which records nothing) on /ops/workflows
    and the dashboard, their enrollments active. The sweeper settles them from the enrollment's row."""
    from smartcourse.models import Enrollment, WorkflowRun
    from smartcourse.services import operations

    # The failure a killed worker wrote; its success, never.
    _, enrollment, wid = await _active_enrollment_with_a_failure(api, container, "Lost success", trace_id="")

    async def run() -> Any:
        async with container.sessionmaker() as session:
            return await session.get(WorkflowRun, wid)

    async with container.sessionmaker() as session, session.begin():
        assert await operations.settle_finished_enrollment_runs(session, older_than_s=3600) == 0  # too recent
    assert (await run()).status == "retrying"
    async with container.sessionmaker() as session, session.begin():
        assert await operations.settle_finished_enrollment_runs(session, older_than_s=0) >= 1
        activated_at = await session.scalar(select(Enrollment.activated_at).where(Enrollment.id == enrollment["id"]))
    settled = await run()
    assert (settled.status, settled.finished_at, settled.failed_step) == ("completed", activated_at, "set_up")


async def _counter(container: Any, metric: str, bucket: str = "") -> float:
    from smartcourse.models import AnalyticsCounter

    async with container.sessionmaker() as session:
        value = await session.scalar(
            select(AnalyticsCounter.value).where(AnalyticsCounter.metric == metric, AnalyticsCounter.bucket == bucket)
        )
    return float(value or 0)


async def test_poison_event_is_dead_lettered_and_a_replay_applies_it_once(
    api: Api, worker: object, container: Any, holds: Path
) -> None:
    from smartcourse.models import DeadLetter, OutboxEvent

    admin = await api.admin(container)
    before = await _counter(container, "students")
    fail = holds / "consume.analytics.user.registered.fail"
    fail.touch()
    try:
        student = await api.user()

        async def letter() -> Any:
            async with container.sessionmaker() as session:
                return await session.scalar(
                    select(DeadLetter)
                    .join(OutboxEvent, OutboxEvent.id == DeadLetter.event_id)
                    .where(DeadLetter.consumer == "analytics", OutboxEvent.aggregate_id == student["id"])
                )

        dl = await wait_for(letter, what="the dead letter")
    finally:
        fail.unlink()
    assert await _counter(container, "students") == before  # not applied

    r = await api.client.get("/ops/dead-letters", params={"consumer": "analytics"}, headers=admin["headers"])
    assert r.status_code == 200, r.text
    [item] = [i for i in r.json()["items"] if i["id"] == str(dl.id)]
    assert item["event_type"] == "user.registered" and item["replayable"] and item["replayed_at"] is None
    assert "InjectedFault: injected failure at consume.analytics" in item["error"] and is_trace_id(item["trace_id"])
    dash = (await api.client.get("/analytics/dashboard", headers=admin["headers"])).json()
    assert dash["workflow_issues"]["failed_events"] >= 1

    # Two replays at once, then a third: applied exactly once, every answer the same.
    url = f"/ops/dead-letters/{dl.id}/replay"
    first, second = await asyncio.gather(
        api.client.post(url, headers=admin["headers"]), api.client.post(url, headers=admin["headers"])
    )
    third = await api.client.post(url, headers=admin["headers"])
    answers = [x.json() for x in (first, second, third)]
    assert all(x.status_code == 200 for x in (first, second, third)), answers
    assert {a["outcome"] for a in answers} == {"applied"} and len({a["replayed_at"] for a in answers}) == 1
    assert sorted(a["replayed_now"] for a in answers) == [False, False, True]
    assert await _counter(container, "students") == before + 1
    r = await api.client.get("/ops/dead-letters", params={"status": "replayed"}, headers=admin["headers"])
    assert str(dl.id) in [i["id"] for i in r.json()["items"]]
    # Unknown ids and non-admins.
    r = await api.client.post(f"/ops/dead-letters/{uuid.uuid4()}/replay", headers=admin["headers"])
    assert r.status_code == 404 and r.json()["code"] == "dead_letter_not_found"
    assert (await api.client.post(url, headers=student["headers"])).status_code == 403


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_failing_email_shows_in_tasks_and_dead_letters(
    api: Api, container: Any, settings: Any, celery_worker: CeleryWorker
) -> None:
    """A Celery worker whose SMTP server is unreachable: the task retries, then fails, and says why; once mail
    works again (the suite's worker, with the SMTP sink), replaying the dead letter sends the e-mail, once."""
    from smartcourse.bootstrap import resolve_settings
    from smartcourse.models import Notification
    from smartcourse.services.notifications import create_notification
    from smartcourse.tasks import make_app, task_queue

    resolved = resolve_settings(settings, need=("redis",))
    queue = f"ops-test-{uuid.uuid4().hex[:8]}"
    env = {
        "REDIS_URL": resolved.redis_url or "",
        "CELERY_QUEUE": queue,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(_closed_port()),
        "CELERY_MAX_RETRIES": "1",
        "EMAIL_MAX_RETRIES": "1",
    }
    env_all = celery_worker_env(resolved, **env)
    env_all.pop("CELERY_BROKER_URL", None)
    worker = CeleryWorker(env_all, Path(settings.data_dir) / "celery-ops.log", "ops")
    worker.start()
    sender = make_app(resolved.model_copy(update={"celery_queue": queue, "celery_broker_url": None}))
    try:
        user = await api.user()
        admin = await api.admin(container)
        async with container.uow() as uow:
            nid = await create_notification(
                uow.session,
                user_id=uuid.UUID(user["id"]),
                kind="enrollment.welcome",
                title="Never delivered",
                body="The SMTP server is down.",
                dedupe_key=f"ops-test:{uuid.uuid4()}",
            )
            await uow.commit()
        sender.send_task("notifications.send_email", args=[str(nid)])

        async def failed() -> Any:
            r = await api.client.get(
                "/ops/tasks", params={"status": "failed", "task": "notifications.send_email"}, headers=admin["headers"]
            )
            assert r.status_code == 200, r.text
            return next((i for i in r.json()["items"] if i["args"]["args"] == [str(nid)]), None)

        item = await wait_for(failed, timeout=60, what="the failed task")
        assert item["retries"] == 1 and is_trace_id(item["trace_id"])
        assert "ConnectionRefusedError" in item["error"] or "Connection refused" in item["error"], item["error"]
        # The cause in one line, the traceback apart (explore77 F9: a traceback's 4,000-character tail).
        assert "\n" not in item["error"] and item["traceback"].startswith("Traceback"), item
        r = await api.client.get(
            "/ops/dead-letters", params={"consumer": "celery:notifications.send_email"}, headers=admin["headers"]
        )
        letters = [i for i in r.json()["items"] if i["event_id"] == item["task_id"]]
        assert letters and letters[0]["event_type"] == "task:notifications.send_email" and letters[0]["replayable"]
        dash = (await api.client.get("/analytics/dashboard", headers=admin["headers"])).json()
        assert dash["workflow_issues"]["failed_tasks"] >= 1

        url = f"/ops/dead-letters/{letters[0]['id']}/replay"
        first = await api.client.post(url, headers=admin["headers"])
        assert first.status_code == 200 and first.json()["outcome"] == "resent", first.text
        again = (await api.client.post(url, headers=admin["headers"])).json()
        assert again["replayed_now"] is False and again["replayed_at"] == first.json()["replayed_at"]

        async def sent() -> Any:
            async with container.sessionmaker() as session:
                note = await session.get(Notification, nid)
                return note if note is not None and note.email_status == "sent" else None

        note = await wait_for(sent, timeout=60, what="the replayed e-mail")
        assert note.email_attempts == 1
        assert len([m for m in read_mail(Path(settings.data_dir) / "mail") if str(nid) in str(m["Message-ID"])]) == 1
    finally:
        worker.stop()
        with sender.connection_for_write() as conn:
            queue_decl = task_queue(queue)
            try:
                queue_decl(conn.default_channel).delete()
            except Exception:
                pass


async def test_failures_keep_the_trace_they_happened_in(container: Any) -> None:
    """Under a recording span the dead letter and the task outcome carry its trace id; outside any span, ""."""
    from opentelemetry.sdk.trace import TracerProvider
    from sqlalchemy import delete

    from smartcourse.event_consumer import dead_letter
    from smartcourse.models import DeadLetter, TaskRun
    from smartcourse.services import operations

    tracer = TracerProvider().get_tracer("tests")  # a provider of its own: the global one is left alone
    event_id, task_id = uuid.uuid4(), f"test-{uuid.uuid4()}"
    assert operations.current_trace_id() == ""
    with tracer.start_as_current_span("consume") as span:
        expected = format(span.get_span_context().trace_id, "032x")
        assert operations.current_trace_id() == expected
        await dead_letter(
            container.sessionmaker, "trace-test", "t", {"event_id": str(event_id), "event_type": "x"}, "boom"
        )
        async with container.sessionmaker() as session, session.begin():
            await operations.record_task_outcome(
                session, task_id=task_id, task="t", status="retrying", retries=1, args={}, error="e", trace_id=expected
            )
    async with container.sessionmaker() as session, session.begin():
        # A later outcome without a trace keeps the one the failure had.
        await operations.record_task_outcome(
            session, task_id=task_id, task="t", status="failed", retries=2, args={}, error=None, trace_id=""
        )
    try:
        async with container.sessionmaker() as session:
            letter = await session.scalar(select(DeadLetter).where(DeadLetter.event_id == event_id))
            run = await session.get(TaskRun, task_id)
        assert letter is not None and letter.trace_id == expected
        assert run is not None and (run.status, run.retries, run.trace_id, run.error) == ("failed", 2, expected, "e")
    finally:
        async with container.sessionmaker() as session, session.begin():
            await session.execute(delete(DeadLetter).where(DeadLetter.event_id == event_id))
            await session.execute(delete(TaskRun).where(TaskRun.task_id == task_id))


async def test_the_dashboard_counts_the_tasks_being_retried(api: Api, container: Any) -> None:
    """explore30 F5: while every e-mail failed and was retried, the dashboard's `workflow_issues` stayed at zero
    until the tasks gave up (minutes later): the retries count there as they happen."""
    from sqlalchemy import delete

    from smartcourse.models import TaskRun
    from smartcourse.services import operations

    admin = await api.admin(container)

    async def retrying() -> int:
        dash = (await api.client.get("/analytics/dashboard", headers=admin["headers"])).json()
        return int(dash["workflow_issues"]["retrying_tasks"])

    before = await retrying()
    task_id = f"test-{uuid.uuid4()}"
    args = {"args": [str(uuid.uuid4())]}
    try:
        async with container.sessionmaker() as session, session.begin():
            await operations.record_task_outcome(
                session,
                task_id=task_id,
                task="notifications.send_email",
                status="retrying",
                retries=1,
                args=args,
                error="SMTPDataError 500",
            )
        assert await retrying() == before + 1
        async with container.sessionmaker() as session, session.begin():
            await operations.record_task_outcome(
                session,
                task_id=task_id,
                task="notifications.send_email",
                status="succeeded",
                retries=2,
                args=args,
                error=None,
            )
        assert await retrying() == before
    finally:
        async with container.sessionmaker() as session, session.begin():
            await session.execute(delete(TaskRun).where(TaskRun.task_id == task_id))


async def test_analytics_endpoints_over_http(api: Api, worker: object, container: Any) -> None:
    owner = await api.user("instructor")
    course, _ = await published(api, owner, "Counted")
    student, other = await api.user(), await api.user()
    admin = await api.admin(container)
    r = await api.client.post("/enrollments", json={"course_id": course["id"]}, headers=student["headers"])
    assert r.status_code in (200, 201), r.text
    admitted = str(r.json()["admitted_at"])  # UTC, ISO: its first ten characters are the day of admission

    r = await api.client.get("/analytics/enrollments", params={"interval": "week"}, headers=admin["headers"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["interval"] == "week" and body["series"] and all(set(p) == {"period", "count"} for p in body["series"])
    assert body["total"] == sum(p["count"] for p in body["series"])

    async def counted_today() -> Any:  # the admission's event reaches the counters through the relay
        day = await api.client.get(
            "/analytics/enrollments", params={"from": admitted[:10], "to": admitted[:10]}, headers=admin["headers"]
        )
        [point] = day.json()["series"]
        assert point["period"] == admitted[:10]
        return point["count"] >= 1

    await wait_for(counted_today, what="the admission in today's series")
    r = await api.client.get("/analytics/completions", params={"interval": "month"}, headers=admin["headers"])
    assert r.status_code == 200 and {"completion_rate", "avg_time_to_complete_hours", "series"} <= set(r.json())
    # The figures beside the series are all time, whatever the range: the dashboard's (and the schema says so).
    far = await api.client.get(
        "/analytics/completions", params={"from": "2999-12-30", "to": "2999-12-31"}, headers=admin["headers"]
    )
    assert far.status_code == 200 and (far.json()["from"], far.json()["to"]) == ("2999-12-30", "2999-12-31")
    assert [p["completed"] for p in far.json()["series"]] == [0, 0]

    async def same_as_the_dashboard() -> bool:  # read again while earlier tests' events still reach the counters
        again = await api.client.get(
            "/analytics/completions", params={"from": "2999-12-30", "to": "2999-12-31"}, headers=admin["headers"]
        )
        dash = (await api.client.get("/analytics/dashboard", headers=admin["headers"])).json()
        keys = ("completion_rate", "avg_time_to_complete_hours")
        return all(again.json()[key] == dash[key] for key in keys)

    await wait_for(same_as_the_dashboard, what="the all-time completion figures beside the dashboard's")
    schema = (await api.client.get("/openapi.json")).json()["components"]["schemas"]["CompletionSeries"]
    for key in ("completed", "admitted", "completion_rate", "avg_time_to_complete_hours"):
        assert "all time" in schema["properties"][key]["description"], key
    for params, code in (
        ({"interval": "year"}, "validation_error"),
        ({"from": "2026-02-01", "to": "2026-01-01"}, "invalid_range"),
        ({"from": "2001-01-01", "to": "2026-01-01"}, "range_too_long"),
        ({"from": "yesterday"}, "validation_error"),
        ({"from": "2026-01-01T00:00:00"}, "validation_error"),  # explore30 F11: a date-time passed for a day
        ({"to": "20260101"}, "validation_error"),
    ):
        r = await api.client.get("/analytics/enrollments", params=params, headers=admin["headers"])
        assert r.status_code == 422 and r.json()["code"] == code, (params, r.text)

    # A filter the route does not have is refused, not ignored (explore61 F4: the platform's figure came back).
    for path, params in (
        ("/analytics/enrollments", {"course_id": course["id"]}),
        ("/analytics/dashboard", {"from": "2026-01-01"}),
        ("/users", {"is_active": "false"}),
        (f"/courses/{course['id']}/enrollments", {"state": "active"}),
    ):
        r = await api.client.get(path, params=params, headers=admin["headers"])
        assert (r.status_code, r.json()["code"]) == (422, "validation_error"), (path, r.text)
        [problem] = r.json()["details"]
        assert problem["field"] == f"query.{next(iter(params))}" and problem["type"] == "unknown_parameter", r.text
    r = await api.client.get("/analytics/enrollments", params={"interval": "week", "_": "17"}, headers=admin["headers"])
    assert r.status_code == 200, r.text  # a cache buster passes
    # Anonymous: the authentication answers first, not a 422 listing the filters (explore62 F10).
    for garbage in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic eDp5"}):
        r = await api.client.get("/users", params={"is_active": "false"}, headers=garbage)
        assert r.status_code == 401, (garbage, r.text)  # explore64 F2: a garbage header got the 422
    # A signed token of an account disabled since: the 401 the route gives, not the 422 (the account is checked once,
    # before the parameters: the check decoded the token on its own and took any signature).
    gone = await api.user("student")
    r = await api.client.put(f"/users/{gone['id']}", json={"is_active": False}, headers=admin["headers"])
    assert r.status_code == 200, r.text
    r = await api.client.get(f"/analytics/student/{gone['id']}", params={"days": "7"}, headers=gone["headers"])
    assert (r.status_code, r.json()["code"]) == (401, "account_disabled"), r.text
    view = await api.client.get(f"/analytics/course/{course['id']}", headers=owner["headers"])
    assert view.status_code == 200 and view.json()["title"] == "Counted"
    assert view.json()["enrollments"]["admitted"] == 1
    assert (await api.client.get(f"/analytics/course/{course['id']}", headers=student["headers"])).status_code == 404
    mine = await api.client.get(f"/analytics/student/{student['id']}", headers=student["headers"])
    assert mine.status_code == 200 and mine.json()["live_courses"] == 1
    assert (await api.client.get(f"/analytics/student/{student['id']}", headers=other["headers"])).status_code == 404
    assert (await api.client.get(f"/analytics/student/{student['id']}", headers=admin["headers"])).status_code == 200
    dash = (await api.client.get("/analytics/dashboard", headers=admin["headers"])).json()
    assert dash["popular_courses"] and all("title" in p for p in dash["popular_courses"])
    assert dash["total_students"] <= dash["registered_students"]
    # Each says what the course is now (an archived one keeps the enrollments it had: tests/unit/test_domain.py).
    statuses = {"draft", "publishing", "published", "archived"}
    assert all(p["status"] in statuses for p in dash["popular_courses"]), dash["popular_courses"]


async def test_analytics_read_only_the_days_they_show(api: Api, container: Any) -> None:
    """The per-student-per-day counters pile up for ever; the dashboard and the series read the days they show (the
    dashboard read every row each time: seconds after a year of them, explore28 F1)."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import delete, event, func

    from smartcourse.models import AnalyticsCounter

    admin = await api.admin(container)
    today = datetime.now(UTC).date()
    old = [
        AnalyticsCounter(
            metric="student_active_days", bucket=f"{today - timedelta(days=31 + i)}|{uuid.uuid4()}", value=1
        )
        for i in range(300)
    ]
    async with container.uow() as uow:
        uow.session.add_all(old)
        await uow.commit()
    read: list[int] = []

    def rows_read(_conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM analytics_counters" in statement:
            read.append(cursor.rowcount)

    sync_engine = container.engine.sync_engine
    try:
        async with container.uow() as uow:
            stored = await uow.session.scalar(select(func.count()).select_from(AnalyticsCounter))
        event.listen(sync_engine, "after_cursor_execute", rows_read)
        try:
            dash = await api.client.get("/analytics/dashboard", headers=admin["headers"])
            series = [
                await api.client.get(f"/analytics/{name}", params={"interval": "month"}, headers=admin["headers"])
                for name in ("enrollments", "completions")
            ]
        finally:
            event.remove(sync_engine, "after_cursor_execute", rows_read)
        assert dash.status_code == 200 and all(r.status_code == 200 for r in series), dash.text
        assert len(read) == 3 and all(0 <= n <= stored - len(old) for n in read), (read, stored)
    finally:
        async with container.uow() as uow:
            await uow.session.execute(
                delete(AnalyticsCounter).where(
                    AnalyticsCounter.metric == "student_active_days",
                    AnalyticsCounter.bucket.in_([row.bucket for row in old]),
                )
            )
            await uow.commit()
