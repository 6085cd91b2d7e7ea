"""The catalogue finds a Chinese or Japanese word inside a sentence: `冰川学` finds `冰川学入门` (explore31 F2).

PostgreSQL's parser takes a run of CJK characters between punctuation for one word, so only a query equal to a whole
clause matched. Without a dictionary, search engines index and query such runs as overlapping character bigrams
(Lucene's CJKAnalyzer): `冰川学入门` → `冰川 川学 学入 入门`, and the query `冰川学` → `冰川 川学` (both must match,
as `websearch_to_tsquery` ANDs words). `smartcourse_cjk_bigrams(text)` does that (the same as the Python
`domain.text.cjk_bigrams`, which course search's Lance index uses; `tests/integration/test_cjk_bigrams_migration.py`
checks they agree), and `smartcourse_fold`, which every catalogue document and query goes through (migrations
0013, 0014), now applies it first, only to a text that has a CJK character: other text is folded exactly as before.
The catalogue's two full-text indexes are rebuilt on it (**on a large `content_chunks` table the rebuild blocks
writes while it runs**), so the courses already published are found at once: the documents are computed from the
rows, nothing is republished.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_fold = importlib.import_module("smartcourse.migrations.versions.0013_catalog_accent_fold")
_brackets = importlib.import_module("smartcourse.migrations.versions.0014_catalog_fold_angle_brackets")

#: A copy of `domain.text.CJK_CHARACTERS` as of this migration (PostgreSQL's regular expressions read the same
#: `\uXXXX` / `\UXXXXXXXX` escapes as Python's).
CJK = (
    r"\u3005-\u3007\u3041-\u3096\u309d-\u309f\u30a1-\u30fa\u30fc-\u30ff"
    r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
)

#: Each run of CJK characters → a space, its bigrams (a lone character: itself) separated by spaces, a space; the
#: rest of the text as it is.
BIGRAMS_FUNCTION = f"""
CREATE OR REPLACE FUNCTION smartcourse_cjk_bigrams(text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
SELECT coalesce(string_agg(
    CASE WHEN part.m[1] ~ '^[{CJK}]' THEN
        ' ' || CASE WHEN length(part.m[1]) = 1 THEN part.m[1] ELSE (
            SELECT string_agg(substr(part.m[1], i, 2), ' ' ORDER BY i)
            FROM generate_series(1, length(part.m[1]) - 1) AS i
        ) END || ' '
    ELSE part.m[1] END, '' ORDER BY part.n), '')
FROM regexp_matches($1, '[{CJK}]+|[^{CJK}]+', 'g') WITH ORDINALITY AS part(m, n)
$$
"""

#: `smartcourse_fold` of migration 0014 over the text with its CJK runs as bigrams; a text without a CJK character
#: (the test is all it costs) is not passed to `smartcourse_cjk_bigrams`. Still one SQL expression.
FOLD_FUNCTION = f"""
CREATE OR REPLACE FUNCTION smartcourse_fold(text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT replace(replace(replace(replace(replace(translate(
  CASE WHEN $1 ~ '[{CJK}]' THEN smartcourse_cjk_bigrams($1) ELSE $1 END,
  '{_fold.FOLD_FROM}{_brackets.BRACKETS}{_fold.MARKS}', '{_fold.FOLD_TO}{" " * len(_brackets.BRACKETS)}'),
  'ß', 'ss'), 'æ', 'ae'), 'Æ', 'AE'), 'œ', 'oe'), 'Œ', 'OE') $$
"""


def _reindex() -> None:
    op.execute("REINDEX INDEX ix_content_chunks_fts")
    op.execute("REINDEX INDEX ix_courses_fts")


def upgrade() -> None:
    op.execute(BIGRAMS_FUNCTION)
    op.execute(FOLD_FUNCTION)
    _reindex()


def downgrade() -> None:
    op.execute(_brackets.fold_function(_brackets.BRACKETS, " " * len(_brackets.BRACKETS)))
    _reindex()
    op.execute("DROP FUNCTION IF EXISTS smartcourse_cjk_bigrams(text)")
