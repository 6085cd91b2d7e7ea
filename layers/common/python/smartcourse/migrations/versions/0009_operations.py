"""Operations (issue #8): task outcomes, workflow failures with their step and trace, dead letters' trace."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("workflow_runs", sa.Column("subject", sa.String(200), nullable=True))
    op.add_column("workflow_runs", sa.Column("failed_step", sa.String(100), nullable=True))
    op.add_column("workflow_runs", sa.Column("trace_id", sa.String(32), nullable=True))
    op.add_column("workflow_runs", sa.Column("failures", sa.Integer(), nullable=False, server_default=sa.text("0")))
    op.add_column("workflow_runs", sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_workflow_runs_subject", "workflow_runs", ["subject"])
    op.create_index("ix_workflow_runs_status_created", "workflow_runs", ["status", "created_at"])
    # Publishing runs recorded before this migration: their subject is their course.
    op.execute(
        "update workflow_runs set subject = 'course:' || course_id where subject is null and course_id is not null"
    )

    op.add_column("dead_letters", sa.Column("trace_id", sa.String(32), nullable=True))
    op.add_column("dead_letters", sa.Column("replay_outcome", sa.String(20), nullable=True))
    op.create_index("ix_dead_letters_created", "dead_letters", ["created_at"])

    op.create_table(
        "task_runs",
        sa.Column("task_id", sa.String(200), primary_key=True),
        sa.Column("task", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("args", JSONB(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("trace_id", sa.String(32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("status in ('succeeded','retrying','failed')", name="ck_task_runs_status"),
    )
    op.create_index("ix_task_runs_status_updated", "task_runs", ["status", "updated_at"])


def downgrade() -> None:
    op.drop_index("ix_task_runs_status_updated", table_name="task_runs")
    op.drop_table("task_runs")
    op.drop_index("ix_dead_letters_created", table_name="dead_letters")
    op.drop_column("dead_letters", "replay_outcome")
    op.drop_column("dead_letters", "trace_id")
    op.drop_index("ix_workflow_runs_status_created", table_name="workflow_runs")
    op.drop_index("ix_workflow_runs_subject", table_name="workflow_runs")
    for column in ("updated_at", "failures", "trace_id", "failed_step", "subject"):
        op.drop_column("workflow_runs", column)
