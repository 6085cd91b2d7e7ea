"""Notifications: the in-app feed, and its email copy (sent once, in the normal case, by the Celery task in
`smartcourse/tasks.py`, which calls `deliver_email` here)."""

from __future__ import annotations

import asyncio
import functools
import html
import logging
import mimetypes
import re
import unicodedata
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from pathlib import PurePosixPath
from typing import Any, Protocol

from sqlalchemy import BigInteger, DateTime, and_, bindparam, cast, exists, func, select, update
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smartcourse.adapters.mail import recipient, send_email
from smartcourse.config import Settings
from smartcourse.db import UnitOfWork, note_new_email
from smartcourse.errors import Invalid, NotFound
from smartcourse.faults import fail_point, hold_point
from smartcourse.models import Enrollment, Notification, TaskRun, User, utcnow
from smartcourse.ports import FileStore
from smartcourse.schemas import NotificationKind, NotificationPublic, NotificationsRead
from smartcourse.security import Principal

log = logging.getLogger(__name__)

#: A pending email older than this with no attempt is assumed lost in transit and enqueued again (the sweeper task
#: passes EMAIL_SWEEP_SECONDS, a minute by default).
SWEEP_AFTER = timedelta(minutes=1)
#: At most this many per sweep: the e-mails of notifications whose enqueue was lost (a burst's `waitlist.joined`,
#: 1,800 of them in explore38 F6) go out in one sweep up to that many, not 500 a minute (the enqueue is ~0.3 ms each).
SWEEP_BATCH = 5000


# --- the feed -------------------------------------------------------------------------------------


async def create_notification(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    kind: NotificationKind,
    title: str,
    body: str,
    dedupe_key: str,
    data: dict[str, Any] | None = None,
    email: bool = True,
    attachment_key: str | None = None,
) -> uuid.UUID:
    """Create it once per `dedupe_key` (a retried caller gets the same row back); the caller commits, then
    calls `smartcourse.tasks.enqueue_email` if `email` (an HTTP request's `UnitOfWork.commit` hands a new one over
    itself: `db.EMAILS_AFTER_COMMIT`). `attachment_key` is a file-store key attached to the email."""
    payload = dict(data or {})
    if attachment_key:
        payload["attachment_key"] = attachment_key
    new_id = await session.scalar(
        insert(Notification)
        .values(
            id=uuid.uuid4(),
            user_id=user_id,
            kind=kind,
            title=title,
            body=body,
            data=payload,
            dedupe_key=dedupe_key,
            email_status="pending" if email else "none",
        )
        .on_conflict_do_nothing(index_elements=[Notification.dedupe_key])
        .returning(Notification.id)
    )
    if new_id is not None:
        if email:
            note_new_email(session, new_id)
        return new_id
    # The key exists (committed by someone else, whose insert ours waited for): return that row.
    existing = await session.scalar(select(Notification.id).where(Notification.dedupe_key == dedupe_key))
    if existing is None:  # only if that row was deleted in between
        raise NotFound("notification vanished while being created", code="notification_not_found")
    return existing


async def list_notifications(
    *, uow: UnitOfWork, principal: Principal, limit: int, before: datetime | None = None, unread: bool = False
) -> list[NotificationPublic]:
    """The caller's feed, newest first; `before` (a created_at; UTC when it has no zone) pages back. A `before`
    that cannot be put in UTC (e.g. 9999-12-31T23:59:59-14:00) is 422 `invalid_before`, as /ops's `since`."""
    query = select(Notification).where(Notification.user_id == principal.user_id)
    if unread:
        query = query.where(Notification.read_at.is_(None))
    if before is not None:
        try:
            before = before.replace(tzinfo=UTC) if before.tzinfo is None else before.astimezone(UTC)
        except (OverflowError, ValueError) as exc:
            raise Invalid("before is out of range", code="invalid_before") from exc
        query = query.where(Notification.created_at < before)
    rows = await uow.session.scalars(
        query.order_by(Notification.created_at.desc(), Notification.id.desc()).limit(limit)
    )
    return [NotificationPublic.model_validate(n) for n in rows]


async def mark_read(*, uow: UnitOfWork, principal: Principal, notification_id: uuid.UUID) -> NotificationPublic:
    """Mark one of the caller's notifications read; repeating it keeps the first read time.
    Someone else's notification is 404, like a missing one: its existence is not disclosed."""
    row = await uow.session.scalar(
        update(Notification)
        .where(Notification.id == notification_id, Notification.user_id == principal.user_id)
        .values(read_at=func.coalesce(Notification.read_at, func.now()))
        .returning(Notification)
    )
    if row is None:
        raise NotFound("notification not found", code="notification_not_found")
    result = NotificationPublic.model_validate(row)
    await uow.commit()
    return result


