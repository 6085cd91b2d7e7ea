"""The catalogue's full-text match, as the app builds it, can use the GIN expression indexes of migration 0013.

An index on an expression serves a query only if the query's expression is the same one; a bound parameter where
the index has a constant (`title || $1 || text` against `title || ' ' || text`) does not match it in a generic
plan, which PostgreSQL may pick for a prepared statement after five executions. So the plans are taken with
`plan_cache_mode = force_generic_plan`, and with sequential scans off (the test tables are small)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, text

from smartcourse.models import ContentChunk, Course
from smartcourse.services import search


async def _plan(container: Any, stmt: Any) -> str:
    """The generic plan of `stmt` as the app sends it (its literals bound as parameters)."""
    async with container.engine.connect() as conn:
        compiled = stmt.compile(conn.sync_connection)
        args = ", ".join(f"'{v}'" for v in compiled.params.values())  # test constants, no quote in them
        await conn.execute(text("set enable_seqscan = off"))
        await conn.execute(text("set plan_cache_mode = force_generic_plan"))
        await conn.exec_driver_sql(f"PREPARE catalog_match AS {compiled}")
        try:
            rows = await conn.exec_driver_sql(f"EXPLAIN EXECUTE catalog_match({args})")
            plan = "\n".join(r[0] for r in rows)
        finally:
            await conn.exec_driver_sql("DEALLOCATE catalog_match")
            await conn.rollback()
        return plan


async def test_the_catalogue_match_uses_the_fts_indexes(container: Any) -> None:
    tsq = search._tsquery("kafka streams")
    chunks = select(ContentChunk.chunk_id).where(search._tsvector(search.CHUNK_DOCUMENT).op("@@")(tsq))
    courses = select(Course.id).where(search._tsvector(search.COURSE_DOCUMENT).op("@@")(tsq))
    assert "ix_content_chunks_fts" in await _plan(container, chunks)
    assert "ix_courses_fts" in await _plan(container, courses)


async def test_the_catalogue_tables_can_be_analyzed_with_the_search_path_autovacuum_has(container: Any) -> None:
    """explore57 F1: `smartcourse_fold` named `smartcourse_cjk_bigrams` without its schema, so every automatic ANALYZE
    of the tables its indexes cover failed (autovacuum's search path holds `pg_catalog` only): no statistics, and the
    catalogue search read every chunk (29 s over 43,000 chunks) instead of its full-text index."""
    async with container.engine.connect() as conn:
        await conn.execute(text("set search_path = pg_catalog"))
        await conn.execute(text("analyze public.content_chunks, public.courses"))
        await conn.rollback()
