"""Launch day (issue #7): what the workflow dispatcher and backpressure need.

* `outbox.dispatched_at` and the partial index `ix_outbox_dispatch_queue`: the dispatcher's queue is the outbox
  rows of admissions (`enrollment.created` pending, `waitlist.promoted`) it has not handled yet.
* `enrollments.workflow_started_at` and the partial index `ix_enrollments_pending`: the admitted-not-active
  backlog and the dispatcher's work in flight (pending with a started workflow) are counted on pending rows only.

Rows from before this revision are marked handled: their workflows were started on the request path (or the
sweeper starts them), so the dispatcher does not start thousands of them at once after an upgrade.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: As models.OUTBOX_DISPATCH_QUEUE (a migration does not import the models: they change after it).
QUEUE = (
    "dispatched_at is null and (event_type = 'waitlist.promoted' "
    "or (event_type = 'enrollment.created' and (payload -> 'data' ->> 'status') = 'pending'))"
)


def upgrade() -> None:
    op.add_column("outbox", sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("enrollments", sa.Column("workflow_started_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(f"update outbox set dispatched_at = now() where {QUEUE}")
    op.execute("update enrollments set workflow_started_at = now() where status = 'pending'")
    op.create_index("ix_outbox_dispatch_queue", "outbox", ["occurred_at", "id"], postgresql_where=sa.text(QUEUE))
    op.create_index(
        "ix_enrollments_pending",
        "enrollments",
        ["admitted_at"],
        postgresql_where=sa.text("status = 'pending'"),
        postgresql_include=["workflow_started_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_enrollments_pending", table_name="enrollments")
    op.drop_index("ix_outbox_dispatch_queue", table_name="outbox")
    op.drop_column("enrollments", "workflow_started_at")
    op.drop_column("outbox", "dispatched_at")
