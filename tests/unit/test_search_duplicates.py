"""The same file uploaded under two names: its passages were listed once per copy in course search (explore7 F3)."""

from __future__ import annotations

from dataclasses import replace

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


def test_a_file_that_repeats_a_passage_is_not_listed_as_its_own_copy() -> None:
    """explore27 F5: a text that repeats a paragraph four times listed its own file in `also_in` four times."""
    hits = [
        hit("s1", "same.txt", "Herons wade.", 0.9),
        hit("s2", "same.txt", "Herons wade.", 0.8),
        hit("t1", "twin.txt", "Herons wade.", 0.7),
        hit("s3", "same.txt", "herons  wade.", 0.6),
        hit("t2", "twin.txt", "Herons wade.", 0.5),
    ]
    (only,) = _public_hits(hits)
    assert only.chunk_id == "s1" and [s.title for s in only.also_in] == ["twin.txt"]


def _hit(n: int, keyword: float | None, vector: float) -> Hit:
    """A passage with its keyword (BM25) and vector (cosine) scores: `hit`'s, scored."""
    plain = hit(f"c{n}", f"Lesson {n}", f"text {n}", 0.0)
    return Hit(chunk=replace(plain.chunk, ordinal=n), score=0.0, vector_score=vector, keyword_score=keyword)


def test_a_hybrid_search_ranks_far_passages_by_their_words_only() -> None:
    """explore76 F2: `?q=WHERE` listed the lesson saying "unlike WHERE" (vector rank 1 at a cosine of 0.08, keyword
    rank 2) above the lesson on WHERE (keyword rank 1), and `k=1` answered nothing: the far passage took the slot,
    then the floor removed it."""
    from smartcourse.services.search import fused_above_floor

    on_where = _hit(1, 0.885, 0.02)
    unlike_where = _hit(2, 0.4, 0.08)
    far = _hit(3, None, 0.1)  # no word, far in meaning: not an answer
    near = _hit(4, None, 0.5)  # no word, near in meaning: an answer
    ranked = fused_above_floor([unlike_where, far, on_where, near], floor=0.3)
    assert [h.chunk.chunk_id for h in ranked] == ["c1", "c4", "c2"], ranked
    assert ranked[0].score > ranked[2].score > 0
