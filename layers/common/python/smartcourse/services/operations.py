"""Operations (issue #8): where failures are recorded and how an admin finds and replays them.

* Workflow failures: every failed activity attempt of any workflow is recorded on its `workflow_runs` row (created
  here for enrollment and certificate runs, which the API does not record when it starts them) with the failing
  step, the error and the trace id; `retrying` while Temporal retries it, `failed` once it gave up.
* Dead letters: events a consumer could not apply (in process, Kafka or MSK) and Celery tasks out of retries;
  a dead letter can be replayed, once, or discarded by an admin with a reason (one that cannot be replayed, or
  need not be); either way it is no longer pending.
* Task runs: the last outcome of each Celery task id, written by the worker's signal hooks (`tasks.py`).

A failure is open until it is resolved, which is read from the records (nothing has to remember to mark it):
* a failed workflow run is resolved by a later `completed` run of the same kind and subject (a course published
  again after a failed publish);
* a failed task run is resolved by its dead letter, replayed (the task was sent again) or discarded by an admin,
  or by a later success of the same task with the same arguments.
The dashboard counts open failures only; `GET /ops/workflows|tasks` list them by default (`status=failed`) and the
resolved ones with `status=resolved` or `all` (each item says `resolved` and by what).

The trace id is read from the current OpenTelemetry span (32 hex digits; "" when there is none), so it works
whether or not a tracer provider is configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from opentelemetry import trace
from sqlalchemy import String, and_, case, cast, exists, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from smartcourse.db import UnitOfWork
from smartcourse.domain import workflows as names
from smartcourse.domain.moments import in_utc
from smartcourse.errors import Conflict, Forbidden, Invalid, NotFound
from smartcourse.event_consumer import Consumer
from smartcourse.models import DeadLetter, Enrollment, Notification, TaskRun, WorkflowRun, utcnow
from smartcourse.security import Principal
from smartcourse.services.notifications import email_batch_items

log = logging.getLogger(__name__)

#: An absolute path of two segments or more in an error's text (`/srv/var/files/certificates`, `/tmp/x.pdf`); not
#: an API route the error names after its method (explore55 F6: "Restore them first (POST /courses/{id}/restore)"
#: became "(POST <server path>)").
_PATH = re.compile(
    r"(?<![\w.:/])(?<!GET )(?<!PUT )(?<!POST )(?<!PATCH )(?<!DELETE )/(?:[^\s'\"/:,;()\[\]]+/)+[^\s'\"/:,;()\[\]]*"
)


def without_paths(text: str | None) -> str | None:
    """`text` with the server's file paths replaced by `<server path>` (the error stays readable: "FileExistsError:
    [Errno 17] File exists: '<server path>'"); admins read them whole, in /ops/workflows too. What an instructor is
    told of a failed publish (the course's report, the notice and its e-mail) goes through it as well (explore52 N2:
    a Lance error named `/root/.cargo/registry/...`)."""
    return _PATH.sub("<server path>", text) if text else text


#: Workflow kinds as `workflow_runs.kind` spells them, by Temporal workflow type.
KINDS = {names.PUBLISHING: "course_publishing", names.ENROLLMENT: "enrollment", names.CERTIFICATE: "certificate"}
#: A publish its instructor (or an admin) canceled (Temporal's spelling of the state): not a problem to resolve.
CANCELED = "canceled"
WORKFLOW_STATUSES = ("running", "retrying", "failed", "completed", CANCELED)
#: `status=failed` asks for every run with an unresolved failure: given up (`failed`, not resolved since) or still
#: being retried; `status=resolved` for the failed runs a later success resolved.
PROBLEM_STATUSES = ("failed", "retrying")
MAX_LIMIT = 200
MAX_REASON = 1000
#: A dead letter still waiting for someone: neither replayed nor discarded.
DEAD_LETTER_PENDING = and_(DeadLetter.replayed_at.is_(None), DeadLetter.discarded_at.is_(None))


def current_trace_id() -> str:
    """The current span's trace id as 32 hex digits, "" when no span is recording (no tracing set up)."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.trace_id else ""


def ensure_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise Forbidden("the operations API is for admins", code="admin_only")


def _aware(moment: datetime | None) -> datetime | None:
    """A `since` in UTC (one without a zone is UTC); a moment no calendar can hold is a clear error."""
    return in_utc(moment)


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid(f"limit must be between 1 and {MAX_LIMIT}", code="invalid_limit")
    return limit


# --- which run a workflow id is -------------------------------------------------------------------


