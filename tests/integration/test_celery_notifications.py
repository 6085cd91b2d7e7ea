"""Notification emails through a real Celery worker: once per notification, across kills, into dead letters."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from tests.conftest import REPO, Api, CeleryWorker, celery_worker_env, read_mail
from tests.engines import require_engine

STACK_MAIL_DIR = Path(os.environ.get("STACK_MAIL_DIR", REPO / "var" / "stack" / "mail"))


@dataclass
class MailRig:
    """One broker + SMTP sink combination: the worker, how to enqueue, where the mail lands."""

    broker: str
    worker: CeleryWorker
    mail_dir: Path
    enqueue: Callable[[uuid.UUID], None]
    send_task: Callable[..., Any]
    queue: str
    app: Any


@pytest.fixture(scope="session")
def rabbit_rig(settings: Any) -> Iterator[MailRig]:
    """A worker on the stack's RabbitMQ (a queue of its own) mailing through the stack's SMTP sink."""
    from smartcourse.tasks import dead_letter_queue, make_app, task_queue

    broker = require_engine("rabbitmq")
    host, port = require_engine("smtp").rsplit(":", 1)
    queue = f"smartcourse-test-{uuid.uuid4().hex[:8]}"
    env = {"CELERY_BROKER_URL": broker, "CELERY_QUEUE": queue, "SMTP_HOST": host, "SMTP_PORT": port}
    worker = CeleryWorker(celery_worker_env(settings, **env), Path(settings.data_dir) / "celery-rabbit.log", "rabbit")
    worker.start()
    sender = make_app(settings.model_copy(update={"celery_broker_url": broker, "celery_queue": queue}))

    def enqueue(notification_id: uuid.UUID) -> None:
        sender.send_task("notifications.send_email", args=[str(notification_id)])

    yield MailRig("rabbitmq", worker, STACK_MAIL_DIR, enqueue, sender.send_task, queue, sender)
    worker.stop()
    with sender.connection_for_write() as conn:  # leave the shared broker as we found it
        for q in (task_queue(queue), dead_letter_queue(queue)):
            with contextlib.suppress(Exception):
                q(conn.default_channel).delete()


@pytest.fixture(params=["embedded-redis", "rabbitmq"])
def rig(request: pytest.FixtureRequest, settings: Any) -> MailRig:
    if request.param == "rabbitmq":
        rig: MailRig = request.getfixturevalue("rabbit_rig")
        return rig
    from smartcourse.tasks import app, enqueue_email

    worker: CeleryWorker = request.getfixturevalue("celery_worker")
    return MailRig("redis", worker, Path(settings.data_dir) / "mail", enqueue_email, app.send_task, "smartcourse", app)


# --- helpers ----------------------------------------------------------------------------------------


async def notify(container: Any, user: dict[str, Any], **fields: Any) -> uuid.UUID:
    from smartcourse.services.notifications import create_notification

    values: dict[str, Any] = {
        "kind": "enrollment.welcome",
        "title": f"Hello {uuid.uuid4().hex[:6]}",
        "body": "Your course starts on Monday.\n\nSee you there.",
        "dedupe_key": f"test:{uuid.uuid4()}",
        **fields,
    }
    async with container.uow() as uow:
        nid = await create_notification(uow.session, user_id=uuid.UUID(user["id"]), **values)
        await uow.commit()
    return nid


async def row(container: Any, nid: uuid.UUID) -> Any:
    from smartcourse.models import Notification

    async with container.uow() as uow:
        return await uow.session.get(Notification, nid)


async def wait_for(check: Callable[[], Any], timeout: float = 45, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def wait_sent(container: Any, nid: uuid.UUID, timeout: float = 45) -> Any:
    async def sent() -> Any:
        note = await row(container, nid)
        return note if note.email_status == "sent" else None

    return await wait_for(sent, timeout, f"notification {nid} to be emailed")


def mails_for(rig: MailRig, nid: uuid.UUID, to: str) -> list[Any]:
    return [m for m in read_mail(rig.mail_dir, to=to) if str(nid) in str(m["Message-ID"])]


async def reached(hold: Path) -> bool:
    """The task stopped at its hold point (faults.hold_point), i.e. after its claim.

    Waited for instead of polling `holds_claim`: the probe takes the claim for an instant when it is free, and a
    task claiming at that instant finds it taken, answers "in_progress" and never sends."""
    return hold.with_suffix(".reached").exists()


@contextlib.asynccontextmanager
async def sender_held(rig: MailRig, container: Any, nid: uuid.UUID) -> AsyncIterator[None]:
    """The notification enqueued and its task held at its hold point (faults.hold_point: after its claim, before
    SMTP) until the block ends."""
    hold = Path(rig.worker.env["SMARTCOURSE_TEST_HOLD_DIR"]) / f"{nid}.hold"
    hold.touch()
    try:
        rig.enqueue(nid)
        await wait_for(lambda: reached(hold), what="the task to claim the notification")
        assert await holds_claim(container, nid)
        yield
    finally:
        hold.unlink(missing_ok=True)


async def holds_claim(container: Any, nid: uuid.UUID) -> bool:
    """True while a sender holds the notification's e-mail claim, i.e. a worker is mid-task (a probe: it takes the
    claim for an instant if it is free, so only ask when no task may be claiming)."""
    from sqlalchemy import func

    from smartcourse.services.notifications import email_claim_key

    async with container.uow() as uow:
        claimed = await uow.session.scalar(select(func.pg_try_advisory_xact_lock(email_claim_key(nid))))
        await uow.session.rollback()
    return not claimed


# --- tests ------------------------------------------------------------------------------------------


async def test_worker_emails_a_notification(rig: MailRig, container: Any, api: Api) -> None:
    user = await api.user()
    nid = await notify(container, user, title="Welcome to SmartCourse")
    rig.enqueue(nid)
    note = await wait_sent(container, nid)
    assert note.email_attempts == 1 and note.emailed_at is not None
    [msg] = mails_for(rig, nid, user["email"])
    assert msg["Subject"] == "Welcome to SmartCourse"
    assert user["email"] in msg["To"]
    assert msg["Message-ID"].strip() == f"<notification-{nid}@smartcourse.local>"  # folded: it is long
    assert "Your course starts on Monday." in msg.get_body(preferencelist=("plain",)).get_content()


async def test_enqueue_five_times_sends_one_email(rig: MailRig, container: Any, api: Api) -> None:
    user = await api.user()
    offset = rig.worker.log_offset()
    nid = await notify(container, user)
    for _ in range(5):
        rig.enqueue(nid)

    async def all_five_ran() -> bool:
        return rig.worker.log_since(offset).count("notifications.send_email[") >= 10  # received + succeeded

    await wait_for(all_five_ran, what="the five tasks")
    note = await wait_sent(container, nid)
    assert note.email_attempts == 1
    assert len(mails_for(rig, nid, user["email"])) == 1
    log = rig.worker.log_since(offset)
    assert log.count("succeeded") >= 5 and "'sent'" in log

    from smartcourse.models import TaskRun

    async def five_outcomes() -> list[Any] | None:
        # One row per task id: the sending one's written in its own commit, the four no-ops' by the signal.
        async with container.sessionmaker() as session:
            rows = list(await session.scalars(select(TaskRun).where(TaskRun.args["args"][0].astext == str(nid))))
        return rows if len(rows) >= 5 else None

    runs = await wait_for(five_outcomes, what="the five outcome rows")
    assert len(runs) == 5 and {r.status for r in runs} == {"succeeded"} and len({r.task_id for r in runs}) == 5


async def test_a_short_row_lock_is_not_taken_for_a_sender(rig: MailRig, container: Any, api: Api) -> None:
    """Someone else holding the notification's row for an instant (a student marking it read as the task starts) is
    not another sender: the e-mail goes, and its mark waits out that instant. It used to be taken for another sender's
    claim (SKIP LOCKED): the task answered "in_progress" and the e-mail waited for the sweeper (not running here)."""
    from smartcourse.models import Notification

    user = await api.user()
    nid = await notify(container, user)
    offset = rig.worker.log_offset()
    async with container.uow() as uow:  # what POST /notifications/{id}/read holds while it updates the row
        await uow.session.execute(select(Notification.id).where(Notification.id == nid).with_for_update())
        rig.enqueue(nid)

        async def received() -> bool:
            return "notifications.send_email[" in rig.worker.log_since(offset)

        await wait_for(received, what="the worker to receive the task")
        await asyncio.sleep(1.0)  # the task is at its mark by now, waiting for this transaction
        assert (await row(container, nid)).email_status == "pending"
        await uow.commit()
    note = await wait_sent(container, nid, timeout=20)
    assert note.email_attempts == 1
    assert len(mails_for(rig, nid, user["email"])) == 1
    assert "'in_progress'" not in rig.worker.log_since(offset)


async def test_marking_read_does_not_wait_for_the_relay(rig: MailRig, container: Any, api: Api) -> None:
    """A sender in the middle of its SMTP conversation (held at its hold point here, a stalled relay in explore49 N2)
    holds no lock on the notification's row: its owner marking it read is answered at once. The sender used to lock
    the row FOR UPDATE across the conversation, and the read waited for the relay (503 after the statement timeout,
    on every try). The e-mail still goes once, and the read time stays."""
    user = await api.user()
    nid = await notify(container, user)
    async with sender_held(rig, container, nid):
        r = await asyncio.wait_for(api.client.post(f"/notifications/{nid}/read", headers=user["headers"]), 10)
        assert r.status_code == 200 and r.json()["read_at"] is not None, r.text
        assert await holds_claim(container, nid), "the sender is still mid-task"
    note = await wait_sent(container, nid)
    assert note.email_attempts == 1 and note.read_at is not None
    assert len(mails_for(rig, nid, user["email"])) == 1


async def test_attachment_from_the_file_store(rig: MailRig, container: Any, api: Api) -> None:
    user = await api.user()
    key = f"certificates/{uuid.uuid4()}.pdf"
    pdf = b"%PDF-1.4\n% a certificate\n%%EOF\n"
    await container.files.put(key, pdf, "application/pdf")
    nid = await notify(container, user, title="Your certificate", attachment_key=key)
    assert (await row(container, nid)).data == {"attachment_key": key}
    rig.enqueue(nid)
    await wait_sent(container, nid)
    [msg] = mails_for(rig, nid, user["email"])
    [part] = list(msg.iter_attachments())
    assert part.get_filename() == key.rsplit("/", 1)[1]
    assert part.get_content_type() == "application/pdf" and part.get_content() == pdf


async def test_worker_killed_mid_task_redelivers_and_sends_once(rig: MailRig, container: Any, api: Api) -> None:
    user = await api.user()
    nid = await notify(container, user)
    async with sender_held(rig, container, nid):
        rig.worker.kill()  # SIGKILL, worker and pool: the message was never acked
    await asyncio.sleep(0.5)
    assert not await holds_claim(container, nid), "the killed task's lock must be gone with its connection"
    assert (await row(container, nid)).email_status == "pending"
    assert mails_for(rig, nid, user["email"]) == []

    rig.worker.start()  # on Redis the message comes back after the visibility timeout (8 s here)
    note = await wait_sent(container, nid, timeout=60)
    assert note.email_attempts == 1
    assert len(mails_for(rig, nid, user["email"])) == 1


async def test_a_mark_failing_after_smtp_accepted_is_recorded_anew_not_sent_again(
    rig: MailRig, container: Any, api: Api
) -> None:
    """The transaction fails after the SMTP server accepted the message (here an injected fault at the mark; in a
    chaos run, PostgreSQL restarting): 'sent' is recorded in a new transaction, and the e-mail goes out once."""
    user = await api.user()
    nid = await notify(container, user)
    fault = Path(rig.worker.env["SMARTCOURSE_TEST_HOLD_DIR"]) / f"email.mark.{nid}.fail"
    fault.touch()
    try:
        offset = rig.worker.log_offset()
        rig.enqueue(nid)
        note = await wait_sent(container, nid, timeout=60)
    finally:
        fault.unlink(missing_ok=True)
    assert note.email_attempts == 1
    await asyncio.sleep(1.0)  # a retry of the task, had there been one, would have sent again by now
    assert len(mails_for(rig, nid, user["email"])) == 1
    assert "transaction failed after SMTP accepted it" in rig.worker.log_since(offset)


async def test_pool_child_killed_mid_task_is_redelivered(rig: MailRig, container: Any, api: Api) -> None:
    """Only the process running the task dies: the worker rejects the message with requeue (acks_late +
    task_reject_on_worker_lost) and runs it again at once."""
    user = await api.user()
    nid = await notify(container, user)
    async with sender_held(rig, container, nid):
        offset = rig.worker.log_offset()
        children = _children(rig.worker.proc.pid)
        assert children
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    note = await wait_sent(container, nid, timeout=60)
    assert note.email_attempts == 1
    assert len(mails_for(rig, nid, user["email"])) == 1
    assert "WorkerLostError" in rig.worker.log_since(offset)


def test_the_worker_runs_the_pool_that_registers_again_after_a_reconnect(rig: MailRig) -> None:
    """The worker's pool is `smartcourse.celery_pool`'s (tests/unit/test_celery_pool.py: Celery's own stops the worker
    when a broker reconnect finds a pool process that exited and was not replaced yet)."""
    stats = rig.app.control.inspect(timeout=5).stats() or {}
    name = next((n for n in stats if n.startswith(f"{rig.worker.name}-")), None)
    assert name, f"no answer from the {rig.worker.name} worker: {sorted(stats)}"
    assert stats[name]["pool"]["implementation"] == "smartcourse.celery_pool:TaskPool"


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                out.append(int(stat.parent.name))
    return out


async def test_task_out_of_retries_is_dead_lettered(rig: MailRig, container: Any, api: Api) -> None:
    from smartcourse.models import DeadLetter

    user = await api.user()
    missing = f"certificates/missing-{uuid.uuid4()}.pdf"  # never uploaded: every attempt fails
    nid = await notify(container, user, attachment_key=missing)
    rig.enqueue(nid)

    async def dead_letter() -> Any:
        async with container.uow() as uow:
            rows = await uow.session.scalars(
                select(DeadLetter).where(DeadLetter.consumer == "celery:notifications.send_email")
            )
            return next((r for r in rows if r.payload["args"] == [str(nid)]), None)

    dl = await wait_for(dead_letter, timeout=60, what="the dead letter")
    assert dl.payload["task"] == "notifications.send_email" and dl.payload["retries"] == 2
    assert "NotFound" in dl.error and dl.topic == rig.queue
    # The trace of the run that gave up, as its outcome in GET /ops/tasks has it (explore10 F6: it was "").
    from smartcourse.models import TaskRun

    async with container.uow() as uow:
        outcome = await uow.session.scalar(select(TaskRun).where(TaskRun.task_id == str(dl.event_id)))
    assert outcome is not None and outcome.trace_id and dl.trace_id == outcome.trace_id, (dl.trace_id, outcome)
    note = await row(container, nid)
    assert note.email_status == "failed" and note.email_attempts == 3  # first try + 2 retries
    assert mails_for(rig, nid, user["email"]) == []
    if rig.broker == "rabbitmq":  # the rejected message was routed to the broker's DLQ too
        from kombu import Connection

        from smartcourse.tasks import dead_letter_queue

        def dlq_count() -> int:
            with Connection(require_engine("rabbitmq")) as conn:
                _, count, _ = dead_letter_queue(rig.queue)(conn.default_channel).queue_declare(passive=True)
            return int(count)

        async def routed() -> bool:
            return await asyncio.to_thread(dlq_count) >= 1

        # The task stores its dead letter, then rejects the message: the broker routes it a moment after the row.
        await wait_for(routed, timeout=30, what="the message in the broker's DLQ")


async def test_sweeper_enqueues_a_lost_email(rig: MailRig, container: Any, api: Api) -> None:
    from smartcourse.models import Notification
    from smartcourse.services.notifications import pending_to_sweep

    user = await api.user()
    nid = await notify(container, user)  # committed, but its enqueue "was lost": never sent to the broker
    assert nid not in await pending_to_sweep(container.sessionmaker)  # too young: its task may be queued
    async with container.uow() as uow:
        await uow.session.execute(
            update(Notification)
            .where(Notification.id == nid)
            .values(created_at=Notification.created_at - timedelta(minutes=2))
        )
        await uow.commit()
    assert nid in await pending_to_sweep(container.sessionmaker)
    assert nid not in await pending_to_sweep(container.sessionmaker, older_than=timedelta(minutes=3))
    rig.send_task("notifications.sweep_pending")  # what beat sends every minute (EMAIL_SWEEP_SECONDS)
    await wait_sent(container, nid)
    assert len(mails_for(rig, nid, user["email"])) == 1
    assert nid not in await pending_to_sweep(container.sessionmaker)


async def test_a_batch_sends_each_once_and_retries_only_the_failing_one(rig: MailRig, container: Any, api: Api) -> None:
    """`notifications.send_emails` (the enrollment burst's welcome e-mails, coalesced): a failing e-mail does not
    hold back the others; the task's retries find those already sent, and out of retries only the failing one is
    marked failed beside the batch's dead letter."""
    from smartcourse.models import DeadLetter, TaskRun

    user, other = await api.user(), await api.user()
    good = await notify(container, user)
    bad = await notify(container, user, attachment_key=f"certificates/missing-{uuid.uuid4()}.pdf")
    also = await notify(container, other)
    emails = [{"id": str(good), "trace": None}, {"id": str(bad)}, {"id": "not-a-notification"}, {"id": str(also)}]
    rig.send_task("notifications.send_emails", args=[emails])

    async def dead_letter() -> Any:
        async with container.uow() as uow:
            rows = await uow.session.scalars(
                select(DeadLetter).where(DeadLetter.consumer == "celery:notifications.send_emails")
            )
            return next((r for r in rows if r.payload["args"] == [emails]), None)

    dl = await wait_for(dead_letter, timeout=60, what="the batch's dead letter")
    assert dl.payload["retries"] == 2 and "EmailsFailed" in dl.error and "NotFound" in dl.error
    for nid, to in ((good, user["email"]), (also, other["email"])):
        note = await row(container, nid)
        assert note.email_status == "sent" and note.email_attempts == 1  # sent once, by the first attempt
        assert len(mails_for(rig, nid, to)) == 1
    failed = await row(container, bad)
    assert failed.email_status == "failed" and failed.email_attempts == 3  # first try + 2 retries
    assert mails_for(rig, bad, user["email"]) == []

    async def outcome() -> list[str] | None:
        async with container.sessionmaker() as session:
            runs = list(await session.scalars(select(TaskRun).where(TaskRun.task == "notifications.send_emails")))
        mine = [r.status for r in runs if r.args["args"] == [emails]]
        return mine if mine and "retrying" not in mine else None

    # The last attempt's outcome is recorded by its failure signal, moments after the dead letter (a loaded CI run
    # read `retrying` in between): one task, one outcome row (its retries update it).
    assert await wait_for(outcome, timeout=30, what="the batch's outcome") == ["failed"]


async def test_messages_celery_drops_are_kept_as_dead_letters(rig: MailRig, container: Any, api: Api) -> None:
    """explore18 F9: a task name the worker does not know and a body it cannot decode were only logged (and the
    message dropped); each is now a dead letter an admin sees, with its body, and that a replay refuses."""
    from smartcourse.models import DeadLetter

    unknown_id, undecodable_id, shapeless_id, misfit_id = (uuid.uuid4() for _ in range(4))
    rig.send_task("notifications.does_not_exist", args=["x"], task_id=str(unknown_id))
    celery_app = rig.send_task.__self__  # type: ignore[attr-defined]
    with celery_app.producer_or_acquire() as producer:
        for body, task_id in ((b"\xff\xfe{not json", undecodable_id), (b'"hello"', shapeless_id)):
            producer.publish(
                body,
                exchange=rig.queue,
                routing_key=rig.queue,
                content_type="application/json",
                content_encoding="utf-8",
                headers={"task": "notifications.send_email", "id": str(task_id)},
            )
    # A real task's name with arguments it does not take: Celery's retry rejects it (explore25 F2b).
    rig.send_task("notifications.send_email", kwargs={"bogus": 1}, task_id=str(misfit_id))
    ids = [unknown_id, undecodable_id, shapeless_id, misfit_id]
    if rig.broker == "redis":
        # An entry of the list that is not a kombu message at all: kombu's read stopped the worker, lost it, and five
        # made `smartcourse run` stop everything (explore40 F2).
        garbage = f"garbage {uuid.uuid4()}".encode()
        not_envelope = json.dumps({"hello": str(uuid.uuid4())}).encode()  # JSON, but no `properties`
        for entry in (garbage, not_envelope):
            await container.redis().lpush(rig.queue, entry)
            ids.append(uuid.uuid5(uuid.NAMESPACE_URL, "celery-poison:" + hashlib.sha256(entry).hexdigest()))

    async def all_of_them() -> list[Any] | None:
        async with container.uow() as uow:
            rows = list(await uow.session.scalars(select(DeadLetter).where(DeadLetter.event_id.in_(ids))))
        return rows if len(rows) == len(ids) else None

    rows = {r.event_id: r for r in await wait_for(all_of_them, timeout=45, what="the dead letters")}
    if rig.broker == "redis":
        assert "not a message (not JSON" in rows[ids[-2]].error and rows[ids[-2]].payload["body"] == garbage.decode()
        assert "not kombu's envelope" in rows[ids[-1]].error and rows[ids[-1]].payload["body"] == not_envelope.decode()
        assert rig.worker.proc is not None and rig.worker.proc.poll() is None  # the worker went on
    unknown, undecodable = rows[unknown_id], rows[undecodable_id]
    # A body decoded but not a task request stopped the worker, and every restart after it (explore25 F1).
    assert "not a valid task message" in rows[shapeless_id].error and rows[shapeless_id].payload["body"] == '"hello"'
    assert rows[misfit_id].consumer == "celery:notifications.send_email" and "bogus" in rows[misfit_id].error
    assert rows[misfit_id].payload["kwargs"] == {"bogus": 1}
    assert unknown.consumer == "celery:notifications.does_not_exist" and unknown.topic == rig.queue
    assert "no task named 'notifications.does_not_exist'" in unknown.error
    assert '"x"' in unknown.payload["body"] and unknown.payload["body_encoding"] == "utf-8"
    assert undecodable.consumer == "celery:notifications.send_email"
    assert "could not be decoded" in undecodable.error
    assert undecodable.payload["body_encoding"] == "base64" and undecodable.payload["body_bytes"] == 11

    admin = await api.admin(container)
    listed = await api.client.get("/ops/dead-letters", params={"limit": 200}, headers=admin["headers"])
    assert listed.status_code == 200, listed.text
    seen = {item["id"]: item for item in listed.json()["items"]}
    assert {str(unknown.id), str(undecodable.id)} <= set(seen)
    assert not seen[str(unknown.id)]["replayable"]
    replay = await api.client.post(f"/ops/dead-letters/{unknown.id}/replay", headers=admin["headers"])
    assert replay.status_code == 409 and replay.json()["code"] == "not_replayable", replay.text
    # The worker is still consuming: a real e-mail after the two goes out.
    user = await api.user()
    nid = await notify(container, user, title="After the poison")
    rig.enqueue(nid)
    await wait_sent(container, nid)


def test_a_worker_starting_without_its_broker_says_so(settings: Any, tmp_path: Path) -> None:
    """explore18 F8: a worker started while its broker was down waited in silence (74 s in that report)."""
    import socket
    import subprocess

    from smartcourse.cli import CELERY_WORKER

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = celery_worker_env(settings, REDIS_URL=f"redis://127.0.0.1:{port}/0")
    env.pop("CELERY_BROKER_URL", None)
    log_path = tmp_path / "celery.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [*CELERY_WORKER, "--concurrency", "1"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 30
        while "cannot reach its broker" not in log_path.read_text(errors="replace"):
            assert proc.poll() is None, log_path.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, log_path.read_text(errors="replace")[-3000:]
            time.sleep(0.2)
    finally:
        proc.kill()
        proc.wait(timeout=10)
    line = next(x for x in log_path.read_text().splitlines() if "cannot reach its broker" in x)
    assert '"level": "warning"' in line and "trying again in" in line, line
