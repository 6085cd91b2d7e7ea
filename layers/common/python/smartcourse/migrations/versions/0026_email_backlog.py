"""E-mails waiting to go out, counted cheaply (explore55 F13).

Nothing showed how many e-mails were waiting, or for how long, during an SMTP outage: `/metrics` now reads them every
few seconds (`smartcourse_email_backlog`, its oldest's age), and the notification sweeper reads them every minute.
Both read the pending rows only, on this partial index, not the whole `notifications` table (every notice ever sent).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = "email_status = 'pending'"


def upgrade() -> None:
    op.create_index(
        "ix_notifications_email_pending",
        "notifications",
        ["created_at"],
        postgresql_where=sa.text(PENDING),
        postgresql_include=["email_attempts"],
    )


def downgrade() -> None:
    op.drop_index("ix_notifications_email_pending", table_name="notifications", postgresql_where=sa.text(PENDING))