async def mark_all_read(*, uow: UnitOfWork, principal: Principal) -> NotificationsRead:
    """Mark every unread notification of the caller read, at once (explore60 F12: one request per notification);
    how many it marked. Repeating it marks none."""
    marked = await uow.session.execute(
        update(Notification)
        .where(Notification.user_id == principal.user_id, Notification.read_at.is_(None))
        .values(read_at=func.now())
    )
    await uow.commit()
    return NotificationsRead(marked=int(marked.rowcount or 0))  # type: ignore[attr-defined]


async def unread_count(*, uow: UnitOfWork, principal: Principal) -> int:
    """How many of the caller's notifications are unread (the feed's `X-Unread-Count`: a badge)."""
    return int(
        await uow.session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.user_id == principal.user_id, Notification.read_at.is_(None))
        )
        or 0
    )


# --- the email copy -------------------------------------------------------------------------------


class MailRuntime(Protocol):
    """What sending an email needs: the Celery worker's `tasks.Runtime` (one per worker process) provides it."""

    @property
    def settings(self) -> Settings: ...

    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]: ...

    @property
    def files(self) -> FileStore: ...


def header_text(value: str) -> str:
    """A name or title as one header line: a line break or other control character (a row stored before names
    were held to one line) would make the `email` package refuse the header, on every retry, for good."""
    return " ".join("".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in value).split())


def message_id(notification_id: uuid.UUID, settings: Settings) -> str:
    """The same Message-ID for every send of a notification, so a duplicate delivery is recognisable."""
    domain = parseaddr(settings.mail_from)[1].rpartition("@")[2] or "smartcourse.local"
    return f"<notification-{notification_id}@{domain}>"


async def _attachment(rt: MailRuntime, data: dict[str, Any]) -> list[tuple[str, bytes, str]]:
    key = data.get("attachment_key")
    if not key:
        return []
    content = await rt.files.get(str(key))  # NotFound is retried: the file may still be on its way
    filename = str(data.get("attachment_filename") or PurePosixPath(str(key)).name or "attachment")
    content_type = (
        data.get("attachment_content_type") or mimetypes.guess_type(filename)[0] or "application/octet-stream"
    )
    return [(filename, content, str(content_type))]


#: An address in a notice's text (not its closing punctuation): a link in the e-mail's HTML part.
_URL = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)]")


def _html(body: str, own: str) -> str:
    """The text's paragraphs, each of the platform's own addresses in it (under `own`, PUBLIC_BASE_URL) a link
    (explore56 F5: the certificate's verify address was plain text, clickable only where the mail client links
    addresses itself). Any other address stays text: a notice quotes what users wrote (a course title, a reason), and
    the platform's own e-mail made an instructor's "verify your account at https://..." title a link (explore59 F3)."""
    own = own.rstrip("/")

    def ours(url: str) -> bool:
        return url == own or url.startswith((f"{own}/", f"{own}?", f"{own}#"))

    def linked(paragraph: str) -> str:
        out, at = [], 0
        for m in _URL.finditer(paragraph):
            if not ours(m[0]):
                continue
            out += [html.escape(paragraph[at : m.start()]), f'<a href="{html.escape(m[0])}">{html.escape(m[0])}</a>']
            at = m.end()
        return "".join([*out, html.escape(paragraph[at:])])

    paragraphs = "".join(f"<p>{linked(p)}</p>" for p in body.split("\n\n") if p.strip())
    return f"<!doctype html><html><body>{paragraphs}</body></html>"


