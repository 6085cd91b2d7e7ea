"""The catalogue folds the marks of every script, not only Latin accents (explore65 F1, F3, F4).

`smartcourse_fold` dropped the combining marks U+0300-U+036F and mapped the precomposed Latin letters of
U+00C0-U+024F: Arabic typed as it usually is, without its short vowels (`الفلك` for `الفَلَك`), found nothing; nor did
Hebrew without its points, Vietnamese (`pho` for `Phở`: U+1EDF is Latin Extended Additional), Greek without its
accents, Cyrillic ie for io (U+0435 for U+0451), or a course written in decomposed form (NFD) searched in composed
form (NFC); all-caps Greek (`ΣΩΚΡΆΤΗΣ`, lower-cased to a medial sigma at the end) missed the final sigma of
`Σωκράτης`. Now the text is decomposed (NFD) first, so every precomposed letter is its base letter and its marks; the
marks of Latin, Greek and Cyrillic (U+0300-U+036F, U+0483-U+0489), Hebrew points and cantillation, Arabic short
vowels, its other marks and the tatweel are dropped; the final sigma is the sigma; and what is left is composed again
(NFC: Korean syllables, which NFD takes apart, are themselves again). Indic vowel signs are letters of their words and
are kept. The same function with more folded: the catalogue's two full-text indexes are rebuilt on it (**on a large
`content_chunks` table the rebuild blocks writes while it runs**), so the courses already published are found at once.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_fold = importlib.import_module("smartcourse.migrations.versions.0013_catalog_accent_fold")
_brackets = importlib.import_module("smartcourse.migrations.versions.0014_catalog_fold_angle_brackets")
_cjk = importlib.import_module("smartcourse.migrations.versions.0023_catalog_cjk_bigrams")
_qualified = importlib.import_module("smartcourse.migrations.versions.0027_fold_search_path")


def _ranges(*spans: tuple[int, int]) -> str:
    return "".join(chr(c) for start, end in spans for c in range(start, end + 1))


#: Marks dropped beside 0013's U+0300-U+036F: Cyrillic combining marks; Hebrew points and cantillation (not its
#: letters, maqaf, paseq or sof pasuq); Arabic marks, short vowels (harakat), superscript alef, Quranic marks and
#: the tatweel (a stretch of the line, not a letter).
MORE_MARKS = _ranges(
    (0x0483, 0x0489),
    (0x0591, 0x05BD),
    (0x05BF, 0x05BF),
    (0x05C1, 0x05C2),
    (0x05C4, 0x05C5),
    (0x05C7, 0x05C7),
    (0x0610, 0x061A),
    (0x0640, 0x0640),
    (0x064B, 0x065F),
    (0x0670, 0x0670),
    (0x06D6, 0x06DC),
    (0x06DF, 0x06E4),
    (0x06E7, 0x06E8),
    (0x06EA, 0x06ED),
)


def fold_function(bigrams: str) -> str:
    """0023's `smartcourse_fold` over the text in NFD, the final sigma and `MORE_MARKS` in `translate()`'s lists,
    composed again at the end; `bigrams`: how it calls `smartcourse_cjk_bigrams` (schema-qualified: 0027)."""
    mapped_from = f"{_fold.FOLD_FROM}{_brackets.BRACKETS}\u03c2"  # the final sigma ...
    mapped_to = f"{_fold.FOLD_TO}{' ' * len(_brackets.BRACKETS)}\u03c3"  # ... is the sigma
    assert len(mapped_from) == len(mapped_to)
    return f"""
CREATE OR REPLACE FUNCTION smartcourse_fold(text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT normalize(replace(replace(replace(replace(replace(translate(
  normalize(CASE WHEN $1 ~ '[{_cjk.CJK}]' THEN {bigrams}($1) ELSE $1 END, NFD),
  '{mapped_from}{_fold.MARKS}{MORE_MARKS}', '{mapped_to}'),
  'ß', 'ss'), 'æ', 'ae'), 'Æ', 'AE'), 'œ', 'oe'), 'Œ', 'OE'), NFC) $$
"""


def _schema() -> str:
    schema = op.get_bind().scalar(
        text(
            "select n.nspname from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
            "where p.proname = 'smartcourse_cjk_bigrams'"
        )
    )
    return '"' + str(schema).replace('"', '""') + '"'


def _reindex() -> None:
    op.execute("REINDEX INDEX ix_content_chunks_fts")
    op.execute("REINDEX INDEX ix_courses_fts")


def upgrade() -> None:
    op.execute(fold_function(f"{_schema()}.smartcourse_cjk_bigrams"))
    _reindex()


def downgrade() -> None:
    call = _qualified.CALL
    op.execute(_cjk.FOLD_FUNCTION.replace(call, f"THEN {_schema()}.smartcourse_cjk_bigrams($1)"))
    _reindex()