@dataclass(frozen=True)
class RunRef:
    """What a workflow id is about and who may read it."""

    workflow_id: str
    kind: str
    subject: str | None
    course_id: uuid.UUID | None
    owner_id: uuid.UUID | None


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


async def _enrollment_of(session: AsyncSession, workflow_id: str) -> tuple[str, Enrollment] | None:
    """The enrollment an `enroll-<course>-<student>-<attempt>` or `certificate-<enrollment>` id belongs to."""
    if workflow_id.startswith("certificate-"):
        enrollment_id = _uuid(workflow_id.removeprefix("certificate-"))
        found = await session.get(Enrollment, enrollment_id) if enrollment_id else None
        return ("certificate", found) if found is not None else None
    if workflow_id.startswith("enroll-"):
        rest = workflow_id.removeprefix("enroll-")
        course_id, student_id, attempt = _uuid(rest[:36]), _uuid(rest[37:73]), rest[74:]
        if course_id is None or student_id is None or not attempt.isdigit():
            return None
        found = await session.scalar(
            select(Enrollment).where(
                Enrollment.course_id == course_id,
                Enrollment.student_id == student_id,
                Enrollment.attempt == int(attempt),
                Enrollment.workflow_id == workflow_id,
            )
        )
        return ("enrollment", found) if found is not None else None
    return None


async def resolve_run(session: AsyncSession, workflow_id: str, workflow_type: str | None = None) -> RunRef | None:
    """The run behind a workflow id: its `workflow_runs` row, else the enrollment it was started for."""
    run = await session.get(WorkflowRun, workflow_id)
    if run is not None:
        subject = run.subject or (f"course:{run.course_id}" if run.course_id else None)
        return RunRef(workflow_id, run.kind, subject, run.course_id, run.owner_id)
    found = await _enrollment_of(session, workflow_id)
    if found is not None:
        kind, e = found
        return RunRef(workflow_id, kind, f"enrollment:{e.id}", e.course_id, e.student_id)
    if workflow_type is not None:
        return RunRef(workflow_id, KINDS.get(workflow_type, workflow_type), None, None, None)
    return None


# --- recording (the worker's activity hook calls these; they never raise into the activity) -----------


async def record_workflow_failure(
    sessionmaker: Any, *, workflow_id: str, workflow_type: str, step: str, error: str, final: bool, trace_id: str
) -> None:
    """An activity attempt failed: the run is `retrying` (Temporal will try again) or `failed` (it gave up)."""
    now = utcnow()
    status = "failed" if final else "retrying"
    async with sessionmaker() as session, session.begin():
        ref = await resolve_run(session, workflow_id, workflow_type)
        assert ref is not None  # a workflow type always resolves
        stmt = insert(WorkflowRun).values(
            workflow_id=workflow_id,
            kind=ref.kind,
            course_id=ref.course_id,
            owner_id=ref.owner_id,
            subject=ref.subject,
            status=status,
            error=error[:4000],
            failed_step=step[:100],
            trace_id=trace_id,
            failures=1,
            updated_at=now,
            finished_at=now if final else None,
        )
        excluded = stmt.excluded
        settled = WorkflowRun.status.in_(("failed", "completed", CANCELED))
        canceled = WorkflowRun.status == CANCELED  # what a canceled run did after its cancel is not its story
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[WorkflowRun.workflow_id],
                set_={
                    # A run already settled keeps its outcome (the compensation may have recorded it first).
                    "status": case((settled, WorkflowRun.status), else_=excluded.status),
                    "finished_at": case((settled, WorkflowRun.finished_at), else_=excluded.finished_at),
                    "error": case((canceled, WorkflowRun.error), else_=excluded.error),
                    "failed_step": case((canceled, WorkflowRun.failed_step), else_=excluded.failed_step),
                    "trace_id": excluded.trace_id,
                    "failures": WorkflowRun.failures + 1,
                    "updated_at": excluded.updated_at,
                    "subject": func.coalesce(WorkflowRun.subject, excluded.subject),
                },
            )
        )


async def record_workflow_progress(sessionmaker: Any, *, workflow_id: str, last_step: bool) -> None:
    """An activity succeeded after a failure (or the run's last step did): a `retrying` run is moving again;
    after its last step it is `completed`. Only touches runs that recorded a failure."""
    now = utcnow()
    async with sessionmaker() as session, session.begin():
        if last_step:
            stmt = (
                update(WorkflowRun)
                .where(WorkflowRun.workflow_id == workflow_id, WorkflowRun.status.in_(("running", "retrying")))
                .values(status="completed", finished_at=now, updated_at=now)
            )
        else:
            stmt = (
                update(WorkflowRun)
                .where(WorkflowRun.workflow_id == workflow_id, WorkflowRun.status == "retrying")
                .values(status="running", updated_at=now)
            )
        await session.execute(stmt)


