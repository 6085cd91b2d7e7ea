"""Tracing (issue #8): the trace context stored with each outbox event.

`outbox.trace_context` (JSONB: the W3C `traceparent`/`tracestate` of the request or task that emitted the event)
was created with the table in 0001 but never written; from this revision on `UnitOfWork.emit` fills it and the
relay (and the enrollment dispatcher) continue that trace. This revision makes sure the column exists on
databases whose outbox was created by hand or by an older schema, and documents what it holds.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE outbox ADD COLUMN IF NOT EXISTS trace_context JSONB")
    op.execute(
        "COMMENT ON COLUMN outbox.trace_context IS "
        "'W3C trace context (traceparent, tracestate) of the request or task that emitted the event'"
    )


def downgrade() -> None:
    # The column belongs to 0001's table: only the comment is this revision's.
    op.execute("COMMENT ON COLUMN outbox.trace_context IS NULL")
