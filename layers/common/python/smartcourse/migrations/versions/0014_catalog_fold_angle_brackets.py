"""Catalogue search finds a word written in angle brackets: `biology` finds "Marine & <Biology> Basics".

PostgreSQL's text parser takes `<Biology>` for an HTML tag and leaves it out of the document, so the catalogue could
not find the word at all (titles such as "Learn <canvas>" or "C++ <templates>"). `smartcourse_fold`, which every
catalogue document and query goes through (migration 0013), now also turns `<` and `>` into spaces; the two
full-text indexes built on it are rebuilt, since an immutable function's new results are not in the old entries.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_fold = importlib.import_module("smartcourse.migrations.versions.0013_catalog_accent_fold")

#: Before the combining marks, which `translate()` drops for having no counterpart: these two have one, a space.
BRACKETS = "<>"


def fold_function(extra_from: str, extra_to: str) -> str:
    assert len(extra_from) == len(extra_to)
    return f"""
CREATE OR REPLACE FUNCTION smartcourse_fold(text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT replace(replace(replace(replace(replace(translate($1,
  '{_fold.FOLD_FROM}{extra_from}{_fold.MARKS}', '{_fold.FOLD_TO}{extra_to}'),
  'ß', 'ss'), 'æ', 'ae'), 'Æ', 'AE'), 'œ', 'oe'), 'Œ', 'OE') $$
"""


def _reindex() -> None:
    op.execute("REINDEX INDEX ix_content_chunks_fts")
    op.execute("REINDEX INDEX ix_courses_fts")


def upgrade() -> None:
    op.execute(fold_function(BRACKETS, " " * len(BRACKETS)))
    _reindex()


def downgrade() -> None:
    op.execute(_fold.FOLD_FUNCTION)
    _reindex()
