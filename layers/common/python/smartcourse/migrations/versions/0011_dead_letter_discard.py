"""Dead letters can be discarded: an admin acknowledges one that cannot (or should not) be replayed.

`dead_letters.discarded_at`, `discarded_by` (the admin) and `discard_reason`. Pending now means neither replayed nor
discarded (the dashboard, the worker's `dead_letters_pending` gauge, `GET /ops/dead-letters`).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("dead_letters", sa.Column("discarded_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("dead_letters", sa.Column("discarded_by", sa.UUID(), sa.ForeignKey("users.id"), nullable=True))
    op.add_column("dead_letters", sa.Column("discard_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("dead_letters", "discard_reason")
    op.drop_column("dead_letters", "discarded_by")
    op.drop_column("dead_letters", "discarded_at")
