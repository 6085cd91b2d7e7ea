"""A course's certificates, newest first: `GET /courses/{id}/certificates` reads them by this index.

Certificates had indexes by student (`student_id`), enrollment and code only; listing one course's meant reading
them all.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_certificates_course_issued", "certificates", ["course_id", "issued_at"])


def downgrade() -> None:
    op.drop_index("ix_certificates_course_issued", table_name="certificates")
