"""Celery configuration per broker, and the email message the notification task sends (no engines)."""

from __future__ import annotations

import logging
import uuid
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest


def _settings(tmp_path: Path, **env: Any) -> Any:
    from smartcourse.config import Settings

    return Settings(**{"SMARTCOURSE_DATA_DIR": tmp_path, "REDIS_URL": None, "CELERY_BROKER_URL": None, **env})


def test_unix_socket_redis_is_spelled_for_kombu() -> None:
    from smartcourse.tasks import kombu_redis_url

    assert kombu_redis_url("unix:///var/run/redis.sock") == "redis+socket:///var/run/redis.sock"
    assert kombu_redis_url("redis://cache:6379/0") == "redis://cache:6379/0"


def test_rabbitmq_config_dead_letters_and_delivery_guarantees(tmp_path: Path) -> None:
    from smartcourse.tasks import celery_config, dead_letter_queue

    conf = celery_config(
        _settings(tmp_path, CELERY_BROKER_URL="amqp://u:p@mq:5672//", REDIS_URL="redis://cache:6379/0")
    )
    assert conf["broker_url"] == "amqp://u:p@mq:5672//"
    assert conf["result_backend"] == "redis://cache:6379/0"
    assert conf["task_acks_late"] and conf["task_reject_on_worker_lost"]
    assert conf["worker_prefetch_multiplier"] == 1
    assert conf["accept_content"] == ["json"] and conf["task_serializer"] == "json"
    assert "broker_transport_options" not in conf  # visibility timeouts are a Redis matter
    [queue] = conf["task_queues"]
    assert queue.name == "smartcourse" and queue.durable
    assert queue.queue_arguments == {
        "x-dead-letter-exchange": "smartcourse.dlx",
        "x-dead-letter-routing-key": "smartcourse.dlq",
    }
    dlq = dead_letter_queue("smartcourse")
    assert (dlq.name, dlq.exchange.name, dlq.routing_key) == ("smartcourse.dlq", "smartcourse.dlx", "smartcourse.dlq")
    sweep = conf["beat_schedule"]["notifications-sweep-pending"]
    assert sweep["task"] == "notifications.sweep_pending"
    assert sweep["schedule"] == 60.0 and sweep["options"] == {"expires": 55.0}  # a minute, by default


def test_the_email_sweep_runs_as_often_as_configured(tmp_path: Path) -> None:
    from smartcourse.tasks import celery_config

    conf = celery_config(_settings(tmp_path, REDIS_URL="redis://cache:6379/0", EMAIL_SWEEP_SECONDS=10))
    sweep = conf["beat_schedule"]["notifications-sweep-pending"]
    assert sweep["schedule"] == 10.0 and sweep["options"] == {"expires": 5.0}


def test_redis_config_uses_the_socket_and_a_visibility_timeout(tmp_path: Path) -> None:
    from smartcourse.tasks import celery_config

    conf = celery_config(
        _settings(tmp_path, REDIS_URL="unix:///tmp/r.sock", CELERY_QUEUE="q1", CELERY_VISIBILITY_TIMEOUT=120)
    )
    assert conf["broker_url"] == conf["result_backend"] == "redis+socket:///tmp/r.sock"
    assert conf["broker_transport_options"]["visibility_timeout"] == 120
    assert conf["task_default_queue"] == "q1" and conf["task_queues"][0].name == "q1"
    assert conf["task_time_limit"] < 120  # a running task is never handed out a second time


def test_the_email_task_retries_with_backoff_and_dead_letters() -> None:
    from smartcourse.tasks import DeadLetteringTask, send_email_task

    assert isinstance(send_email_task, DeadLetteringTask)
    assert send_email_task.name == "notifications.send_email"
    assert send_email_task.autoretry_for == (Exception,)
    assert send_email_task.retry_backoff and send_email_task.retry_jitter
    assert send_email_task.max_retries >= 1