async def deliver_email(
    notification_id: uuid.UUID,
    *,
    rt: MailRuntime,
    on_sent: Callable[[AsyncSession], Awaitable[None]] | None = None,
) -> str:
    """Send the email copy unless already sent; returns what happened ("sent", "already_sent", ...).

    Exactly once in the normal case, by claim and mark in one transaction: the sender claims the
    notification (a transaction-scoped advisory lock, `email_claim_key`), reads its row (read after the
    claim is taken, so a sender that committed just before is seen) and marks it 'sent' in the same
    transaction after SMTP accepted the message. A task killed before that commit loses its connection,
    so PostgreSQL rolls back and drops the claim: the row is still 'pending' and the redelivered task
    sends it. Duplicate deliveries of the task (enqueued 5x, sweeper, redelivery) either find the claim
    taken and stop at once ("in_progress": the holder's own message guarantees progress) or find 'sent'
    and stop. The claim is not a row lock: the row is not locked across the SMTP conversation, so a
    student marking the notification read is never held by a slow or stalled mail relay (explore49 N2:
    it answered 503 after 5 s on every try while the relay stalled); the sender's mark waits out such an
    update for its instant, and someone holding the row is never taken for a sender.

    If the transaction fails after the SMTP server accepted the message (PostgreSQL restarting, the connection
    lost at the commit), 'sent' is recorded in a new transaction, retried for about 20 s (`_mark_accepted`).

    Residual window, honestly: killed after the SMTP server accepted the message but before the commit
    (or the database away for longer than those retries), the row stays 'pending' and the email goes out
    a second time.
    Both copies carry the same Message-ID (`message_id`), so the duplicate is identifiable and most
    mail clients collapse it. Closing the window for real would need an SMTP server that dedupes by
    Message-ID; a two-phase 'sending' state would only turn the duplicate into a possible loss.
    """
    settings = rt.settings
    params = {"notification_id": notification_id}
    accepted = False  # the SMTP server took the message: from here on, only the mark may fail
    try:
        async with rt.sessionmaker() as session, session.begin():
            if not await session.scalar(_claim(), {"claim_key": email_claim_key(notification_id)}):
                return "in_progress"  # another sender holds the claim (and sends, or its death frees the claim)
            row = (await session.execute(_for_sending(), params)).first()  # no row lock: the claim keeps senders apart
            if row is None:
                log.warning("notification %s does not exist: nothing to send", notification_id)
                return "missing"
            status, title, body, data, address, full_name, outdated, active = row
            if status != "pending":
                return "already_sent" if status == "sent" else f"skipped_{status}"
            if outdated:  # no longer true: not sent, kept in the feed
                await session.execute(_mark_outdated(), params)
                log.info("notification %s is outdated: its e-mail is not sent", notification_id)
                return "outdated"
            if not active:
                # A disabled account is not written to (the person may have asked to leave: explore67 F8), as its
                # password-reset e-mails are not; the notice stays in the feed, for the account enabled again.
                await session.execute(_mark_outdated(), params)
                log.info("notification %s is for a disabled account: its e-mail is not sent", notification_id)
                return "account_disabled"
            await hold_point(str(notification_id))  # test-only: lets a test kill the worker here
            attachments = await _attachment(rt, data or {})
            await asyncio.to_thread(
                send_email,
                host=settings.smtp_host or "127.0.0.1",
                port=settings.smtp_port,
                sender=settings.mail_from,
                to=recipient(header_text(full_name), address),
                subject=header_text(title),
                text=f"{body}\n\n-- \nSmartCourse",
                html=_html(body, settings.public_base_url),
                attachments=attachments,
                message_id=message_id(notification_id, settings),
            )
            accepted = True
            await fail_point("email.mark", str(notification_id))  # test-only: the mark's transaction fails here
            await session.execute(_mark_sent(), {**params, "now": utcnow()})
            if on_sent is not None:  # e.g. the task's own outcome record: one commit for both
                await on_sent(session)
    except Exception:
        if accepted and await _mark_accepted(rt.sessionmaker, notification_id, on_sent):
            log.warning("notification %s: e-mailed; its transaction failed after SMTP accepted it, marked sent "
                        "in a new one", notification_id, exc_info=True)  # fmt: skip
            return "sent"
        await _count_failed_attempt(rt.sessionmaker, notification_id)
        raise
    log.info("notification %s emailed", notification_id)
    return "sent"


#: After SMTP accepted a message whose transaction then failed (PostgreSQL restarting, the connection lost at the
#: commit), how long the sender keeps trying to record 'sent' before it gives up and lets the task be retried (which
#: sends again, with the same Message-ID). PostgreSQL comes back from a restart within seconds.
MARK_ACCEPTED_DELAYS = (0.2, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0)


