"""More attempts on a quiz for one student (explore77 F1: an employee who used up a compliance quiz's five attempts
could never complete it, and nobody could give them another): `quiz_attempt_grants`, one row per grant, counted on the
quiz as it is (its fingerprint); and the notification kind `quiz.attempts_granted` that tells the student. The
downgrade deletes notifications of that kind, which the old constraint does not allow.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0037"
down_revision: str | None = "0036"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = (
    "kind in ('enrollment.welcome','waitlist.released','enrollment.removed','certificate.issued',"
    "'certificate.revoked','publish_failed','publish_warnings','publish_canceled','waitlist.joined',"
    "'waitlist.passed_over','publish_completed')"
)
KINDS = (
    "kind in ('enrollment.welcome','waitlist.released','enrollment.removed','certificate.issued',"
    "'certificate.revoked','publish_failed','publish_warnings','publish_canceled','waitlist.joined',"
    "'waitlist.passed_over','publish_completed','quiz.attempts_granted')"
)


def upgrade() -> None:
    op.create_table(
        "quiz_attempt_grants",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "enrollment_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("enrollments.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("student_id", postgresql.UUID(as_uuid=True), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("lesson_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("quiz_fingerprint", sa.String(64), nullable=False),
        sa.Column("extra", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(500), nullable=True),
        sa.Column(
            "granted_by", postgresql.UUID(as_uuid=True), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.CheckConstraint("extra between 1 and 20", name="ck_quiz_attempt_grants_extra"),
    )
    op.create_index("ix_quiz_attempt_grants_enrollment_id", "quiz_attempt_grants", ["enrollment_id"])
    op.create_index("ix_quiz_attempt_grants_student_lesson", "quiz_attempt_grants", ["student_id", "lesson_id"])
    op.drop_constraint("ck_notifications_kind", "notifications", type_="check")
    op.create_check_constraint("ck_notifications_kind", "notifications", KINDS)


def downgrade() -> None:
    op.execute("delete from notifications where kind = 'quiz.attempts_granted'")
    op.drop_constraint("ck_notifications_kind", "notifications", type_="check")
    op.create_check_constraint("ck_notifications_kind", "notifications", BEFORE)
    op.drop_index("ix_quiz_attempt_grants_student_lesson", table_name="quiz_attempt_grants")
    op.drop_index("ix_quiz_attempt_grants_enrollment_id", table_name="quiz_attempt_grants")
    op.drop_table("quiz_attempt_grants")
