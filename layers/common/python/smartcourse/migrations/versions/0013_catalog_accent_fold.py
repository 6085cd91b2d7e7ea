"""Catalogue search folds accents: `bechamel` finds `Béchamel`, and `béchamel` finds `Bechamel`.

PostgreSQL's `unaccent` would do it, but the embedded server (pgserver 16.2) ships no contrib extension, so the fold
is a plain SQL function every server has: `smartcourse_fold(text)`, immutable (so it can carry an index), built on
`translate()` (the Latin letters with diacritics of U+00C0-U+024F to their base letter, a few letters without a
decomposition such as ø, đ, ł by hand, combining marks U+0300-U+036F dropped) and `replace()` for ß, æ, œ.
The catalogue's two full-text indexes are rebuilt on the folded text: the queries use the same expressions.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Letters with diacritics and the letters they fold to, position by position.
FOLD_FROM = (
    "ÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖÙÚÛÜÝàáâãäåçèéêëìíîïñòóôõöùúûüýÿĀāĂăĄąĆ"
    "ćĈĉĊċČčĎďĒēĔĕĖėĘęĚěĜĝĞğĠġĢģĤĥĨĩĪīĬĭĮįİĴĵĶķĹĺĻļĽľŃńŅņŇňŌōŎŏŐő"
    "ŔŕŖŗŘřŚśŜŝŞşŠšŢţŤťŨũŪūŬŭŮůŰűŲųŴŵŶŷŸŹźŻżŽžƠơƯưǍǎǏǐǑǒǓǔǕǖǗǘǙǚǛ"
    "ǜǞǟǠǡǦǧǨǩǪǫǬǭǰǴǵǸǹǺǻȀȁȂȃȄȅȆȇȈȉȊȋȌȍȎȏȐȑȒȓȔȕȖȗȘșȚțȞȟȦȧȨȩȪȫȬȭȮȯ"
    "ȰȱȲȳøØđĐłŁıħĦ"
)
FOLD_TO = (
    "AAAAAACEEEEIIIINOOOOOUUUUYaaaaaaceeeeiiiinooooouuuuyyAaAaAaC"
    "cCcCcCcDdEeEeEeEeEeGgGgGgGgHhIiIiIiIiIJjKkLlLlLlNnNnNnOoOoOo"
    "RrRrRrSsSsSsSsTtTtUuUuUuUuUuUuWwYyYZzZzZzOoUuAaIiOoUuUuUuUuU"
    "uAaAaGgKkOoOojGgNnAaAaAaEeEeIiIiOoOoRrRrUuUuSsTtHhAaEeOoOoOo"
    "OoYyoOdDlLihH"
)
#: Combining marks (decomposed input): in `translate()`'s first list with no counterpart, so they are dropped.
MARKS = "".join(chr(c) for c in range(0x300, 0x370))

FOLD_FUNCTION = f"""
CREATE OR REPLACE FUNCTION smartcourse_fold(text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT replace(replace(replace(replace(replace(translate($1, '{FOLD_FROM}{MARKS}', '{FOLD_TO}'),
  'ß', 'ss'), 'æ', 'ae'), 'Æ', 'AE'), 'œ', 'oe'), 'Œ', 'OE') $$
"""


def upgrade() -> None:
    assert len(FOLD_FROM) == len(FOLD_TO)
    op.execute(FOLD_FUNCTION)
    op.execute("DROP INDEX IF EXISTS ix_content_chunks_fts")
    op.execute(
        "CREATE INDEX ix_content_chunks_fts ON content_chunks "
        "USING gin (to_tsvector('english', smartcourse_fold(title || ' ' || text)))"
    )
    op.execute("DROP INDEX IF EXISTS ix_courses_fts")
    op.execute(
        "CREATE INDEX ix_courses_fts ON courses USING gin (to_tsvector('english', "
        "smartcourse_fold(title || ' ' || description || ' ' || category)))"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_content_chunks_fts")
    op.execute(
        "CREATE INDEX ix_content_chunks_fts ON content_chunks USING gin (to_tsvector('english', title || ' ' || text))"
    )
    op.execute("DROP INDEX IF EXISTS ix_courses_fts")
    op.execute(
        "CREATE INDEX ix_courses_fts ON courses USING gin (to_tsvector('english', "
        "title || ' ' || description || ' ' || category))"
    )
    op.execute("DROP FUNCTION IF EXISTS smartcourse_fold(text)")
