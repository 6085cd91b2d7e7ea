"""A notification's title and an enrollment history entry's reason hold 500 characters (explore9).

A course title may have 200 characters, and a notification's title is built around it ("Your certificate for ...",
"You were removed from ..."): a title past 167 characters made revoking a certificate, removing a student, archiving
a course with a waitlist, issuing a certificate and (past 189) every enrollment's welcome fail, the last one retried
by its workflow for ever. A drop's `reason` takes 500 characters, as the API says. Widening a `varchar` is a change of
the catalogue only in PostgreSQL: no table rewrite.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.alter_column("notifications", "title", type_=sa.String(length=500), existing_nullable=False)
    op.alter_column("enrollment_history", "reason", type_=sa.String(length=500), existing_nullable=True)


def downgrade() -> None:
    op.execute("UPDATE notifications SET title = left(title, 200) WHERE length(title) > 200")
    op.execute("UPDATE enrollment_history SET reason = left(reason, 200) WHERE length(reason) > 200")
    op.alter_column("notifications", "title", type_=sa.String(length=200), existing_nullable=False)
    op.alter_column("enrollment_history", "reason", type_=sa.String(length=200), existing_nullable=True)
