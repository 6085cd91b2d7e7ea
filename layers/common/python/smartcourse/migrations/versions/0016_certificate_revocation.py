"""A certificate can be revoked by an admin (issued by mistake, misconduct): when, by whom and why. The public check
then answers `status: revoked` instead of `valid`, so a verifier tells a revoked certificate from a forged code."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("certificates", sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("certificates", sa.Column("revoked_reason", sa.String(length=500), nullable=True))
    op.add_column(
        "certificates",
        sa.Column("revoked_by", sa.UUID(), sa.ForeignKey("users.id", name="fk_certificates_revoked_by"), nullable=True),
    )
    op.create_check_constraint(
        "ck_certificates_revocation_whole",
        "certificates",
        "(revoked_at is null) = (revoked_reason is null)",
    )


def downgrade() -> None:
    op.drop_constraint("ck_certificates_revocation_whole", "certificates", type_="check")
    op.drop_column("certificates", "revoked_by")
    op.drop_column("certificates", "revoked_reason")
    op.drop_column("certificates", "revoked_at")
