"""Notification kind `publish_canceled`: an instructor is told when an admin cancels their course's publish.

The instructor's own cancel tells nobody (it was their doing); an admin's is news to them, in-app and by e-mail.
The downgrade deletes notifications of the new kind, which the old constraint does not allow.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = (
    "kind in ('enrollment.welcome','waitlist.released','enrollment.removed','certificate.issued',"
    "'certificate.revoked','publish_failed','publish_warnings')"
)
KINDS = (
    "kind in ('enrollment.welcome','waitlist.released','enrollment.removed','certificate.issued',"
    "'certificate.revoked','publish_failed','publish_warnings','publish_canceled')"
)


def upgrade() -> None:
    op.drop_constraint("ck_notifications_kind", "notifications", type_="check")
    op.create_check_constraint("ck_notifications_kind", "notifications", KINDS)


def downgrade() -> None:
    op.execute("delete from notifications where kind = 'publish_canceled'")
    op.drop_constraint("ck_notifications_kind", "notifications", type_="check")
    op.create_check_constraint("ck_notifications_kind", "notifications", BEFORE)
