"""Relational schema (SQLAlchemy 2 ORM): the source of truth for every invariant."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    and_,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.elements import ColumnElement


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """A moment as the API writes every one: RFC 3339 in UTC with `Z`, as pydantic serialises the response models'
    own (a time written into a JSON document, a report or an error's details, said `+00:00` beside them: explore60
    F8). A naive moment is taken as UTC."""
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.isoformat().replace("+00:00", "Z")


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSONB, uuid.UUID: UUID(as_uuid=True)}


def _pk() -> Mapped[uuid.UUID]:
    return mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)


def _created() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), nullable=False, default=utcnow, server_default=func.now())


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        Index("uq_users_email_lower", func.lower(text("email")), unique=True),
        CheckConstraint("role in ('student','instructor','admin')", name="ck_users_role"),
    )

    id: Mapped[uuid.UUID] = _pk()
    email: Mapped[str] = mapped_column(String(320), nullable=False)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    full_name: Mapped[str] = mapped_column(String(200), nullable=False)
    role: Mapped[str] = mapped_column(String(20), nullable=False)
    bio: Mapped[str | None] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True, server_default=text("true"))
    # Bumped by a password change (and by disabling): access tokens carry it and older ones stop working.
    token_version: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default=text("0"))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()
    # When its owner proved the address theirs (the sign-up's link, a reset, an invitation) or an admin vouched for it
    # (migration 0039, explore82 F1); None: not yet, or changed since.
    email_verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Its personal data erased (migration 0031, `services/erasure.py`): when, and by whom (itself or an admin).
    erased_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    erased_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))  # no foreign key: see account_changes


class AccountChange(Base):
    """What an admin did to an account, durably (migration 0032; explore67 F5: disabling, renaming, a password reset
    left no record of who did what to whom): made, renamed, disabled or enabled, its role or address changed, its
    password reset, erased. A password is recorded as changed, never its value."""

    __tablename__ = "account_changes"
    __table_args__ = (Index("ix_account_changes_user_at", "user_id", "at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", name="fk_account_changes_user"), nullable=False)
    # No foreign key (migration 0032): its check locked the acting admin's row; two admins acting on each other
    # deadlocked.
    actor_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    change: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    at: Mapped[datetime] = _created()


class RefreshToken(Base):
    """One row per issued refresh token; a family is one login's rotation chain."""

    __tablename__ = "refresh_tokens"

    id: Mapped[uuid.UUID] = _pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    family_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False, index=True)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _created()
    # The grace retry this spent token had (one: a second use is theft) and when its login began (a rotation keeps
    # it: `SESSION_MAX_DAYS`); migration 0038, explore82 F2. None before it: `created_at` stands for the start.
    retried_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    session_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Course(Base):
    __tablename__ = "courses"
    __table_args__ = (
        CheckConstraint("status in ('draft','publishing','published','archived')", name="ck_courses_status"),
        CheckConstraint("capacity is null or capacity > 0", name="ck_courses_capacity_positive"),
        CheckConstraint("seats_taken >= 0", name="ck_courses_seats_nonnegative"),
        CheckConstraint("index_status in ('none','indexing','ready','failed')", name="ck_courses_index_status"),
        CheckConstraint("capacity is null or seats_taken <= capacity", name="ck_courses_seats_within_capacity"),
        Index("ix_courses_status_category", "status", "category"),
    )

    id: Mapped[uuid.UUID] = _pk()
    instructor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), nullable=False, index=True)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    category: Mapped[str] = mapped_column(String(100), nullable=False)
    tags: Mapped[list[str]] = mapped_column(ARRAY(String(50)), nullable=False, default=list)
    level: Mapped[str | None] = mapped_column(String(20))
    capacity: Mapped[int | None] = mapped_column(Integer)
    waitlist_enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    seats_taken: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default=text("0"))
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="draft")
    # The content version students see; bumped by each successful publish.
    content_version: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default=text("0"))
    publish_workflow_id: Mapped[str | None] = mapped_column(String(200))
    # The content index: `index_version` is the version students search; it switches in the same transaction
    # that makes a publish live. `publish_report` lists what the last publish read, skipped and why.
    index_status: Mapped[str] = mapped_column(String(20), nullable=False, default="none", server_default="none")
    index_version: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default=text("0"))
    publish_report: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()

    @classmethod
    def live(cls) -> ColumnElement[bool]:
        """`domain.courses.is_live` in SQL: a version published and not archived (also while the next one is being
        published). The catalogue, search, the profile, recommendations and the admission all ask it this way."""
        return and_(cls.content_version > 0, cls.status.in_(("published", "publishing")))