#: How long a `retrying` enrollment run whose set-up is done is left to the worker's own record before the sweeper
#: settles it (`settle_finished_enrollment_runs`).
SETTLE_AFTER_SECONDS = 30.0


async def settle_finished_enrollment_runs(session: AsyncSession, *, older_than_s: float = SETTLE_AFTER_SECONDS) -> int:
    """Enrollment runs still `retrying` although their enrollment's set-up is done (`activated_at`): made `completed`
    as of the activation. The worker records the success of a set-up only after a failed attempt (its happy path costs
    no write), and that record can be lost: the worker killed between its failures' record and its success's, the
    set-up then done by another worker at its first attempt (a local activity starts again at 1; explore41 N1: 32
    runs `retrying` for good on `/ops/workflows` and the dashboard, their enrollments active), or a failure kept
    through a database outage written after the success. The enrollment's row is the truth; the run's last failure
    stays on it. Returns how many runs were settled (the sweeper calls this every 30 s)."""
    cutoff = utcnow() - timedelta(seconds=older_than_s)
    enrollment_id = cast(func.substr(WorkflowRun.subject, len("enrollment:") + 1), PG_UUID(as_uuid=True))
    activated = (
        select(Enrollment.activated_at)
        .where(
            Enrollment.id == enrollment_id,
            Enrollment.workflow_id == WorkflowRun.workflow_id,
            Enrollment.activated_at.is_not(None),
        )
        .scalar_subquery()
    )
    result = await session.execute(
        update(WorkflowRun)
        .where(
            WorkflowRun.status == "retrying",
            WorkflowRun.kind == "enrollment",
            WorkflowRun.subject.like("enrollment:%"),
            WorkflowRun.updated_at < cutoff,
            activated.is_not(None),
        )
        .values(status="completed", finished_at=activated, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    settled = int(getattr(result, "rowcount", 0) or 0)
    if settled:
        log.info("settled %d enrollment run(s) left retrying although their set-up was done", settled)
    return settled


#: The characters of a failure's text a task's rows keep.
ERROR_CHARS = 4000


def kept_error(error: str) -> str:
    """A failure's text ("Type: message", then the traceback) as a row keeps it: its first line whole (up to 500
    characters) and as much of the traceback's end as fits. Its end alone was kept: a long traceback started
    mid-line, and the cause was its last of 4,000 characters (explore77 F9)."""
    if len(error) <= ERROR_CHARS:
        return error
    head, _, rest = error.partition("\n")
    head = head[:500]
    return f"{head}\n…{rest[-(ERROR_CHARS - len(head) - 2) :]}"


async def record_task_outcome(
    session: AsyncSession,
    *,
    task_id: str,
    task: str,
    status: str,
    retries: int,
    args: dict[str, Any],
    error: str | None = None,
    trace_id: str = "",
) -> None:
    """The latest outcome of a Celery task id (its retries keep the id), in the caller's transaction."""
    now = utcnow()
    stmt = insert(TaskRun).values(
        task_id=task_id[:200],
        task=task[:200],
        status=status,
        retries=retries,
        args=args,
        error=kept_error(error) if error else None,
        trace_id=trace_id,
        created_at=now,
        updated_at=now,
    )
    excluded = stmt.excluded
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[TaskRun.task_id],
            set_={
                "status": excluded.status,
                "retries": excluded.retries,
                # A success after retries keeps the last error: it says what the retries were about.
                "error": func.coalesce(excluded.error, TaskRun.error),
                "trace_id": case((excluded.trace_id != "", excluded.trace_id), else_=TaskRun.trace_id),
                "updated_at": excluded.updated_at,
            },
        )
    )


# --- reading ----------------------------------------------------------------------------------------


def _run_subject(run: Any) -> ColumnElement[Any]:
    """What a run is about; a publishing run recorded without a subject is about its course."""
    return func.coalesce(run.subject, literal("course:", String) + cast(run.course_id, String))


def _superseding(later: Any, *, kind: Any, subject: Any, created_at: Any, workflow_id: Any) -> ColumnElement[bool]:
    """`later` is a completed run of the same kind and subject started after the run given by the other values."""
    return and_(
        later.kind == kind,
        _run_subject(later) == subject,
        later.status == "completed",
        later.created_at > created_at,
        later.workflow_id != workflow_id,
    )