def test_message_has_a_deterministic_id_html_and_attachment() -> None:
    from smartcourse.adapters.mail import build_message

    msg = build_message(
        sender="SmartCourse <no-reply@smartcourse.local>",
        to="Ada Lovelace <ada@example.com>",
        subject="Your certificate — félicitations",
        text="Well done.",
        html="<p>Well done.</p>",
        attachments=[("certificate.pdf", b"%PDF-1.4 fake", "application/pdf")],
        message_id="<notification-1@smartcourse.local>",
    )
    parsed = BytesParser(policy=policy.default).parsebytes(msg.as_bytes())
    assert parsed["Message-ID"].strip() == "<notification-1@smartcourse.local>"
    assert parsed["Subject"] == "Your certificate — félicitations"
    assert parsed.get_body(preferencelist=("plain",)).get_content().strip() == "Well done."
    assert "<p>Well done.</p>" in parsed.get_body(preferencelist=("html",)).get_content()
    [part] = list(parsed.iter_attachments())
    assert part.get_filename() == "certificate.pdf" and part.get_content() == b"%PDF-1.4 fake"
    bare = build_message(sender="a@b.c", to="d@e.f", subject="s", text="t", message_id="x@y")
    assert bare["Message-ID"] == "<x@y>"


def test_non_ascii_names_subjects_and_bodies_read_back_as_written() -> None:
    """Encoded words for names and subjects, quoted-printable UTF-8 bodies (7bit when ASCII): any client reads them."""
    from smartcourse.adapters.mail import build_message

    msg = build_message(
        sender="Académie Zoë <no-reply@smartcourse.local>",
        to="Zoë Ünal <zoe@example.com>",
        subject="Bienvenue — Café 101",
        text="Bonjour Zoë,\nvous êtes inscrite.",
        html="<p>Bonjour Zoë</p>",
        message_id="n-1@smartcourse.local",
    )
    raw = msg.as_bytes()
    assert raw.isascii()  # no 8-bit data: any relay takes it without SMTPUTF8 or 8BITMIME
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    assert parsed["From"].addresses[0].display_name == "Académie Zoë"
    assert parsed["To"].addresses[0].display_name == "Zoë Ünal"
    assert parsed["To"].addresses[0].addr_spec == "zoe@example.com"
    assert parsed["Subject"] == "Bienvenue — Café 101"
    assert parsed.get_body(preferencelist=("plain",)).get_content() == "Bonjour Zoë,\nvous êtes inscrite."
    assert "Bonjour Zoë" in parsed.get_body(preferencelist=("html",)).get_content()
    ascii_only = build_message(sender="a@b.c", to="d@e.f", subject="s", text="plain text", message_id="x@y")
    assert ascii_only["Content-Transfer-Encoding"] == "7bit"
    # A subject folded over lines starts on the first one (explore83 F15: an empty first line, a leading space).
    subject = "Your certificate for Historia de España contemporánea"
    long = build_message(sender="a@b.c", to="d@e.f", subject=subject, text="t", message_id="x@y")
    raw = long.as_bytes()
    assert b"Subject: =?utf-8?" in raw and BytesParser(policy=policy.default).parsebytes(raw)["Subject"] == subject


def test_message_id_uses_the_sender_domain(tmp_path: Path) -> None:
    import uuid

    from smartcourse.services.notifications import message_id

    nid = uuid.UUID(int=7)
    assert message_id(nid, _settings(tmp_path)) == f"<notification-{nid}@smartcourse.local>"
    assert message_id(nid, _settings(tmp_path, MAIL_FROM="Courses <mail@learn.example.org>")).endswith(
        "@learn.example.org>"
    )


def test_one_smtp_connection_carries_many_messages_and_a_broken_one_is_replaced(tmp_path: Path) -> None:
    """The kept connection (adapters/mail.py) against the real development sink: three messages, one connection;
    the server gone, the send fails and the connection is dropped; the server back, a new one carries on."""
    import smtplib

    import pytest

    from smartcourse.adapters.mail import SmtpConnection, build_message
    from smartcourse.devtools.mailsink import start_mailsink

    def message(i: int) -> Any:
        return build_message(sender="a@b.c", to="d@e.f", subject=f"m{i}", text="t", message_id=f"m{i}@x")

    sink = start_mailsink("127.0.0.1", 0, tmp_path / "mail")
    host, port = "127.0.0.1", int(sink.port)
    conn = SmtpConnection(host, port, timeout=5)
    for i in range(3):
        conn.send(message(i))
    assert conn.opened == 1 and len(list((tmp_path / "mail").glob("*.eml"))) == 3

    sink.stop()
    with pytest.raises((smtplib.SMTPException, OSError)):
        conn.send(message(3))
    assert conn.smtp is None  # broken: never reused
    sink = start_mailsink(host, port, tmp_path / "mail")
    try:
        conn.used_at -= conn.FRESH_SECONDS + 1  # idle a while: checked with NOOP first
        conn.send(message(4))
        assert conn.opened == 2 and len(list((tmp_path / "mail").glob("*.eml"))) == 4
    finally:
        conn.close()
        sink.stop()


