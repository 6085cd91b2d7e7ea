"""Certificates keep their course's instructor's name as it was at issue (explore62 F8).

The public check names who taught the course (explore59 F2), but it read the instructor's name now, which they edit
themselves: one rename changed every certificate they had issued. The name is kept with the certificate, as the
student's and the course's are; certificates issued before are given their instructor's name as it is today.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("certificates", sa.Column("instructor_name", sa.String(200), nullable=True))
    op.execute(
        "update certificates c set instructor_name = u.full_name from courses co join users u on u.id = "
        "co.instructor_id where co.id = c.course_id"
    )


def downgrade() -> None:
    op.drop_column("certificates", "instructor_name")
