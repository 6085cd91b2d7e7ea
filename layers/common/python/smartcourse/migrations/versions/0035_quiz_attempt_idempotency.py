"""A quiz submission may carry an Idempotency-Key (a mobile client retrying a submission whose answer it lost): the
attempt keeps the key and the result it answered, and the same key again answers that result instead of spending
another attempt (or being refused by the cool-down). One key per student: `uq_quiz_attempts_student_key`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0035"
down_revision: str | None = "0034"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("quiz_attempts", sa.Column("idempotency_key", sa.String(200), nullable=True))
    op.add_column("quiz_attempts", sa.Column("result", postgresql.JSONB(), nullable=True))
    op.create_index(
        "uq_quiz_attempts_student_key",
        "quiz_attempts",
        ["student_id", "idempotency_key"],
        unique=True,
        postgresql_where=sa.text("idempotency_key is not null"),
    )


def downgrade() -> None:
    op.drop_index("uq_quiz_attempts_student_key", table_name="quiz_attempts")
    op.drop_column("quiz_attempts", "result")
    op.drop_column("quiz_attempts", "idempotency_key")