def test_a_relay_that_stalls_holds_a_send_seconds_not_its_session_timeout(tmp_path: Path) -> None:
    """explore40 F5: a relay that accepts and says nothing (stopped, overloaded) held each send for the session's 30 s
    timeout, 60 s on a kept connection (its NOOP, then a new one), and with it a Celery pool process. Connecting and
    the greeting have `CONNECT_SECONDS`, an idle connection's NOOP `NOOP_SECONDS`; the session keeps its timeout."""
    import socket
    import time

    import pytest

    from smartcourse.adapters.mail import SmtpConnection, build_message
    from smartcourse.devtools.mailsink import start_mailsink

    msg = build_message(sender="a@b.c", to="d@e.f", subject="s", text="t", message_id="m@x")
    with socket.socket() as mute:  # the kernel completes the handshake; nobody ever greets
        mute.bind(("127.0.0.1", 0))
        mute.listen(8)
        conn = SmtpConnection("127.0.0.1", mute.getsockname()[1], timeout=30)
        conn.CONNECT_SECONDS = 0.5
        started = time.monotonic()
        with pytest.raises((OSError, EOFError)):
            conn.send(msg)
        assert time.monotonic() - started < 5 and conn.smtp is None

    sink = start_mailsink("127.0.0.1", 0, tmp_path / "mail")
    try:
        kept = SmtpConnection("127.0.0.1", int(sink.port), timeout=30)
        kept.send(msg)
        assert kept.smtp is not None and kept.smtp.sock is not None
        assert kept.smtp.sock.gettimeout() == 30  # the session's own, once connected
    finally:
        kept.close()
        sink.stop()


def test_closing_a_connection_to_a_relay_that_went_silent_takes_seconds() -> None:
    """explore48 F2: an idle connection past `MAX_IDLE_SECONDS` is closed before the next send, and its QUIT waited
    the session's 30 s on a relay that stopped answering (40 s with the new connection's attempt)."""
    import smtplib
    import socket
    import threading
    import time

    from smartcourse.adapters.mail import SmtpConnection

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        peers: list[socket.socket] = []

        def greet_then_stall() -> None:
            peer, _ = server.accept()
            peer.sendall(b"220 relay ready\r\n")  # then never another word
            peers.append(peer)

        threading.Thread(target=greet_then_stall, daemon=True).start()
        conn = SmtpConnection("127.0.0.1", server.getsockname()[1], timeout=30)
        conn.smtp = smtplib.SMTP("127.0.0.1", server.getsockname()[1], timeout=30)
        started = time.monotonic()
        conn.close()
        assert time.monotonic() - started < conn.QUIT_SECONDS + 2 and conn.smtp is None
        for peer in peers:
            peer.close()


def test_the_celery_parent_preloads_what_a_task_imports() -> None:
    """`worker_init` imports these before the pool forks; a renamed module must fail here, not in production."""
    import importlib

    from smartcourse.tasks import PRELOADED_MODULES, _preload

    assert "smartcourse.bootstrap" in PRELOADED_MODULES
    _preload()
    for name in PRELOADED_MODULES:
        assert importlib.import_module(name)