def _run_resolved(run: Any) -> ColumnElement[bool]:
    """A later completed run of the same kind and subject exists (the failure of `run` is resolved)."""
    later = aliased(WorkflowRun)
    return exists().where(
        _superseding(
            later, kind=run.kind, subject=_run_subject(run), created_at=run.created_at, workflow_id=run.workflow_id
        )
    )


async def resolver_of(session: AsyncSession, run: WorkflowRun) -> WorkflowRun | None:
    """The earliest later completed run of the same kind and subject, for a failed run."""
    subject = run.subject or (f"course:{run.course_id}" if run.course_id else None)
    if run.status != "failed" or subject is None:
        return None
    condition = _superseding(
        WorkflowRun, kind=run.kind, subject=subject, created_at=run.created_at, workflow_id=run.workflow_id
    )
    found: WorkflowRun | None = await session.scalar(
        select(WorkflowRun).where(condition).order_by(WorkflowRun.created_at).limit(1)
    )
    return found


def _open_run_failure(run: Any) -> ColumnElement[bool]:
    """A run whose failure is not resolved: still retrying, or failed with no later success of its subject."""
    return or_(run.status == "retrying", and_(run.status == "failed", ~_run_resolved(run)))


def status_pattern(filters: tuple[str, ...]) -> str:
    """A `status` filter as the OpenAPI shows it: `all`, or a comma-separated list of the others (explore13 F5)."""
    one = rf"\s*({'|'.join(filters[1:])})\s*"
    return rf"^(all|{one}(,{one})*)$"


#: What `GET /ops/workflows?status=` takes: `all`, or a comma-separated list of the others.
WORKFLOW_STATUS_FILTERS = ("all", *WORKFLOW_STATUSES, "resolved")
#: What `GET /ops/tasks?status=` takes, the same way (explore81 F11: one value only, while workflows took several).
TASK_STATUS_FILTERS = ("all", "failed", "resolved", "retrying", "succeeded")
#: What `GET /ops/dead-letters?status=` takes, the same way.
DEAD_LETTER_STATUS_FILTERS = ("all", "pending", "replayed", "discarded")


def _bad_status(message: str) -> Invalid:
    """A bad `status` filter of an `/ops/*` list: 422 `validation_error` on field `status`, the answer the request
    validation gives for a bad query parameter."""
    details = [{"field": "status", "message": message, "type": "value_error"}]
    return Invalid(f"invalid request: status ({message})", code="validation_error", details=details)


def _named_statuses(status: str, filters: tuple[str, ...]) -> list[str] | None:
    """The statuses a comma-separated `status` filter names (None: `all`), or ValueError naming the ones it takes."""
    if status.strip() == "all":
        return None
    parts = [part.strip() for part in status.split(",")]
    if any(part not in filters[1:] for part in parts):
        raise ValueError(f"status must be one of {', '.join(filters)} (comma-separated)")
    return parts


def workflow_status_filter(status: str) -> str:
    """The `status` filter of `GET /ops/workflows`, checked as the request is validated (its handler's query
    parameter runs it): a bad one is the same 422 `validation_error` as a bad `status` of the other lists."""
    _named_statuses(status, WORKFLOW_STATUS_FILTERS)
    return status


def task_status_filter(status: str) -> str:
    """The `status` filter of `GET /ops/tasks`, checked as `workflow_status_filter` is."""
    _named_statuses(status, TASK_STATUS_FILTERS)
    return status


def dead_letter_status_filter(status: str) -> str:
    """The `status` filter of `GET /ops/dead-letters`, checked as `workflow_status_filter` is."""
    _named_statuses(status, DEAD_LETTER_STATUS_FILTERS)
    return status


def _checked_statuses(status: str, filters: tuple[str, ...]) -> list[str] | None:
    """`_named_statuses` for a service called without the handler's validation: a bad one is the same 422."""
    try:
        return _named_statuses(status, filters)
    except ValueError as exc:
        raise _bad_status(str(exc)) from None


def _statuses(status: str) -> ColumnElement[bool] | None:
    """The `status` filter of `GET /ops/workflows` as a condition (None: all)."""
    parts = _checked_statuses(status, WORKFLOW_STATUS_FILTERS)
    if parts is None:
        return None
    wanted: list[ColumnElement[bool]] = []
    for part in parts:
        if part == "failed":
            wanted.append(_open_run_failure(WorkflowRun))
        elif part == "resolved":
            wanted.append(and_(WorkflowRun.status == "failed", _run_resolved(WorkflowRun)))
        else:
            wanted.append(WorkflowRun.status == part)
    return or_(*wanted)


