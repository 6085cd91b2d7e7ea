"""The publish's chunk step writes its rows in batches with progress, its parsing and chunking off the event loop
(explore57 F8: 43,000 ORM rows added and flushed on the loop held the worker 45 s without progress)."""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict
from typing import Any

import pytest
from sqlalchemy import delete, func, select

from smartcourse.content.extract import Section
from smartcourse.models import ContentChunk
from smartcourse.services import content_index
from tests.conftest import Api


async def test_the_chunk_step_writes_in_batches_and_says_how_far_it_is(
    api: Api, container: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = await api.user("instructor")
    course_id = uuid.UUID((await api.course(owner))["id"])
    sections = [
        Section("lesson", f"l{n}", f"Lesson {n}", f"M > Lesson {n}", f"Paragraph {n} about glaciers and moraines.")
        for n in range(7)
    ]
    version = 9  # a version no publish of this course reaches
    key = content_index.staging_key(course_id, version)
    await container.files.put(key, json.dumps([asdict(s) for s in sections]).encode(), "application/json")
    monkeypatch.setattr(content_index, "CHUNK_INSERT_BATCH", 3)
    said: list[tuple[int, int]] = []
    try:
        async with container.uow() as uow:
            result = await content_index.chunk(
                uow=uow,
                files=container.files,
                course_id=course_id,
                version=version,
                progress=lambda d, t: said.append((d, t)),
            )
        assert result == {"chunks": 7, "sources": 7}
        assert said == [(3, 7), (6, 7), (7, 7)]
        async with container.uow() as uow:  # again: the step is safe to repeat (its rows replaced, not doubled)
            await content_index.chunk(uow=uow, files=container.files, course_id=course_id, version=version)
            count = await uow.session.scalar(
                select(func.count())
                .select_from(ContentChunk)
                .where(ContentChunk.course_id == course_id, ContentChunk.version == version)
            )
        assert count == 7
    finally:
        async with container.uow() as uow:
            await uow.session.execute(delete(ContentChunk).where(ContentChunk.course_id == course_id))
            await uow.commit()