def test_threads_using_a_fresh_app_at_once_all_see_its_configuration(monkeypatch: Any, tmp_path: Path) -> None:
    """Celery installs a lazily read configuration before evaluating it: without `ensure_configured` a thread that
    uses the app meanwhile sees no broker_url and falls back to amqp://localhost for good."""
    import threading
    import time as _time

    from smartcourse import tasks

    def slow_config(_settings: Any) -> dict[str, Any]:
        _time.sleep(0.3)  # what resolving settings and engines may take in a starting process
        return {"broker_url": "redis://broker.example:6379/0", "beat_schedule_filename": str(tmp_path / "beat")}

    monkeypatch.setattr(tasks, "celery_config", slow_config)
    fresh = tasks.make_app()
    try:
        seen: list[str] = []
        threads = [
            threading.Thread(target=lambda: seen.append(str(tasks.ensure_configured(fresh).conf.broker_url)))
            for _ in range(6)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert seen == ["redis://broker.example:6379/0"] * 6
    finally:
        tasks.app.set_current()


def test_a_name_or_title_with_a_line_break_still_makes_a_sendable_message() -> None:
    """Rows stored before names were held to one line: the e-mail goes out, with no header injected."""
    from email.utils import formataddr

    from smartcourse.adapters.mail import build_message
    from smartcourse.services.notifications import header_text

    name, title = "Eve\r\nBcc: evil@example.com", "Welcome to\nKafka\t101"
    assert header_text(name) == "Eve Bcc: evil@example.com" and header_text(title) == "Welcome to Kafka 101"
    msg = build_message(
        sender="SmartCourse <noreply@example.com>",
        to=formataddr((header_text(name), "eve@example.com")),
        subject=header_text(title),
        text="hello",
        message_id="<x@example.com>",
    )
    parsed = BytesParser(policy=policy.default).parsebytes(msg.as_bytes())
    assert parsed["Bcc"] is None and parsed["To"].addresses[0].addr_spec == "eve@example.com"
    assert parsed["Subject"] == "Welcome to Kafka 101"


def test_a_lost_batch_enqueue_names_its_notifications_and_their_traces(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """explore18 F7: "could not enqueue 1 notification e-mails" named no notification, and its trace id led nowhere."""
    from smartcourse import tasks

    def broker_gone(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("Error 111 connecting to redis")

    monkeypatch.setattr(tasks, "ensure_configured", lambda: None)
    monkeypatch.setattr(tasks.send_emails_task, "apply_async", broker_gone)
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    emails = [{"id": "n1", "trace": {"traceparent": f"00-{trace}-00f067aa0ba902b7-01"}}, {"id": "n2", "trace": {}}]
    with caplog.at_level(logging.WARNING, logger="smartcourse.tasks"):
        tasks.enqueue_emails(emails)
    (record,) = [r for r in caplog.records if "could not enqueue 2 notification e-mails" in r.getMessage()]
    assert record.notification_ids == ["n1", "n2"] and record.trace_ids == [trace]  # type: ignore[attr-defined]


def test_a_poison_message_already_kept_is_said_to_be(monkeypatch: pytest.MonkeyPatch, caplog: Any) -> None:
    """explore25 F5: the error line said "kept as a dead letter" when the row was already there and nothing was kept;
    the line now says it is being kept, and a second delivery says it was kept before."""
    import types

    from smartcourse import tasks

    stored: list[bool] = [True, False]

    async def fake_store(values: dict[str, Any]) -> bool:
        return stored.pop(0)

    monkeypatch.setattr(tasks, "_store_poison", fake_store)
    message = types.SimpleNamespace(headers={"task": "notifications.send_email", "id": str(uuid.uuid4())}, body=b"x")
    with caplog.at_level(logging.INFO, logger=tasks.log.name):
        for _ in range(2):
            tasks.record_poison(message, "not a valid task message: ValueError").join(timeout=10)
    lines = [r.getMessage() for r in caplog.records]
    assert sum("keeping it as a dead letter of celery:notifications.send_email" in x for x in lines) == 2, lines
    assert sum("was already kept: this delivery is not kept again" in x for x in lines) == 1, lines


def test_celerys_line_for_a_dropped_message_keeps_its_text_not_its_traceback() -> None:
    """explore25 F5: "Received unregistered task" and "Can't decode message body" came with a traceback of Celery's
    consumer in run.log; a line about anything else keeps its traceback."""
    from celery.worker.consumer import consumer

    from smartcourse import tasks  # noqa: F401  (installs the filter)

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    consumer.logger.addHandler(handler)
    try:
        try:
            raise KeyError("notifications.nope")
        except KeyError as exc:
            consumer.error(consumer.UNKNOWN_TASK_ERROR, exc, "body", {}, {}, exc_info=True)
            consumer.crit(consumer.MESSAGE_DECODE_ERROR, exc, "a", "b", "{}", "body", exc_info=1)
            consumer.logger.error("something else", exc_info=True)
    finally:
        consumer.logger.removeHandler(handler)
    dropped, undecodable, other = records
    assert "notifications.nope" in dropped.getMessage() and dropped.exc_info is None
    assert undecodable.exc_info is None
    assert other.exc_info is not None
