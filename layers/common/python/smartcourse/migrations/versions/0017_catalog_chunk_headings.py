"""The catalogue finds a course by its materials' and lessons' section headings and by a material's name without its
extension (explore7 F5, F10).

A Markdown or HTML heading goes to a chunk's `location` ("Chlorophyll > Accessory pigments"), not its text, so the
catalogue could not find it; and PostgreSQL's parser takes `passwd.txt` for one file-name token, so `passwd` did not
find the material `passwd.txt`. The chunk document (`search.CHUNK_DOCUMENT`) is now the title, the title with its
dots, dashes and underscores as spaces, the heading path, then the text; its GIN index is rebuilt on it. **On a large
`content_chunks` table the rebuild blocks writes while it runs**; schedule the upgrade accordingly.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DOCUMENT = "title || ' ' || regexp_replace(title, '[._-]+', ' ', 'g') || ' ' || location || ' ' || text"


def upgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_content_chunks_fts")
    op.execute(
        "CREATE INDEX ix_content_chunks_fts ON content_chunks "
        f"USING gin (to_tsvector('english', smartcourse_fold({DOCUMENT})))"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_content_chunks_fts")
    op.execute(
        "CREATE INDEX ix_content_chunks_fts ON content_chunks "
        "USING gin (to_tsvector('english', smartcourse_fold(title || ' ' || text)))"
    )