class CoursePrerequisite(Base):
    __tablename__ = "course_prerequisites"
    __table_args__ = (CheckConstraint("course_id <> prerequisite_id", name="ck_prereq_not_self"),)

    course_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True)
    prerequisite_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("courses.id"), primary_key=True)


class Module(Base):
    __tablename__ = "modules"

    id: Mapped[uuid.UUID] = _pk()
    course_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("courses.id", ondelete="CASCADE"), nullable=False, index=True
    )
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = _created()


class Lesson(Base):
    """The lesson's place in the course; its body lives in the document store."""

    __tablename__ = "lessons"
    __table_args__ = (CheckConstraint("type in ('text','video','quiz')", name="ck_lessons_type"),)

    id: Mapped[uuid.UUID] = _pk()
    module_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("modules.id", ondelete="CASCADE"), nullable=False, index=True
    )
    course_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("courses.id", ondelete="CASCADE"), nullable=False, index=True
    )
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    type: Mapped[str] = mapped_column(String(10), nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class WorkflowRun(Base):
    """Who started which workflow, so `GET /workflows/{id}` can check access."""

    __tablename__ = "workflow_runs"
    __table_args__ = (Index("ix_workflow_runs_status_created", "status", "created_at"),)

    workflow_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(50), nullable=False)
    course_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("courses.id"), index=True)
    owner_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    # Outcome, once known (`failed` runs count in the dashboard's workflow issues; `error` says why).
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="running", server_default="running")
    error: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _created()
    # Operations (issue #8, migration 0009): what the run is about ("course:<id>", "enrollment:<id>"), the step
    # that failed last, the trace of that failure (032x, "" if none), failed attempts, when it last changed.
    subject: Mapped[str | None] = mapped_column(String(200), index=True)
    failed_step: Mapped[str | None] = mapped_column(String(100))
    trace_id: Mapped[str | None] = mapped_column(String(32))
    failures: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default=text("0"))
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


#: Outbox rows the workflow dispatcher still has to handle: admissions that need an enrollment workflow.
OUTBOX_DISPATCH_QUEUE = (
    "dispatched_at is null and (event_type = 'waitlist.promoted' "
    "or (event_type = 'enrollment.created' and (payload -> 'data' ->> 'status') = 'pending'))"
)


