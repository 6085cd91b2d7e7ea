"""Migrations 0013-0014: `smartcourse_fold` folds accents and angle brackets, the catalogue's full-text indexes use
it, and back on downgrade."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import command
from sqlalchemy import text

from smartcourse.migrations import alembic_config
from tests.conftest import scratch_database


async def test_fold_function_and_indexes_up_and_down(settings: Any) -> None:
    async with scratch_database(settings, "fold_migration") as (url, engine):

        async def indexes() -> dict[str, str]:
            async with engine.connect() as conn:
                rows = await conn.execute(
                    text(
                        "select indexname, indexdef from pg_indexes "
                        "where indexname in ('ix_courses_fts', 'ix_content_chunks_fts')"
                    )
                )
                return {r[0]: r[1] for r in rows}

        await asyncio.to_thread(command.upgrade, alembic_config(url), "head")
        async with engine.connect() as conn:
            folded = await conn.scalar(
                text("select smartcourse_fold('Béchamel CRÈME brûlée Smørrebrød Straße Æsop cœur e\u0301')")
            )
        assert folded == "Bechamel CREME brulee Smorrebrod Strasse AEsop coeur e"
        async with engine.connect() as conn:  # 0014: a word in angle brackets is a word, not a tag the parser drops
            assert await conn.scalar(text("select smartcourse_fold('Marine & <Biology> Basics')")) == (
                "Marine &  Biology  Basics"
            )
            assert await conn.scalar(
                text("select to_tsvector('english', smartcourse_fold('<Biology>')) @@ to_tsquery('english', 'biology')")
            )
        assert all("smartcourse_fold" in d for d in (await indexes()).values()) and len(await indexes()) == 2
        async with engine.connect() as conn:  # the catalogue's expression is the index's: it can be used
            await conn.execute(text("set enable_seqscan = off"))
            document = (  # 0017: the title's words and the heading path too
                "title || ' ' || regexp_replace(title, '[._-]+', ' ', 'g') || ' ' || location || ' ' || text"
            )
            plan = await conn.execute(
                text(
                    f"explain select chunk_id from content_chunks where to_tsvector('english', "
                    f"smartcourse_fold({document})) @@ websearch_to_tsquery('english', smartcourse_fold('x'))"
                )
            )
            assert "ix_content_chunks_fts" in " ".join(r[0] for r in plan)
        await asyncio.to_thread(command.downgrade, alembic_config(url), "0012")
        assert not any("smartcourse_fold" in d for d in (await indexes()).values()) and len(await indexes()) == 2
        async with engine.connect() as conn:
            assert await conn.scalar(text("select count(*) from pg_proc where proname = 'smartcourse_fold'")) == 0
        await asyncio.to_thread(command.upgrade, alembic_config(url), "head")
        assert all("smartcourse_fold" in d for d in (await indexes()).values())


async def test_the_fold_takes_the_marks_of_every_script(settings: Any) -> None:
    """explore65 F1, F3, F4 (migration 0030): Arabic without its short vowels, Hebrew without its points, Vietnamese,
    Greek without accents, Cyrillic ie for io, a course in NFD searched in NFC, and all-caps Greek against a final
    sigma found nothing in the catalogue. Korean stays as it is (NFD takes its syllables apart; NFC joins them)."""
    async with scratch_database(settings, "fold_marks") as (url, engine):
        await asyncio.to_thread(command.upgrade, alembic_config(url), "head")
        pairs = [
            ("مقدّمة في علم الفَلَك", "مقدمة في علم الفلك"),
            ("בְּרֵאשִׁית", "בראשית"),
            ("Phở Hà Nội", "Pho Ha Noi"),
            ("đồng bằng", "dong bang"),
            ("Σωκράτης", "ΣΩΚΡΑΤΗΣ"),
            ("ёлка", "елка"),
            ("đồng bằng".encode().decode(), __import__("unicodedata").normalize("NFD", "đồng bằng")),
            ("한국어 강좌", "한국어 강좌"),
            ("क्रिकेट", "क्रिकेट"),
        ]
        async with engine.connect() as conn:
            for document, query in pairs:
                matched = await conn.scalar(
                    text(
                        "select to_tsvector('english', smartcourse_fold(:d)) @@ "
                        "websearch_to_tsquery('english', smartcourse_fold(:q))"
                    ),
                    {"d": document, "q": query},
                )
                assert matched, (document, query)
            assert await conn.scalar(text("select smartcourse_fold('한국어')")) == "한국어"
            assert await conn.scalar(text("select smartcourse_fold('Béchamel Straße <b>')")) == "Bechamel Strasse  b "
        await asyncio.to_thread(command.downgrade, alembic_config(url), "0029")
        async with engine.connect() as conn:
            assert await conn.scalar(text("select smartcourse_fold('الفَلَك')")) == "الفَلَك"  # as before
        await asyncio.to_thread(command.upgrade, alembic_config(url), "head")
