"""Notification kind `publish_completed`: an instructor hears that a publish went live (explore57 F6).

Only a failure, a live version with unreadable files and an admin's cancel were told: a clean publish, which can take
minutes on a large course, was learnt only by polling its workflow. The downgrade deletes notifications of the new
kind, which the old constraint does not allow.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from alembic import op

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = importlib.import_module("smartcourse.migrations.versions.0024_waitlist_notifications").KINDS
KINDS = BEFORE.removesuffix(")") + ",'publish_completed')"


def upgrade() -> None:
    op.drop_constraint("ck_notifications_kind", "notifications", type_="check")
    op.create_check_constraint("ck_notifications_kind", "notifications", KINDS)


def downgrade() -> None:
    op.execute("delete from notifications where kind = 'publish_completed'")
    op.drop_constraint("ck_notifications_kind", "notifications", type_="check")
    op.create_check_constraint("ck_notifications_kind", "notifications", BEFORE)