class OutboxEvent(Base):
    """A domain event committed with the change that caused it; the relay publishes it."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_unpublished", "occurred_at", postgresql_where=text("published_at is null")),
        # The workflow dispatcher's queue (issue #7, services/dispatcher.py): admissions whose workflow it has not
        # handled yet. Keep the predicate in step with dispatcher.QUEUE_PREDICATE and migration 0008.
        Index("ix_outbox_dispatch_queue", "occurred_at", "id", postgresql_where=text(OUTBOX_DISPATCH_QUEUE)),
    )

    id: Mapped[uuid.UUID] = _pk()
    topic: Mapped[str] = mapped_column(String(100), nullable=False)
    event_type: Mapped[str] = mapped_column(String(100), nullable=False)
    schema_version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    aggregate_id: Mapped[str] = mapped_column(String(100), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    trace_context: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    occurred_at: Mapped[datetime] = _created()
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(Text)
    # The workflow dispatcher's mark (issue #7): set once the admission's workflow was started (or needed none).
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ProcessedEvent(Base):
    """Dedupe record: a consumer writes it in the same transaction as its effect."""

    __tablename__ = "processed_events"

    consumer: Mapped[str] = mapped_column(String(100), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    processed_at: Mapped[datetime] = _created()


class DeadLetter(Base):
    """An event a consumer could not apply, kept with its error for inspection and replay."""

    __tablename__ = "dead_letters"
    __table_args__ = (
        UniqueConstraint("consumer", "event_id", name="uq_dead_letters_consumer_event"),
        Index("ix_dead_letters_created", "created_at"),
    )

    id: Mapped[uuid.UUID] = _pk()
    consumer: Mapped[str] = mapped_column(String(100), nullable=False)
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    topic: Mapped[str] = mapped_column(String(100), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    error: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = _created()
    replayed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Operations (issue #8, migration 0009): the trace the failure happened in; what a replay did.
    trace_id: Mapped[str | None] = mapped_column(String(32))
    replay_outcome: Mapped[str | None] = mapped_column(String(20))
    # Migration 0011: an admin set it aside without replaying it (POST /ops/dead-letters/{id}/discard): when, who,
    # why. A discarded dead letter is no longer pending (dashboard, dead_letters_pending, the alert).
    discarded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    discarded_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    discard_reason: Mapped[str | None] = mapped_column(Text)


class Document(Base):
    """The embedded document store: one JSONB row per document (MongoDB in production)."""

    __tablename__ = "documents"

    collection: Mapped[str] = mapped_column(String(100), primary_key=True)
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    updated_at: Mapped[datetime] = _created()


# --- enrollment and the learner record ----------------------------------------------------------

ENROLLMENT_STATUSES = ("waitlisted", "pending", "active", "completed", "dropped")
#: The unique index's predicate: what `Enrollment.current()` selects (a query states it to use the index).
CURRENT_ENROLLMENT_SQL = "status <> 'dropped' and completion_revoked_at is null"


class Enrollment(Base):
    """A student's attempt at a course. Invariants (one live enrollment, idempotency) are indexes."""

    __tablename__ = "enrollments"
    __table_args__ = (
        CheckConstraint(
            "status in ('waitlisted','pending','active','completed','dropped')", name="ck_enrollments_status"
        ),
        # Only a completion's certificate is revoked (migration 0025).
        CheckConstraint(
            "completion_revoked_at is null or status = 'completed'", name="ck_enrollments_revoked_completion"
        ),
        Index(
            "uq_enrollments_one_live",
            "student_id",
            "course_id",
            unique=True,
            postgresql_where=text(CURRENT_ENROLLMENT_SQL),
        ),
        UniqueConstraint("student_id", "course_id", "attempt", name="uq_enrollments_attempt"),
        Index(
            "uq_enrollments_idempotency_key",
            "student_id",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key is not null"),
        ),
        Index("ix_enrollments_waitlist", "course_id", "waitlisted_at", postgresql_where=text("status = 'waitlisted'")),
        Index("ix_enrollments_course_status", "course_id", "status"),
        # Launch day (issue #7, migration 0008): the admitted-not-active backlog and the dispatcher's work in
        # flight are counted on this small index (pending rows only).
        Index(
            "ix_enrollments_pending",
            "admitted_at",
            postgresql_where=text("status = 'pending'"),
            postgresql_include=["workflow_started_at"],
        ),
    )

    id: Mapped[uuid.UUID] = _pk()
    student_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), nullable=False, index=True)
    course_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("courses.id"), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    attempt: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    workflow_id: Mapped[str | None] = mapped_column(String(200))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    waitlisted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When the seat was granted (at request, or at promotion from the waitlist).
    admitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    activated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    dropped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When the dispatcher (or the sweeper) had the enrollment's workflow started (issue #7; services/dispatcher.py).
    workflow_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When an admin revoked this completion's certificate: the completion stays (history, analytics), but it meets
    # no prerequisite and no longer holds the student's place, so they may take the course again (migration 0025).
    completion_revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()

    @classmethod
    def current(cls) -> ColumnElement[bool]:
        """The student's current enrollment in a course, at most one (`uq_enrollments_one_live`): any but a drop
        and a completion whose certificate was revoked (the student may enroll again: a new attempt)."""
        return and_(cls.status != "dropped", cls.completion_revoked_at.is_(None))

    @property
    def is_current(self) -> bool:
        """`current()` of a loaded row."""
        return self.status != "dropped" and self.completion_revoked_at is None


class EnrollmentHistory(Base):
    """Every state change of an enrollment, with who made it."""

    __tablename__ = "enrollment_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    enrollment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("enrollments.id", ondelete="CASCADE"), nullable=False, index=True
    )
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20), nullable=False)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    actor: Mapped[str] = mapped_column(String(20), nullable=False, default="student")
    reason: Mapped[str | None] = mapped_column(String(500))  # a drop's reason: up to 500 (migration 0018)
    at: Mapped[datetime] = _created()


