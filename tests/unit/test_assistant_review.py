"""`GET /enrollments/{id}/review` ties a student's question to a section only on the assistant's evidence rule."""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any

from smartcourse.ports import Chunk, Hit
from smartcourse.services import recommendations


def _hit(n: int, title: str, text: str, vector: float, keyword: float | None = None) -> Hit:
    chunk = Chunk(
        chunk_id=f"c{n}",
        course_id="course",
        version=1,
        source_type="lesson",
        source_id=f"lesson-{n}",
        title=title,
        location=f"Mitochondria > {title}",
        text=text,
        content_hash=f"h{n}",
    )
    return Hit(chunk=chunk, score=vector, vector_score=vector, keyword_score=keyword)


class _Container:
    def __init__(self, hits: list[Hit]) -> None:
        self.hits = hits
        self.settings = SimpleNamespace(assistant_relevance_floor=0.3)

    def embedder(self) -> Any:
        async def embed_query(query: str) -> list[float]:
            return [0.0]

        return SimpleNamespace(embed_query=embed_query)

    def vector_index(self) -> Any:
        async def search(*args: Any, **kw: Any) -> list[Hit]:
            return list(self.hits)

        return SimpleNamespace(search=search)


async def test_a_question_is_tied_only_to_sections_above_the_relevance_floor() -> None:
    """ "What does RuBisCO do in the Calvin cycle?" was listed under *Mitochondria > The matrix* (a weak chunk)."""
    matrix = _hit(1, "The matrix", "The matrix holds the enzymes of the Krebs cycle.", 0.18)
    calvin = _hit(2, "Photosynthesis", "The Calvin cycle fixes carbon dioxide using the enzyme RuBisCO.", 0.21, 4.2)
    course = SimpleNamespace(id=uuid.uuid4(), index_version=1)
    container = _Container([matrix, calvin])
    question = "What does RuBisCO do in the Calvin cycle?"
    loose = await recommendations._search_sections(container, course, question, quizzes=frozenset())  # type: ignore[arg-type]
    assert [s.chunk_id for s in loose] == ["c1", "c2"]  # a failed quiz's sections: unchanged
    strict = await recommendations._search_sections(
        container, course, question, quizzes=frozenset(), evidence_only=True
    )  # type: ignore[arg-type]
    assert [s.chunk_id for s in strict] == ["c2"]  # the keyword hit on its subject words; the weak one is dropped
