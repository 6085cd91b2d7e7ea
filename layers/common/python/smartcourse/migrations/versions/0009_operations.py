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
    # The analytics consumer keeps new counters from now on (docs/analytics.md); start them from what the
    # tables already say, so a deployment that had history reconciles.
    op.execute(BACKFILL)


BACKFILL = """
insert into analytics_counters (metric, bucket, value)
select 'completions', (completed_at at time zone 'UTC')::date::text, count(*)
  from enrollments where status = 'completed' group by 2
union all
select 'timed_completions', (completed_at at time zone 'UTC')::date::text, count(*)
  from enrollments where status = 'completed' and activated_at is not null group by 2
union all
select 'completion_seconds', (completed_at at time zone 'UTC')::date::text,
       sum(extract(epoch from completed_at - activated_at))
  from enrollments where status = 'completed' and activated_at is not null group by 2
union all
select 'student_current_enrollments', student_id::text, count(*)
  from enrollments where admitted_at is not null and status in ('pending', 'active') group by 2
union all
select 'instructor_live_courses', instructor_id::text, count(*)
  from courses where content_version > 0 and status <> 'archived' group by 2
union all
select 'course_engagement', e.course_id::text, count(*)
  from lesson_progress p join enrollments e on e.id = p.enrollment_id where p.status = 'completed' group by 2
union all
select 'student_active_days', d || '|' || student_id, count(*) from (
  select (admitted_at at time zone 'UTC')::date::text as d, student_id::text as student_id
    from enrollments where admitted_at is not null
  union all
  select (completed_at at time zone 'UTC')::date::text, student_id::text from enrollments where completed_at is not null
  union all
  select (p.completed_at at time zone 'UTC')::date::text, e.student_id::text
    from lesson_progress p join enrollments e on e.id = p.enrollment_id
   where p.status = 'completed' and p.completed_at is not null
) activity group by 2
on conflict (metric, bucket) do nothing
"""


def downgrade() -> None:
    op.execute(
        "delete from analytics_counters where metric in ('completions', 'timed_completions', 'completion_seconds',"
        " 'student_current_enrollments', 'course_engagement', 'student_active_days', 'instructor_live_courses')"
    )
    op.drop_index("ix_task_runs_status_updated", table_name="task_runs")
    op.drop_table("task_runs")
    op.drop_index("ix_dead_letters_created", table_name="dead_letters")
    op.drop_column("dead_letters", "replay_outcome")
    op.drop_column("dead_letters", "trace_id")
    op.drop_index("ix_workflow_runs_status_created", table_name="workflow_runs")
    op.drop_index("ix_workflow_runs_subject", table_name="workflow_runs")
    for column in ("updated_at", "failures", "trace_id", "failed_step", "subject"):
        op.drop_column("workflow_runs", column)