class LessonProgress(Base):
    __tablename__ = "lesson_progress"
    __table_args__ = (CheckConstraint("status in ('not_started','completed')", name="ck_lesson_progress_status"),)

    enrollment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("enrollments.id", ondelete="CASCADE"), primary_key=True)
    lesson_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="not_started")
    best_score: Mapped[int | None] = mapped_column(Integer)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class QuizAttempt(Base):
    """One graded submission. `attempt` counts the student's attempts on the quiz across all of their
    enrollments (re-enrolling does not reset them), unique per student and quiz (migration 0010)."""

    __tablename__ = "quiz_attempts"
    __table_args__ = (
        UniqueConstraint("student_id", "lesson_id", "attempt", name="uq_quiz_attempts_student_attempt"),
        CheckConstraint("attempt >= 1", name="ck_quiz_attempts_attempt_positive"),
        Index(
            "uq_quiz_attempts_student_key",
            "student_id",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key is not null"),
        ),
    )

    id: Mapped[uuid.UUID] = _pk()
    enrollment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("enrollments.id", ondelete="CASCADE"), nullable=False, index=True
    )
    # The enrollment's student (denormalised: the unique index above spans the student's enrollments).
    student_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), nullable=False)
    lesson_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    attempt: Mapped[int] = mapped_column(Integer, nullable=False)
    answers: Mapped[list[int]] = mapped_column(JSONB, nullable=False)
    score: Mapped[int] = mapped_column(Integer, nullable=False)
    passed: Mapped[bool] = mapped_column(Boolean, nullable=False)
    submitted_at: Mapped[datetime] = _created()
    # The quiz as answered (`domain.courses.quiz_fingerprint`): the limit counts the attempts on the quiz as it is
    # now, and a review grades an attempt against the questions it answered. Null: an attempt from before migration
    # 0019 that migration 0020 could not place, counted against whatever the quiz is.
    quiz_fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # A submission's Idempotency-Key and the result it answered (migration 0035): the same key again answers it.
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class Certificate(Base):
    """Exactly one per completed enrollment (unique enrollment_id); the code is what a verifier types."""

    __tablename__ = "certificates"
    __table_args__ = (
        CheckConstraint("(revoked_at is null) = (revoked_reason is null)", name="ck_certificates_revocation_whole"),
        Index("ix_certificates_course_issued", "course_id", "issued_at"),  # a course's, newest first (0021)
    )

    id: Mapped[uuid.UUID] = _pk()
    enrollment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("enrollments.id"), nullable=False, unique=True)
    student_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), nullable=False, index=True)
    course_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("courses.id"), nullable=False)
    code: Mapped[str] = mapped_column(String(32), nullable=False, unique=True)
    student_name: Mapped[str] = mapped_column(String(200), nullable=False)
    course_title: Mapped[str] = mapped_column(String(200), nullable=False)
    # The course's instructor's name at issue (migration 0029: the public check names who taught it; read now, a
    # rename changed every certificate already issued: explore62 F8). Null only for a course whose owner was gone.
    instructor_name: Mapped[str | None] = mapped_column(String(200))
    issued_at: Mapped[datetime] = _created()
    pdf_key: Mapped[str | None] = mapped_column(String(500))
    # Revoked by an admin (migration 0016): the public check then answers `revoked`.
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_reason: Mapped[str | None] = mapped_column(String(500))
    revoked_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", name="fk_certificates_revoked_by"))
    # Its student's account was erased (migration 0031): it names nobody, and the public check answers `withdrawn`.
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Re-issued under its holder's corrected name (migration 0033): when its name was last replaced.
    reissued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Notification(Base):
    """An in-app notification; `dedupe_key` makes creating it idempotent, `email_*` tracks the email copy."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_user_created", "user_id", "created_at"),
        # The e-mails waiting to go out (the sweeper's and /metrics' reads: migration 0026).
        Index(
            "ix_notifications_email_pending",
            "created_at",
            postgresql_where=text("email_status = 'pending'"),
            postgresql_include=["email_attempts"],
        ),
        CheckConstraint("email_status in ('none','pending','sent','failed')", name="ck_notifications_email_status"),
        CheckConstraint(
            "kind in ('enrollment.welcome','waitlist.released','enrollment.removed','certificate.issued',"
            "'certificate.revoked','publish_failed','publish_warnings','publish_canceled','waitlist.joined',"
            "'waitlist.passed_over','publish_completed','quiz.attempts_granted')",
            name="ck_notifications_kind",
        ),
    )

    id: Mapped[uuid.UUID] = _pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), nullable=False)
    kind: Mapped[str] = mapped_column(String(50), nullable=False)
    title: Mapped[str] = mapped_column(String(500), nullable=False)  # built around a 200-character course title
    body: Mapped[str] = mapped_column(Text, nullable=False)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict)
    dedupe_key: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    email_status: Mapped[str] = mapped_column(String(10), nullable=False, default="none")
    emailed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    email_attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default=text("0"))
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _created()


class AnalyticsCounter(Base):
    """Event-derived counters: (metric, bucket) -> value; reconciled against the source tables."""

    __tablename__ = "analytics_counters"

    metric: Mapped[str] = mapped_column(String(100), primary_key=True)
    bucket: Mapped[str] = mapped_column(String(100), primary_key=True, default="")
    value: Mapped[float] = mapped_column(nullable=False, default=0)
    updated_at: Mapped[datetime] = _created()


class ContentChunk(Base):
    """A retrievable piece of one published course version (the vector index holds the same rows + vectors).

    Kept here too so the catalogue's full-text search and citations have a relational source of truth."""

    __tablename__ = "content_chunks"
    __table_args__ = (
        Index("ix_content_chunks_course_version", "course_id", "version"),
        CheckConstraint("source_type in ('lesson','material')", name="ck_content_chunks_source_type"),
    )

    chunk_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    course_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    source_type: Mapped[str] = mapped_column(String(20), nullable=False)
    source_id: Mapped[str] = mapped_column(String(200), nullable=False)
    title: Mapped[str] = mapped_column(Text, nullable=False)
    location: Mapped[str] = mapped_column(Text, nullable=False, default="")
    text: Mapped[str] = mapped_column(Text, nullable=False)
    content_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    ordinal: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class EmbeddingCache(Base):
    """Vectors by (model, content hash): a re-publish embeds only chunks whose text changed."""

    __tablename__ = "embedding_cache"

    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    vector: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)  # float32, little-endian
    created_at: Mapped[datetime] = _created()


