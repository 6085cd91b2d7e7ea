"""Content index: index status, live index version, chunks and the publish report (issue: content + search)."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("courses", sa.Column("index_status", sa.String(20), nullable=False, server_default="none"))
    op.add_column("courses", sa.Column("index_version", sa.Integer(), nullable=False, server_default=sa.text("0")))
    op.add_column("courses", sa.Column("publish_report", postgresql.JSONB(), nullable=True))
    op.create_check_constraint(
        "ck_courses_index_status", "courses", "index_status in ('none','indexing','ready','failed')"
    )
    op.create_table(
        "content_chunks",
        sa.Column("chunk_id", sa.String(200), primary_key=True),
        sa.Column("course_id", postgresql.UUID(as_uuid=True), sa.ForeignKey("courses.id", ondelete="CASCADE")),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("source_type", sa.String(20), nullable=False),
        sa.Column("source_id", sa.String(200), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("location", sa.Text(), nullable=False, server_default=""),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.CheckConstraint("source_type in ('lesson','material')", name="ck_content_chunks_source_type"),
    )
    op.alter_column("content_chunks", "course_id", nullable=False)
    op.create_index("ix_content_chunks_course_version", "content_chunks", ["course_id", "version"])
    # Catalogue search: full text over every live chunk (GIN on the same expression the query uses).
    op.execute(
        "CREATE INDEX ix_content_chunks_fts ON content_chunks USING gin (to_tsvector('english', title || ' ' || text))"
    )
    op.execute(
        "CREATE INDEX ix_courses_fts ON courses USING gin (to_tsvector('english', "
        "title || ' ' || description || ' ' || category))"
    )
    op.add_column("workflow_runs", sa.Column("status", sa.String(20), nullable=False, server_default="running"))
    op.add_column("workflow_runs", sa.Column("error", sa.Text(), nullable=True))
    op.add_column("workflow_runs", sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "embedding_cache",
        sa.Column("model", sa.String(200), primary_key=True),
        sa.Column("content_hash", sa.String(64), primary_key=True),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    op.drop_table("embedding_cache")
    op.drop_column("workflow_runs", "finished_at")
    op.drop_column("workflow_runs", "error")
    op.drop_column("workflow_runs", "status")
    op.execute("DROP INDEX IF EXISTS ix_courses_fts")
    op.drop_table("content_chunks")
    op.drop_constraint("ck_courses_index_status", "courses")
    op.drop_column("courses", "publish_report")
    op.drop_column("courses", "index_version")
    op.drop_column("courses", "index_status")