async def _mark_accepted(
    sessionmaker: async_sessionmaker[AsyncSession],
    notification_id: uuid.UUID,
    on_sent: Callable[[AsyncSession], Awaitable[None]] | None,
) -> bool:
    """Record 'sent' for an e-mail the SMTP server accepted, in a transaction of its own, retried while the database
    is away; True once recorded. Without it a restart of PostgreSQL between the SMTP accept and the commit sent the
    e-mail a second time (seen in a chaos run). A row another sender marked meanwhile stays as it is."""
    for delay in (0.0, *MARK_ACCEPTED_DELAYS):
        await asyncio.sleep(delay)
        try:
            async with sessionmaker() as session, session.begin():
                await session.execute(_mark_accepted_statement(), {"notification_id": notification_id, "now": utcnow()})
                if on_sent is not None:
                    await on_sent(session)
            return True
        except Exception:
            log.info("notification %s: recording 'sent' failed; trying again", notification_id, exc_info=True)
    return False


_ID = PG_UUID(as_uuid=True)


@functools.cache
def _claim() -> Any:
    """The notification's e-mail claim (`email_claim_key`), for the transaction; built once per process."""
    return select(func.pg_try_advisory_xact_lock(bindparam("claim_key", type_=BigInteger)))


@functools.cache
def _for_sending() -> Any:
    """What the e-mail needs, and whether it is `outdated`; built once per process (statements, not ORM objects: the
    sender runs once per e-mail, docs/benchmarks.md). Not FOR UPDATE: the sender's claim keeps senders apart, and a
    row lock held across the SMTP conversation made anyone updating the row (marking it read) wait for the relay."""
    return (
        select(
            Notification.email_status,
            Notification.title,
            Notification.body,
            Notification.data,
            User.email,
            User.full_name,
            _outdated().label("outdated"),
            User.is_active,
        )
        .join(User, User.id == Notification.user_id)
        .where(Notification.id == bindparam("notification_id", type_=_ID))
    )


def _outdated() -> Any:
    """The notification's e-mail would tell something no longer true when it is sent: "you are on the waitlist"
    (`waitlist.joined`, e-mailed at the request's commit, or by the sweeper within about two minutes when that
    hand-over was lost) or "you keep your place on it" (`waitlist.passed_over`) for an enrollment that left it since,
    promoted, dropped or released (explore47 F1:
    "Welcome" arrived first, then "the course is full, you are on its waitlist"; explore56 F1: "Welcome", then "a
    seat is free, but you do not meet its prerequisites, so it stays free"). Read when the e-mail is sent, not when
    the enrollment changes: a promotion never waits for a sender's lock on the notice (an SMTP server that stalls held
    it, and the capacity raise that promoted timed out)."""
    waiting = exists().where(
        Enrollment.id == cast(Notification.data["enrollment_id"].astext, _ID),
        Enrollment.status == "waitlisted",
    )
    return and_(Notification.kind.in_(WAITLIST_NOTICES), ~waiting)


#: The notices that hold only while their enrollment is on the waitlist (`_outdated`).
WAITLIST_NOTICES = ("waitlist.joined", "waitlist.passed_over")


@functools.cache
def _mark_outdated() -> Any:
    return (
        update(Notification)
        .where(Notification.id == bindparam("notification_id", type_=_ID), Notification.email_status == "pending")
        .values(email_status="none")
    )


@functools.cache
def _mark_sent() -> Any:
    """'sent', with its time and the attempt counted (no parameter may be named after a column of notifications:
    SQLAlchemy would add it to the SET clause); nothing in the session to synchronise."""
    return (
        update(Notification)
        .where(Notification.id == bindparam("notification_id", type_=_ID))
        .values(
            email_status="sent",
            emailed_at=bindparam("now", type_=DateTime(timezone=True)),
            email_attempts=Notification.email_attempts + 1,
        )
        .execution_options(synchronize_session=False)
    )


@functools.cache
def _mark_accepted_statement() -> Any:
    """`_mark_sent` for a row still 'pending' only (recording an accepted e-mail in a transaction of its own)."""
    return _mark_sent().where(Notification.email_status == "pending")


def email_batch_items(emails: Any) -> list[tuple[uuid.UUID, Any]]:
    """(notification id, trace carrier) of each item of a `notifications.send_emails` argument ([{"id": ...,
    "trace": {...}}, ...]); an item that names no notification is logged and skipped. The task reads its argument
    with it, and a replay of its dead letter finds the notifications to hand back."""
    items: list[tuple[uuid.UUID, Any]] = []
    for item in emails if isinstance(emails, list) else []:
        try:
            items.append((uuid.UUID(str(item["id"])), item.get("trace")))
        except (AttributeError, KeyError, TypeError, ValueError):
            log.error("notifications.send_emails: %r is not a notification", item)
    return items