def workflow_item(run: WorkflowRun, resolved_by: WorkflowRun | None = None) -> dict[str, Any]:
    """`resolved_by`: the later successful run of the same subject, for a failed run."""
    resolved = run.status == "failed" and resolved_by is not None
    return {
        "workflow_id": run.workflow_id,
        "kind": run.kind,
        "subject": run.subject or (f"course:{run.course_id}" if run.course_id else None),
        "status": run.status,
        "failed_step": run.failed_step,
        "error": run.error,
        "trace_id": run.trace_id or "",
        "failures": run.failures,
        "started_at": run.created_at,
        "updated_at": run.updated_at or run.finished_at or run.created_at,
        "finished_at": run.finished_at,
        "resolved": resolved,
        "resolved_by": (
            {"workflow_id": resolved_by.workflow_id, "at": resolved_by.finished_at or resolved_by.created_at}
            if resolved and resolved_by is not None
            else None
        ),
    }


async def list_workflows(
    *,
    uow: UnitOfWork,
    principal: Principal,
    status: str = "failed",
    kind: str | None = None,
    subject: str | None = None,
    since: datetime | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """Workflow runs, newest change first. `status=failed` = failed and not resolved since, or still retrying after
    a failure; `status=resolved` = failed, then resolved by a later completed run of the same kind and subject."""
    ensure_admin(principal)
    query = select(WorkflowRun)
    statuses = _statuses(status)
    if statuses is not None:
        query = query.where(statuses)
    if kind:
        if kind not in KINDS.values():
            raise Invalid(f"kind must be one of {', '.join(sorted(KINDS.values()))}", code="invalid_kind")
        query = query.where(WorkflowRun.kind == kind)
    if subject:
        # Runs recorded before subjects existed are found by their course.
        course_id = _uuid(subject.removeprefix("course:")) if subject.startswith("course:") else None
        by_subject = WorkflowRun.subject == subject
        query = query.where(or_(by_subject, WorkflowRun.course_id == course_id) if course_id else by_subject)
    changed = func.coalesce(WorkflowRun.updated_at, WorkflowRun.finished_at, WorkflowRun.created_at)
    since = _aware(since)
    if since is not None:
        query = query.where(changed >= since)
    rows = (await uow.session.scalars(query.order_by(changed.desc()).limit(_limit(limit)))).all()
    return {"items": [workflow_item(r, await resolver_of(uow.session, r)) for r in rows]}


def _event_type(payload: dict[str, Any]) -> str | None:
    if "event_type" in payload:
        return str(payload["event_type"])
    if "task" in payload:  # a message Celery dropped may name none (explore25 F5: "task:None")
        return f"task:{payload['task'] or 'unknown'}"
    return None


def dead_letter_item(dl: DeadLetter, consumers: Collection[str] | None = None) -> dict[str, Any]:
    """`consumers`: the event consumers this deployment runs (a dead letter of another one cannot be replayed)."""
    return {
        "id": str(dl.id),
        "consumer": dl.consumer,
        "event_id": str(dl.event_id),
        "event_type": _event_type(dl.payload),
        "topic": dl.topic,
        "error": dl.error,
        "trace_id": dl.trace_id or "",
        "created_at": dl.created_at,
        "replayed_at": dl.replayed_at,
        "replay_outcome": dl.replay_outcome,
        "replayable": dl.replayed_at is None and dl.discarded_at is None and _replayable(dl, consumers) is None,
        "discarded_at": dl.discarded_at,
        "discarded_by": str(dl.discarded_by) if dl.discarded_by else None,
        "discard_reason": dl.discard_reason,
        "payload": dl.payload,
    }


async def list_dead_letters(
    *,
    uow: UnitOfWork,
    principal: Principal,
    status: str = "pending",
    consumer: str | None = None,
    since: datetime | None = None,
    limit: int = 50,
    consumers: Collection[str] | None = None,
) -> dict[str, Any]:
    """Dead letters, newest first: `pending` (neither replayed nor discarded), `replayed`, `discarded` or `all`.
    `consumers` names the event consumers this deployment runs (for `replayable`)."""
    ensure_admin(principal)
    query = select(DeadLetter)
    parts = _checked_statuses(status, DEAD_LETTER_STATUS_FILTERS)
    if parts is not None:
        each = {
            "pending": DEAD_LETTER_PENDING,
            "replayed": DeadLetter.replayed_at.is_not(None),
            "discarded": DeadLetter.discarded_at.is_not(None),
        }
        query = query.where(or_(*(each[part] for part in parts)))
    if consumer:
        query = query.where(DeadLetter.consumer == consumer)
    since = _aware(since)
    if since is not None:
        query = query.where(DeadLetter.created_at >= since)
    rows = (await uow.session.scalars(query.order_by(DeadLetter.created_at.desc()).limit(_limit(limit)))).all()
    return {"items": [dead_letter_item(r, consumers) for r in rows]}


def _replayable(dl: DeadLetter, consumers: Collection[str] | None = None) -> str | None:
    """Why this dead letter cannot be replayed, or None. With `consumers` (those this deployment runs), an event
    of any other consumer cannot be either."""
    if dl.consumer.startswith("celery:"):
        if dl.payload.get("poison"):
            return (
                f"the message was dropped before any task ran: {dl.payload['poison']} (its body is kept in the payload)"
            )
        return None if dl.payload.get("task") else "the dead letter does not name its task"
    if "event_type" not in dl.payload:
        return "the record was not a readable event (its raw bytes are kept in the payload)"
    if consumers is not None and dl.consumer not in consumers:
        return f"no consumer named {dl.consumer!r} in this deployment"
    return None


TaskSender = Callable[[str, list[Any], dict[str, Any]], None]


async def replay_dead_letter(
    *,
    sessionmaker: Any,
    principal: Principal,
    dead_letter_id: uuid.UUID,
    consumers: Sequence[Consumer],
    send_task: TaskSender | None = None,
) -> dict[str, Any]:
    """Apply a dead-lettered event again through its consumer (which dedupes by event id), or send a dead-lettered
    task again. Idempotent: a dead letter is replayed once; asking again answers the same and does nothing.

    A task is sent after the commit that marks the replay (and hands a failed e-mail back as 'pending'): sent
    before it, a fast worker would find the notification still locked by this transaction, take it for another
    worker's claim and stop, and the e-mail would wait for the sweeper. If the broker refuses the message, the
    replay is marked failed again (the notification stays 'pending': the sweeper sends it)."""
    ensure_admin(principal)
    task: tuple[str, list[Any], dict[str, Any]] | None = None
    error: Conflict | None = None
    async with sessionmaker() as session:
        async with session.begin():
            # The row lock serialises concurrent replays of one dead letter: the second sees it replayed.
            dl = await session.get(DeadLetter, dead_letter_id, with_for_update=True)
            if dl is None:
                raise NotFound("dead letter not found", code="dead_letter_not_found")
            if dl.replayed_at is not None:
                return _replay_answer(dl, replayed_now=False)
            if dl.discarded_at is not None:
                raise Conflict("this dead letter was discarded", code="dead_letter_discarded")
            reason = _replayable(dl)
            if reason:
                raise Conflict(f"this dead letter cannot be replayed: {reason}", code="not_replayable")
            try:
                if dl.consumer.startswith("celery:"):
                    task = await _prepare_task(session, dl, send_task)
                    outcome = "resent"
                else:
                    outcome = await _reapply_event(sessionmaker, dl, consumers)
            except (Conflict, NotFound):
                raise
            except Exception as exc:
                log.warning("replay of dead letter %s failed", dead_letter_id, exc_info=True)
                dl.replay_outcome = "failed"
                error = _replay_failed(exc)
            else:
                dl.replayed_at = utcnow()
                dl.replay_outcome = outcome
        if error is not None:
            raise error
        if task is not None and send_task is not None:
            try:
                # Off the event loop: a broker round trip.
                await asyncio.to_thread(send_task, *task)
            except Exception as exc:
                log.warning("replay of dead letter %s: the task could not be sent", dead_letter_id, exc_info=True)
                async with session.begin():
                    await session.execute(
                        update(DeadLetter)
                        .where(DeadLetter.id == dl.id, DeadLetter.replayed_at == dl.replayed_at)
                        .values(replayed_at=None, replay_outcome="failed")
                    )
                raise _replay_failed(exc) from None
        return _replay_answer(dl, replayed_now=True)


def _replay_failed(exc: BaseException) -> Conflict:
    failure = f"{type(exc).__name__}: {exc}"
    return Conflict(f"the replay failed again: {failure}", code="replay_failed", details={"error": failure[:2000]})


async def _reapply_event(sessionmaker: Any, dl: DeadLetter, consumers: Sequence[Consumer]) -> str:
    consumer = next((c for c in consumers if c.name == dl.consumer), None)
    if consumer is None:
        raise Conflict(f"no consumer named {dl.consumer!r} in this deployment", code="unknown_consumer")
    applied = await consumer.handle(sessionmaker, dict(dl.payload))
    return "applied" if applied else "duplicate"


async def _prepare_task(
    session: AsyncSession, dl: DeadLetter, send_task: TaskSender | None
) -> tuple[str, list[Any], dict[str, Any]]:
    """What to send again, once this transaction commits."""
    if send_task is None:
        raise Conflict("tasks cannot be replayed from here", code="not_replayable")
    task = str(dl.payload["task"])
    args, kwargs = list(dl.payload.get("args") or []), dict(dl.payload.get("kwargs") or {})
    ids = _notification_ids(task, args)
    if ids:
        # The email tasks send only a `pending` notification: hand the failed ones back to them, attempts reset.
        await session.execute(
            update(Notification)
            .where(Notification.id.in_(ids), Notification.email_status == "failed")
            .values(email_status="pending", email_attempts=0)
        )
    return task, args, kwargs  # the email task is idempotent: a duplicate send is a no-op


def _notification_ids(task: str, args: list[Any]) -> list[uuid.UUID]:
    """The notifications an e-mail task's arguments name: `send_email(id)`, `send_emails([{"id": ...}, ...])`."""
    if not args:
        return []
    if task == "notifications.send_emails":
        return [nid for nid, _ in email_batch_items(args[0])]
    if task == "notifications.send_email":
        with contextlib.suppress(ValueError, TypeError):
            return [uuid.UUID(str(args[0]))]
    return []


def _replay_answer(dl: DeadLetter, *, replayed_now: bool) -> dict[str, Any]:
    return {
        "id": str(dl.id),
        "consumer": dl.consumer,
        "event_id": str(dl.event_id),
        "status": "replayed",
        "outcome": dl.replay_outcome,
        "replayed_at": dl.replayed_at,
        "replayed_now": replayed_now,
    }


async def discard_dead_letter(
    *, sessionmaker: Any, principal: Principal, dead_letter_id: uuid.UUID, reason: str
) -> dict[str, Any]:
    """Set a dead letter aside without replaying it (it cannot be, or need not be): who, when and why are kept,
    and it is no longer pending. Idempotent: asking again answers the first discard (`discarded_now: false`);
    a replayed dead letter is settled already (409 `dead_letter_replayed`)."""
    ensure_admin(principal)
    why = reason.strip()
    if not why or len(why) > MAX_REASON:
        raise Invalid(f"reason must be 1 to {MAX_REASON} characters", code="invalid_reason")
    async with sessionmaker() as session, session.begin():
        # The same row lock as a replay: a discard and a replay at once settle it one way.
        dl = await session.get(DeadLetter, dead_letter_id, with_for_update=True)
        if dl is None:
            raise NotFound("dead letter not found", code="dead_letter_not_found")
        if dl.replayed_at is not None:
            raise Conflict("this dead letter was replayed", code="dead_letter_replayed")
        discarded_now = dl.discarded_at is None
        if discarded_now:
            dl.discarded_at, dl.discarded_by, dl.discard_reason = utcnow(), principal.user_id, why
        return {
            "id": str(dl.id),
            "consumer": dl.consumer,
            "event_id": str(dl.event_id),
            "status": "discarded",
            "discarded_at": dl.discarded_at,
            "discarded_by": str(dl.discarded_by) if dl.discarded_by else None,
            "discard_reason": dl.discard_reason,
            "discarded_now": discarded_now,
        }


def _settled_letter(letter: Any, run: Any) -> ColumnElement[bool]:
    """`letter` is the dead letter of task run `run` (the task id is its event id), replayed or discarded."""
    return and_(
        letter.consumer == literal("celery:", String) + run.task,
        cast(letter.event_id, String) == run.task_id,
        or_(letter.replayed_at.is_not(None), letter.discarded_at.is_not(None)),
    )


def _later_success(later: Any, run: Any) -> ColumnElement[bool]:
    """`later` is a success of the same task with the same arguments after `run` last changed."""
    return and_(
        later.task == run.task, later.args == run.args, later.status == "succeeded", later.updated_at > run.updated_at
    )


def _task_resolved(run: Any) -> ColumnElement[bool]:
    """The failure of task run `run` is resolved: its dead letter was replayed or discarded, or the same task with
    the same arguments succeeded since."""
    letter, later = aliased(DeadLetter), aliased(TaskRun)
    return or_(exists().where(_settled_letter(letter, run)), exists().where(_later_success(later, run)))


async def _task_resolution(session: AsyncSession, run: TaskRun) -> dict[str, Any] | None:
    """What resolved a failed task run, or None."""
    if run.status != "failed":
        return None
    letter = await session.scalar(select(DeadLetter).where(_settled_letter(DeadLetter, run)).limit(1))
    if letter is not None:
        how = "replayed" if letter.replayed_at is not None else "discarded"
        return {"how": how, "dead_letter_id": str(letter.id), "at": letter.replayed_at or letter.discarded_at}
    later = await session.scalar(
        select(TaskRun).where(_later_success(TaskRun, run)).order_by(TaskRun.updated_at).limit(1)
    )
    if later is not None:
        return {"how": "succeeded", "task_id": later.task_id, "at": later.updated_at}
    return None


def task_item(run: TaskRun, resolved_by: dict[str, Any] | None = None) -> dict[str, Any]:
    """`resolved_by`: what resolved a failed run (its dead letter replayed or discarded, a later success)."""
    return {
        "task_id": run.task_id,
        "task": run.task,
        "status": run.status,
        "retries": run.retries,
        "args": run.args,
        # The cause in one line ("SMTPServerDisconnected: Connection unexpectedly closed"), the traceback apart
        # (explore77 F9: a 4,000-character traceback's tail was the error).
        "error": (run.error or "").partition("\n")[0] or None,
        "traceback": (run.error or "").partition("\n")[2].strip() or None,
        "trace_id": run.trace_id or "",
        "started_at": run.created_at,
        "updated_at": run.updated_at,
        "resolved": run.status == "failed" and resolved_by is not None,
        "resolved_by": resolved_by if run.status == "failed" else None,
    }


async def list_tasks(
    *,
    uow: UnitOfWork,
    principal: Principal,
    status: str = "failed",
    task: str | None = None,
    since: datetime | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """Celery task outcomes, newest change first (`failed` = out of retries, in `dead_letters` too, and not resolved
    since; `resolved` = failed, then resolved: its dead letter replayed or discarded, or a later success)."""
    ensure_admin(principal)
    query = select(TaskRun)
    parts = _checked_statuses(status, TASK_STATUS_FILTERS)
    if parts is not None:
        wanted: list[ColumnElement[bool]] = []
        for part in parts:
            if part == "failed":
                wanted.append(and_(TaskRun.status == "failed", ~_task_resolved(TaskRun)))
            elif part == "resolved":
                wanted.append(and_(TaskRun.status == "failed", _task_resolved(TaskRun)))
            else:
                wanted.append(TaskRun.status == part)
        query = query.where(or_(*wanted))
    if task:
        query = query.where(TaskRun.task == task)
    since = _aware(since)
    if since is not None:
        query = query.where(TaskRun.updated_at >= since)
    rows = (await uow.session.scalars(query.order_by(TaskRun.updated_at.desc()).limit(_limit(limit)))).all()
    return {"items": [task_item(r, await _task_resolution(uow.session, r)) for r in rows]}


async def failure_counts(session: AsyncSession) -> dict[str, int]:
    """Open failures, for the dashboard: failed (not resolved since) and retrying workflow runs, pending dead letters
    by source (event consumers vs Celery tasks), failed tasks not resolved since (see the module's docstring) and
    tasks being retried."""
    runs: dict[str, int] = dict(
        (
            await session.execute(
                select(WorkflowRun.status, func.count())
                .where(_open_run_failure(WorkflowRun))
                .group_by(WorkflowRun.status)
            )
        ).all()
    )
    is_task = DeadLetter.consumer.like("celery:%")
    dead = (
        await session.execute(
            select(
                func.count().filter(~is_task),
                func.count().filter(is_task),
            ).where(DEAD_LETTER_PENDING)
        )
    ).one()
    tasks = (
        await session.execute(
            select(
                func.count().filter(TaskRun.status == "failed", ~_task_resolved(TaskRun)),
                # Being retried now (an e-mail outage shows here, not only once the tasks give up: explore30 F5).
                func.count().filter(TaskRun.status == "retrying"),
            )
            .select_from(TaskRun)
            .where(TaskRun.status.in_(("failed", "retrying")))
        )
    ).one()
    return {
        "failed_workflows": int(runs.get("failed", 0)),
        "retrying_workflows": int(runs.get("retrying", 0)),
        "dead_letters": int(dead[0] or 0) + int(dead[1] or 0),
        "failed_events": int(dead[0] or 0),
        "failed_tasks": int(tasks[0] or 0),
        "retrying_tasks": int(tasks[1] or 0),
        "dead_lettered_tasks": int(dead[1] or 0),
    }
