"""Whether an account's owner proved the address is theirs (explore82 F1: a sign-up was usable at once under any
address, a dean's included): `users.email_verified_at`, set by the link the sign-up e-mails (`POST
/auth/verify-email`), a password reset or an invitation taken up (the mailbox read), or an admin making the account or
giving it its address (vouched for). Accounts made before have none: with `EMAIL_VERIFICATION=required` their owners
confirm once (`POST /auth/verify-email/resend`).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0039"
down_revision: str | None = "0038"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("users", sa.Column("email_verified_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("users", "email_verified_at")