# --- the learning assistant (issue #13) -----------------------------------------------------------


class AiConversation(Base):
    """One student's conversation about one course; expired with its messages after ASSISTANT_HISTORY_DAYS."""

    __tablename__ = "ai_conversations"
    __table_args__ = (
        Index("ix_ai_conversations_user_course", "user_id", "course_id"),
        Index("ix_ai_conversations_updated_at", "updated_at"),
    )

    id: Mapped[uuid.UUID] = _pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    course_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), nullable=False)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class AiMessage(Base):
    """A turn of a conversation (the question as asked, the answer as given)."""

    __tablename__ = "ai_messages"
    __table_args__ = (
        CheckConstraint("role in ('user','assistant')", name="ck_ai_messages_role"),
        Index("ix_ai_messages_conversation", "conversation_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ai_conversations.id", ondelete="CASCADE"), nullable=False
    )
    role: Mapped[str] = mapped_column(String(10), nullable=False)
    content: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = _created()
    # An answer as `done` gave it (migration 0034): its type, citations and interaction; null for a question.
    answer_type: Mapped[str | None] = mapped_column(String(10))
    citations: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    interaction_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))


AI_KINDS = ("ask", "summary", "objectives", "quiz", "explain")
AI_OUTCOMES = ("answer", "clarify", "refuse", "generated", "error", "cancelled")


class AiInteraction(Base):
    """Every assistant call, successful or not: the source the AI usage analytics reconcile against."""

    __tablename__ = "ai_interactions"
    __table_args__ = (
        CheckConstraint("kind in ('ask','summary','objectives','quiz','explain')", name="ck_ai_interactions_kind"),
        CheckConstraint(
            "outcome in ('answer','clarify','refuse','generated','error','cancelled')",
            name="ck_ai_interactions_outcome",
        ),
        Index("ix_ai_interactions_course", "course_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = _pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    course_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    conversation_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    outcome: Mapped[str] = mapped_column(String(20), nullable=False)
    reason: Mapped[str | None] = mapped_column(String(50))
    streamed: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    latency_ms: Mapped[int] = mapped_column(Integer, nullable=False)
    first_token_ms: Mapped[int | None] = mapped_column(Integer)
    tokens_in: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    tokens_out: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    model: Mapped[str] = mapped_column(String(200), nullable=False)
    error: Mapped[str | None] = mapped_column(Text)
    question: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()


class AiGeneratedQuiz(Base):
    """A validated quiz the model wrote for an instructor; saving it creates a draft quiz lesson."""

    __tablename__ = "ai_generated_quizzes"

    id: Mapped[uuid.UUID] = _pk()
    course_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), nullable=False)
    lesson_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    questions: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, nullable=False)
    saved_lesson_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = _created()


