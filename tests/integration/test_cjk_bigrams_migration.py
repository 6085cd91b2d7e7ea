"""Migration 0023: the catalogue's `smartcourse_fold` turns Chinese and Japanese runs into character bigrams, as the
Python `domain.text.cjk_bigrams` does for course search; rows written before it are found once it has run, Latin
text folds as before, and the downgrade restores 0014's fold (explore31 F2)."""

from __future__ import annotations

import asyncio
import importlib
import uuid
from typing import Any

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from smartcourse.domain.text import CJK_CHARACTERS, cjk_bigrams
from smartcourse.migrations import alembic_config
from tests.conftest import scratch_database

SAMPLES = [
    "冰碛是冰川搬运和堆积的岩石碎屑。",
    "冰川学入门",
    "冰",
    "",
    "DNA是遗传物质, RNA 也是。",
    "カタカナ・テスト、ひらがなと漢字々",
    "𠀀𠀁x 〇ー",
    "a冰b川c",
    "한국어 빙하는",  # Korean: words are spaced, left as they are
    "Béchamel CRÈME <Biology> straße",
]
#: The catalogue's chunk document and query, as `services/search.py` builds them.
_MATCH = (
    "select title from content_chunks where to_tsvector('english', smartcourse_fold(title || ' ' || "
    "regexp_replace(title, '[._-]+', ' ', 'g') || ' ' || location || ' ' || text)) "
    "@@ websearch_to_tsquery('english', smartcourse_fold(:q)) order by title"
)


async def _found(engine: AsyncEngine, q: str) -> list[str]:
    async with engine.connect() as conn:
        return list((await conn.execute(text(_MATCH), {"q": q})).scalars().all())


async def _fold(engine: AsyncEngine, value: str) -> str:
    async with engine.connect() as conn:
        return str(await conn.scalar(text("select smartcourse_fold(:v)"), {"v": value}))


async def test_cjk_runs_become_bigrams_and_back_on_downgrade(settings: Any) -> None:
    migration = importlib.import_module("smartcourse.migrations.versions.0023_catalog_cjk_bigrams")
    assert migration.CJK == CJK_CHARACTERS  # the copy is the code's (change both, in a new migration)
    async with scratch_database(settings, "cjk_bigrams", revision="0022") as (url, engine):
        user, course = uuid.uuid4(), uuid.uuid4()
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "insert into users (id, email, password_hash, full_name, role) "
                    "values (:id, 'i@example.com', 'x', 'I', 'instructor')"
                ),
                {"id": user},
            )
            await conn.execute(
                text(
                    "insert into courses "
                    "(id, instructor_id, title, description, category, tags, status, waitlist_enabled) "
                    "values (:id, :user, '冰川学入门', '', 'science', '{}', 'draft', false)"
                ),
                {"id": course, "user": user},
            )
            for n, (title, body) in enumerate((("冰川地貌", "冰碛是冰川搬运和堆积的岩石碎屑。"), ("Ice", "Moraines."))):
                await conn.execute(
                    text(
                        "insert into content_chunks (chunk_id, course_id, version, source_type, source_id, title, "
                        "location, text, content_hash, ordinal) "
                        "values (:id, :course, 1, 'lesson', :id, :title, '', :body, 'h', 0)"
                    ),
                    {"id": f"c{n}", "course": course, "title": title, "body": body},
                )
        latin = {s: await _fold(engine, s) for s in SAMPLES if cjk_bigrams(s) == s}  # no CJK in them
        assert await _found(engine, "冰碛") == []  # 0022: one word per run of Han characters

        await asyncio.to_thread(command.upgrade, alembic_config(url), "0023")
        async with engine.connect() as conn:
            for sample in SAMPLES:  # SQL and Python agree, character for character
                got = await conn.scalar(text("select smartcourse_cjk_bigrams(:v)"), {"v": sample})
                assert got == cjk_bigrams(sample), sample
        for sample, before in latin.items():  # text without CJK folds exactly as before
            assert await _fold(engine, sample) == before, sample
        assert await _fold(engine, "Béchamel <b>冰碛</b>") == "Bechamel  b  冰碛  /b "
        # Rows written before the upgrade are found through the rebuilt index (nothing to republish).
        assert await _found(engine, "冰碛") == ["冰川地貌"]
        assert await _found(engine, "冰川地貌") == ["冰川地貌"]
        assert await _found(engine, "岩石碎屑") == ["冰川地貌"]
        assert await _found(engine, "冰山") == []
        assert await _found(engine, "moraine") == ["Ice"]  # English still stemmed
        async with engine.connect() as conn:
            hit = await conn.scalar(
                text(
                    "select count(*) from courses where to_tsvector('english', smartcourse_fold(title || ' ' || "
                    "description || ' ' || category)) @@ websearch_to_tsquery('english', smartcourse_fold('冰川学'))"
                )
            )
            assert hit == 1
            await conn.execute(text("set enable_seqscan = off"))
            plan = await conn.execute(text("explain " + _MATCH), {"q": "冰碛"})
            assert "ix_content_chunks_fts" in " ".join(r[0] for r in plan)

        await asyncio.to_thread(command.downgrade, alembic_config(url), "0022")
        assert await _found(engine, "冰碛") == []
        assert await _fold(engine, "Béchamel <b>冰碛</b>") == "Bechamel  b 冰碛 /b "
        async with engine.connect() as conn:
            left = await conn.scalar(text("select count(*) from pg_proc where proname = 'smartcourse_cjk_bigrams'"))
            assert left == 0
        await asyncio.to_thread(command.upgrade, alembic_config(url), "head")
        assert await _found(engine, "冰碛") == ["冰川地貌"]