#: The e-mail tasks, and the notifications each names in its arguments.
EMAIL_TASKS = ("notifications.send_email", "notifications.send_emails")
#: An e-mail task `retrying` with no word for this long has lost its retry: the tasks' backoff is 10 min at most, so a
#: live chain says something sooner. Its message is with a worker that died (Redis gives it back only after the
#: broker's visibility timeout, an hour) or gone.
ORPHANED_RETRY_AFTER = timedelta(minutes=15)


def _notifications_of(task: str, args: Any) -> list[uuid.UUID]:
    positional = (args or {}).get("args") or []
    if not positional:
        return []
    if task == "notifications.send_emails":
        return [nid for nid, _ in email_batch_items(positional[0])]
    try:
        return [uuid.UUID(str(positional[0]))]
    except ValueError:
        return []


async def orphaned_email_retries(
    sessionmaker: async_sessionmaker[AsyncSession], *, older_than: timedelta = ORPHANED_RETRY_AFTER
) -> list[uuid.UUID]:
    """The still pending notifications of e-mail tasks `retrying` with no word for `older_than`, to enqueue again; each
    such task run is marked failed, saying so (explore40 F4: a Celery worker killed while it held an e-mail's retry
    left the e-mail pending for the hour of Redis's visibility timeout, `/ops/tasks` said `retrying` throughout, and
    nothing pushed it: the sweep takes only e-mails never attempted). A message that comes back later finds its
    e-mails sent (`deliver_email`'s claim) and sends nothing again."""
    async with sessionmaker() as session, session.begin():
        runs = list(
            await session.scalars(
                select(TaskRun)
                .where(
                    TaskRun.status == "retrying",
                    TaskRun.task.in_(EMAIL_TASKS),
                    TaskRun.updated_at < func.now() - older_than,
                )
                .with_for_update(skip_locked=True)
            )
        )
        named = [nid for run in runs for nid in _notifications_of(run.task, run.args)]
        for run in runs:
            run.status, run.updated_at = "failed", func.now()
            run.error = (
                f"its retry was lost (no word for {int(older_than.total_seconds() // 60)} min: its worker died holding "
                "it); the sweeper enqueued its pending e-mails again"
            )
        if not named:
            return []
        pending = await session.scalars(
            select(Notification.id).where(Notification.id.in_(named), Notification.email_status == "pending")
        )
        return list(pending)


def email_claim_key(notification_id: uuid.UUID) -> int:
    """The advisory-lock key of a notification's e-mail claim: 64 bits of its id (one-key advisory locks share
    their space with the few constant keys elsewhere, e.g. the dispatcher's; a clash is a 2**-60 chance)."""
    return int.from_bytes(notification_id.bytes[:8], "big", signed=True)


async def _count_failed_attempt(sessionmaker: async_sessionmaker[AsyncSession], notification_id: uuid.UUID) -> None:
    """Diagnosis, and it tells the sweeper a retry chain owns this row (see `pending_to_sweep`)."""
    try:
        async with sessionmaker() as session, session.begin():
            await session.execute(
                update(Notification)
                .where(Notification.id == notification_id, Notification.email_status == "pending")
                .values(email_attempts=Notification.email_attempts + 1)
            )
    except Exception:
        log.warning("could not count the failed attempt of %s", notification_id, exc_info=True)


async def mark_email_failed(session: AsyncSession, notification_id: uuid.UUID) -> None:
    """Out of retries: 'failed' takes it off the sweeper's list (set it back to 'pending' to replay).
    Runs in the caller's transaction (the task's dead letter is written in the same one)."""
    await session.execute(
        update(Notification)
        .where(Notification.id == notification_id, Notification.email_status == "pending")
        .values(email_status="failed")
    )


# --- the sweeper ----------------------------------------------------------------------------------


async def pending_to_sweep(
    sessionmaker: async_sessionmaker[AsyncSession], *, older_than: timedelta = SWEEP_AFTER, limit: int = SWEEP_BATCH
) -> list[uuid.UUID]:
    """Pending emails never attempted for `older_than`: their enqueue was lost (or the queue is behind).

    Rows with attempts belong to a live retry chain (late acks, durable queue) that ends in 'sent' or
    'failed'; re-enqueuing them every minute would only multiply retry chains.
    """
    async with sessionmaker() as session:
        rows = await session.scalars(
            select(Notification.id)
            .where(
                Notification.email_status == "pending",
                Notification.email_attempts == 0,
                Notification.created_at < func.now() - older_than,
            )
            .order_by(Notification.created_at)
            .limit(limit)
        )
        return list(rows)
