"""The same file uploaded under two names: its passages were listed once per copy in course search (explore7 F3)."""

from __future__ import annotations

from smartcourse.ports import Chunk, Hit
from smartcourse.services.search import _public_hits


def hit(chunk_id: str, title: str, text: str, score: float) -> Hit:
    chunk = Chunk(chunk_id, "c", 1, "material", f"m-{title}", title, "page 1", text, content_hash=chunk_id)
    return Hit(chunk=chunk, score=score)


def test_a_passage_in_several_files_is_one_hit_naming_the_other_copies() -> None:
    hits = [
        hit("a1", "photosynthesis.pdf", "Chlorophyll absorbs light.", 0.9),
        hit("b1", "notes.txt", "Roots take up water.", 0.8),
        hit("a2", "UPPER.PDF", "Chlorophyll  absorbs\nlight.", 0.7),  # the same text, other line breaks
        hit("a3", "copy.pdf", "chlorophyll absorbs light.", 0.6),
    ]
    out = _public_hits(hits)
    assert [h.chunk_id for h in out] == ["a1", "b1"]  # the best copy keeps its place
    assert [s.title for s in out[0].also_in] == ["UPPER.PDF", "copy.pdf"]
    assert out[1].also_in == []
    assert out[0].model_dump()["also_in"][0] == {
        "type": "material",
        "id": "m-UPPER.PDF",
        "title": "UPPER.PDF",
        "location": "page 1",
    }
