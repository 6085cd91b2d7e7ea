"""An account can be erased (explore67 F1): who erased it and when, and its certificates withdrawn from the check.

`users.erased_at` / `users.erased_by`: the account's personal data was erased (its address and name replaced, its
conversations and notifications deleted: `services/erasure.py`), by whom (itself or an admin) and when; the row
stays, so the enrollments, progress and quiz attempts the platform's figures count keep their student, who is
nobody any more. `certificates.withdrawn_at`: the certificate no longer names anyone and the public check answers
`withdrawn`, with nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("users", sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
    # No foreign key: its check would lock the erasing admin's row while the erased one is held (0032 says why).
    op.add_column("users", sa.Column("erased_by", postgresql.UUID(as_uuid=True), nullable=True))
    op.add_column("certificates", sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("certificates", "withdrawn_at")
    op.drop_column("users", "erased_by")
    op.drop_column("users", "erased_at")
