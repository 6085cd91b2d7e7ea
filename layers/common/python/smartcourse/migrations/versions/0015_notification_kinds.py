"""A notification's `kind` is one the API declares (`schemas.NotificationKind`): a CHECK constraint, as the other
vocabularies have.

The feed answers `kind` as an enum of the OpenAPI schema; a row of another kind would make the feed fail. Every kind
the code has ever written is in the list, so existing rows pass the check; `enrollment.removed` (a student removed by
an admin), `certificate.revoked` and `publish_warnings` (a course live without some of its files) are new with it.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = (
    "kind in ('enrollment.welcome','waitlist.released','enrollment.removed','certificate.issued',"
    "'certificate.revoked','publish_failed','publish_warnings')"
)


def upgrade() -> None:
    op.create_check_constraint("ck_notifications_kind", "notifications", KINDS)


def downgrade() -> None:
    op.drop_constraint("ck_notifications_kind", "notifications", type_="check")
