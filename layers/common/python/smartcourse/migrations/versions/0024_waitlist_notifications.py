"""Notification kinds `waitlist.joined` and `waitlist.passed_over`.

A student who joins a full course's waitlist is told their place (explore36 F4: nothing said it but the 202); one
passed over at a promotion for lacking a prerequisite is told why the seat went on (explore36 F1). The downgrade
deletes notifications of the new kinds, which the old constraint does not allow.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = (
    "kind in ('enrollment.welcome','waitlist.released','enrollment.removed','certificate.issued',"
    "'certificate.revoked','publish_failed','publish_warnings','publish_canceled')"
)
KINDS = (
    "kind in ('enrollment.welcome','waitlist.released','enrollment.removed','certificate.issued',"
    "'certificate.revoked','publish_failed','publish_warnings','publish_canceled','waitlist.joined',"
    "'waitlist.passed_over')"
)


def upgrade() -> None:
    op.drop_constraint("ck_notifications_kind", "notifications", type_="check")
    op.create_check_constraint("ck_notifications_kind", "notifications", KINDS)


def downgrade() -> None:
    op.execute("delete from notifications where kind in ('waitlist.joined', 'waitlist.passed_over')")
    op.drop_constraint("ck_notifications_kind", "notifications", type_="check")
    op.create_check_constraint("ck_notifications_kind", "notifications", BEFORE)
