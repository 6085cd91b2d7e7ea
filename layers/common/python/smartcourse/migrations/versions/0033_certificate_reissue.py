"""A certificate re-issued under its holder's corrected name (explore67 F6: a misspelt name could only be withdrawn):
`certificates.reissued_at`, the last time its name was replaced; the public check shows it, so a verifier who saw
the certificate under another name knows why.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0033"
down_revision: str | None = "0032"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("certificates", sa.Column("reissued_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("certificates", "reissued_at")
