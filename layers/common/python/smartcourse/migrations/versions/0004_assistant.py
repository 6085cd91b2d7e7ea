"""The learning assistant: conversations and their messages, interactions, generated quizzes (issue #13)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UUID = postgresql.UUID(as_uuid=True)


def _now() -> sa.Column[Any]:
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def upgrade() -> None:
    op.create_table(
        "ai_conversations",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("user_id", UUID, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("course_id", UUID, sa.ForeignKey("courses.id", ondelete="CASCADE"), nullable=False),
        _now(),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_ai_conversations_user_course", "ai_conversations", ["user_id", "course_id"])
    op.create_index("ix_ai_conversations_updated_at", "ai_conversations", ["updated_at"])
    op.create_table(
        "ai_messages",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("conversation_id", UUID, sa.ForeignKey("ai_conversations.id", ondelete="CASCADE"), nullable=False),
        sa.Column("role", sa.String(10), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        _now(),
        sa.CheckConstraint("role in ('user','assistant')", name="ck_ai_messages_role"),
    )
    op.create_index("ix_ai_messages_conversation", "ai_messages", ["conversation_id", "id"])
    op.create_table(
        "ai_interactions",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("user_id", UUID, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("course_id", UUID, sa.ForeignKey("courses.id", ondelete="CASCADE"), nullable=True),
        sa.Column("conversation_id", UUID, nullable=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("reason", sa.String(50), nullable=True),
        sa.Column("streamed", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("first_token_ms", sa.Integer(), nullable=True),
        sa.Column("tokens_in", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("tokens_out", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("question", sa.Text(), nullable=True),
        _now(),
        sa.CheckConstraint("kind in ('ask','summary','objectives','quiz','explain')", name="ck_ai_interactions_kind"),
        sa.CheckConstraint(
            "outcome in ('answer','clarify','refuse','generated','error','cancelled')",
            name="ck_ai_interactions_outcome",
        ),
    )
    op.create_index("ix_ai_interactions_course", "ai_interactions", ["course_id", "created_at"])
    op.create_table(
        "ai_generated_quizzes",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("course_id", UUID, sa.ForeignKey("courses.id", ondelete="CASCADE"), nullable=False),
        sa.Column("lesson_id", UUID, nullable=True),
        sa.Column("created_by", UUID, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("questions", postgresql.JSONB(), nullable=False),
        sa.Column("saved_lesson_id", UUID, nullable=True),
        _now(),
    )


def downgrade() -> None:
    op.drop_table("ai_generated_quizzes")
    op.drop_index("ix_ai_interactions_course", table_name="ai_interactions")
    op.drop_table("ai_interactions")
    op.drop_index("ix_ai_messages_conversation", table_name="ai_messages")
    op.drop_table("ai_messages")
    op.drop_index("ix_ai_conversations_updated_at", table_name="ai_conversations")
    op.drop_index("ix_ai_conversations_user_course", table_name="ai_conversations")
    op.drop_table("ai_conversations")
