"""What admins do to accounts, recorded (explore67 F5): `account_changes`, one row per change an admin makes to an
account (made, renamed, disabled or enabled, its role or address changed, its password reset, erased), with who made
it and when. Read by admins at `GET /users/{id}/changes`; kept (it is the record a data-protection officer asks for).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0032"
down_revision: str | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "account_changes",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column(
            "user_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("users.id", name="fk_account_changes_user"),
            nullable=False,
        ),
        # No foreign key: its check would take a share lock on the acting admin's row, and two admins changing each
        # other's accounts at once (each holding the other's row) deadlocked (test_trust_auth.py).
        sa.Column("actor_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("change", postgresql.JSONB(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
    )
    op.create_index("ix_account_changes_user_at", "account_changes", ["user_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_account_changes_user_at", table_name="account_changes")
    op.drop_table("account_changes")