# --- recommendations (issue #10) ------------------------------------------------------------------


class CourseEmbedding(Base):
    """A course's content vector: the normalised mean of its live chunks' vectors (per embedding model)."""

    __tablename__ = "course_embeddings"

    course_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True)
    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    chunks: Mapped[int] = mapped_column(Integer, nullable=False)
    vector: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)  # float32, little-endian
    updated_at: Mapped[datetime] = _created()


class CourseNeighbour(Base):
    """Precomputed content neighbours (cosine of course embeddings), refreshed on publish and periodically."""

    __tablename__ = "course_neighbours"

    course_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True)
    neighbour_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True)
    similarity: Mapped[float] = mapped_column(nullable=False)
    updated_at: Mapped[datetime] = _created()


class CoursePair(Base):
    """How many learners were admitted to / completed both courses (kept both ways by the consumer)."""

    __tablename__ = "course_pairs"

    course_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True)
    other_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True)
    co_admitted: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default=text("0"))
    co_completed: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default=text("0"))


class CoursePopularity(Base):
    """Admissions and completions per course (the cold-start signal)."""

    __tablename__ = "course_popularity"

    course_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True)
    admissions: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default=text("0"))
    completions: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default=text("0"))


# --- operations (issue #8) ------------------------------------------------------------------------

TASK_RUN_STATUSES = ("succeeded", "retrying", "failed")


class TaskRun(Base):
    """The last outcome of each Celery task id (a retry keeps its id), written by the worker's signal hooks."""

    __tablename__ = "task_runs"
    __table_args__ = (
        CheckConstraint("status in ('succeeded','retrying','failed')", name="ck_task_runs_status"),
        Index("ix_task_runs_status_updated", "status", "updated_at"),
    )

    task_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    task: Mapped[str] = mapped_column(String(200), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    retries: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default=text("0"))
    args: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    trace_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class ProcessHeartbeat(Base):
    """A background process's sign of life (migration 0012): each instance of the worker, relay, consumers and
    Celery writes its row every few seconds; `/health` reads the newest per process (services/heartbeats.py)."""

    __tablename__ = "process_heartbeats"

    process: Mapped[str] = mapped_column(String(50), primary_key=True)
    instance: Mapped[str] = mapped_column(String(200), primary_key=True)
    started_at: Mapped[datetime] = _created()
    beat_at: Mapped[datetime] = _created()


class IdempotentRequest(Base):
    """A creating request sent with `Idempotency-Key` (migration 0036, `api.idempotency`): the caller's key, the
    request it named (`route`: method and path; `fingerprint`: its body's sha256) and the answer it got, written in
    the transaction that created the resource. Kept `IDEMPOTENCY_KEY_HOURS` (services/retention.py)."""

    __tablename__ = "idempotent_requests"
    __table_args__ = (Index("ix_idempotent_requests_created", "created_at"),)

    principal_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    route: Mapped[str] = mapped_column(Text, nullable=False)
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    status: Mapped[int | None] = mapped_column(Integer)
    body: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    location: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()


class QuizAttemptGrant(Base):
    """More attempts on a quiz for one student, granted by the course's instructor or an admin (migration 0037,
    `progress.grant_attempts`): the student's limit on the quiz as it is (`quiz_fingerprint`) is QUIZ_MAX_ATTEMPTS
    plus the grants on it; a rewrite starts the count again, grants included."""

    __tablename__ = "quiz_attempt_grants"
    __table_args__ = (
        CheckConstraint("extra between 1 and 20", name="ck_quiz_attempt_grants_extra"),
        Index("ix_quiz_attempt_grants_student_lesson", "student_id", "lesson_id"),
    )

    id: Mapped[uuid.UUID] = _pk()
    enrollment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("enrollments.id", ondelete="CASCADE"), nullable=False, index=True
    )
    student_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), nullable=False)
    lesson_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    quiz_fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    extra: Mapped[int] = mapped_column(Integer, nullable=False)
    reason: Mapped[str | None] = mapped_column(String(500))
    granted_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    granted_at: Mapped[datetime] = _created()
