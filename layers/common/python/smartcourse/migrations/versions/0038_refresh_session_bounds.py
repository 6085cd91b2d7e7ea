"""Bounds on a login's refresh tokens (explore82 F2: ten replays of a spent token within the retry's grace made ten
sessions that outlived it and never ended): `retried_at`, the grace retry a spent token had (one only: a second use is
theft), and `session_started_at`, when the login began, which no rotation moves (`SESSION_MAX_DAYS`). Tokens issued
before have no start: their own `created_at` stands for it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0038"
down_revision: str | None = "0037"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("refresh_tokens", sa.Column("retried_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("refresh_tokens", sa.Column("session_started_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("refresh_tokens", "session_started_at")
    op.drop_column("refresh_tokens", "retried_at")
