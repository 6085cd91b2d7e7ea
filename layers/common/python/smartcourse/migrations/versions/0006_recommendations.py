"""Recommendations (issue #10): course embeddings, content neighbours, co-enrollment pairs, popularity."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "course_embeddings",
        sa.Column("course_id", UUID(as_uuid=True), sa.ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("model", sa.String(200), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "course_neighbours",
        sa.Column("course_id", UUID(as_uuid=True), sa.ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True),
        sa.Column(
            "neighbour_id", UUID(as_uuid=True), sa.ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("similarity", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "course_pairs",
        sa.Column("course_id", UUID(as_uuid=True), sa.ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("other_id", UUID(as_uuid=True), sa.ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("co_admitted", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("co_completed", sa.Integer(), nullable=False, server_default=sa.text("0")),
    )
    op.create_table(
        "course_popularity",
        sa.Column("course_id", UUID(as_uuid=True), sa.ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("admissions", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("completions", sa.Integer(), nullable=False, server_default=sa.text("0")),
    )
    op.create_index("ix_course_popularity_admissions", "course_popularity", [sa.text("admissions DESC")])
    op.create_index("ix_course_prerequisites_prerequisite", "course_prerequisites", ["prerequisite_id"])


def downgrade() -> None:
    op.drop_index("ix_course_prerequisites_prerequisite", table_name="course_prerequisites")
    op.drop_index("ix_course_popularity_admissions", table_name="course_popularity")
    for table in ("course_popularity", "course_pairs", "course_neighbours", "course_embeddings"):
        op.drop_table(table)
