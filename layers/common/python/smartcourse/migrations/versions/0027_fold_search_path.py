"""PostgreSQL can analyze the catalogue's tables again (explore57 F1).

`smartcourse_fold` (migration 0023) called `smartcourse_cjk_bigrams` by its bare name. Autovacuum's ANALYZE, which
evaluates the expressions of `ix_content_chunks_fts` and `ix_courses_fts`, runs with a search path holding only
`pg_catalog`, where that name is not found: every automatic analyze of `content_chunks` and `courses` failed ("function
smartcourse_cjk_bigrams(text) does not exist"), their statistics never existed, and the planner, taking each course's
version for one row, read every chunk instead of the full-text index (a catalogue search over 43,000 chunks took 29 s
and answered 503; 0.4 ms with statistics). `pg_restore` and `pg_dump` run with such a search path too. The call now
names the schema the function lives in: the same function, the same values, so the indexes stay as they are.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_cjk = importlib.import_module("smartcourse.migrations.versions.0023_catalog_cjk_bigrams")
CALL = "THEN smartcourse_cjk_bigrams($1)"


def upgrade() -> None:
    schema = op.get_bind().scalar(
        text(
            "select n.nspname from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
            "where p.proname = 'smartcourse_cjk_bigrams'"
        )
    )
    quoted = '"' + str(schema).replace('"', '""') + '"'
    assert CALL in _cjk.FOLD_FUNCTION
    op.execute(_cjk.FOLD_FUNCTION.replace(CALL, f"THEN {quoted}.smartcourse_cjk_bigrams($1)"))


def downgrade() -> None:
    op.execute(_cjk.FOLD_FUNCTION)
