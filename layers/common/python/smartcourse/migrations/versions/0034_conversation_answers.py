"""An answer in a conversation keeps what `done` said of it (explore72 F7: a chat reopened on another device showed
"[1]" "[2]" markers it could not resolve): `ai_messages.answer_type`, `citations` (as given, JSON) and
`interaction_id` (no foreign key: the interaction's row is the usage record, read on its own). Null for questions and
for answers written before.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0034"
down_revision: str | None = "0033"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("ai_messages", sa.Column("answer_type", sa.String(10), nullable=True))
    op.add_column("ai_messages", sa.Column("citations", postgresql.JSONB(), nullable=True))
    op.add_column("ai_messages", sa.Column("interaction_id", postgresql.UUID(as_uuid=True), nullable=True))


def downgrade() -> None:
    op.drop_column("ai_messages", "interaction_id")
    op.drop_column("ai_messages", "citations")
    op.drop_column("ai_messages", "answer_type")
