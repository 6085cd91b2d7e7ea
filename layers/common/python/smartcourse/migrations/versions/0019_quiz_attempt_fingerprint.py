"""A quiz attempt records the quiz it answered (explore11 F2, F3, F7).

`quiz_attempts.quiz_fingerprint` hashes the questions (prompt, options, answer) and the pass score the attempt was
graded against. The attempt limit then counts the attempts on the quiz as it is now: a student out of attempts gets
new ones when the instructor rewrites the quiz, and no earlier way out existed. A review compares an attempt with the
questions it answered. Rows from before this migration keep a null fingerprint and count against the quiz as it is,
so the migration itself hands nobody new attempts. Adding a nullable column is a change of the catalogue only.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("quiz_attempts", sa.Column("quiz_fingerprint", sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.drop_column("quiz_attempts", "quiz_fingerprint")
