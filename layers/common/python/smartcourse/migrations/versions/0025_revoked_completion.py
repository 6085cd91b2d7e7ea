"""A completion whose certificate was revoked no longer holds the student's place (explore36 F3).

A student whose certificate an admin revoked (issued in error, misconduct) could never take the course again: the
completed enrollment held the one live place (`uq_enrollments_one_live`), so a new enrollment answered the old
completion, and a course requiring it could never be opened. `enrollments.completion_revoked_at` records the
revocation on the enrollment (set with the certificate's, in one transaction); the unique index leaves such a
completion out, so enrolling again starts attempt n+1, and the admission's prerequisite check reads the column.
Existing revocations are copied over. The downgrade refuses while a revoked completion has a newer attempt (the old
index could not hold both).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = "status <> 'dropped'"
AFTER = "status <> 'dropped' and completion_revoked_at is null"


def upgrade() -> None:
    op.add_column("enrollments", sa.Column("completion_revoked_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "update enrollments e set completion_revoked_at = c.revoked_at from certificates c "
        "where c.enrollment_id = e.id and c.revoked_at is not null and e.status = 'completed'"
    )
    op.create_check_constraint(
        "ck_enrollments_revoked_completion", "enrollments", "completion_revoked_at is null or status = 'completed'"
    )
    op.drop_index("uq_enrollments_one_live", table_name="enrollments", postgresql_where=sa.text(BEFORE))
    op.create_index(
        "uq_enrollments_one_live",
        "enrollments",
        ["student_id", "course_id"],
        unique=True,
        postgresql_where=sa.text(AFTER),
    )


def downgrade() -> None:
    op.drop_index("uq_enrollments_one_live", table_name="enrollments", postgresql_where=sa.text(AFTER))
    # Fails (unique violation) while a retake stands beside its revoked completion: nothing is deleted silently.
    op.create_index(
        "uq_enrollments_one_live",
        "enrollments",
        ["student_id", "course_id"],
        unique=True,
        postgresql_where=sa.text(BEFORE),
    )
    op.drop_constraint("ck_enrollments_revoked_completion", "enrollments", type_="check")
    op.drop_column("enrollments", "completion_revoked_at")
