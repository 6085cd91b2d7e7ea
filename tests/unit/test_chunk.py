"""Chunking: structure first, token-bounded pieces with overlap, stable ids and hashes, no quiz answers."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from smartcourse.content.chunk import chunk_sections, content_hash, count_tokens, embedding_text
from smartcourse.content.extract import Section, extract_material, sections_from_snapshot
from smartcourse.ports import Chunk
from tests.fixtures import content as fx

SENTENCES = [f"Sentence {i} explains how the outbox relay publishes event {i} exactly once." for i in range(80)]
LONG = " ".join(SENTENCES)


def _chunks(sections: list[Section], **kw: int) -> list[Chunk]:
    return chunk_sections(sections, course_id="course-1", version=2, **kw)


def test_small_sections_stay_whole_and_never_merge() -> None:
    sections = sections_from_snapshot(fx.snapshot())
    chunks = _chunks(sections)
    assert [(c.source_id, c.location, c.text) for c in chunks] == [(s.source_id, s.location, s.text) for s in sections]
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    assert chunks[0].chunk_id == f"course-1:v2:lesson:{sections[0].source_id}:0"
    assert chunks[1].chunk_id == f"course-1:v2:lesson:{sections[0].source_id}:1"
    assert chunks[0].course_id == "course-1" and chunks[0].version == 2


def test_pdf_pages_are_never_mixed() -> None:
    pages = extract_material(fx.pdf_multi_page(), filename="n.pdf", content_type="application/pdf", source_id="m",
                             title="Notes")  # fmt: skip
    chunks = _chunks(pages)
    assert [c.location for c in chunks] == ["page 1", "page 2", "page 3"]
    assert [c.chunk_id for c in chunks] == [f"course-1:v2:material:m:{n}" for n in range(3)]


def test_long_sections_are_split_within_the_budget_with_overlap() -> None:
    chunks = _chunks([Section("lesson", "l1", "Outbox", "M > Outbox", LONG)], max_tokens=120, overlap_tokens=30)
    assert len(chunks) > 5
    assert all(count_tokens(c.text) <= 120 for c in chunks)
    for a, b in itertools.pairwise(chunks):
        # the next chunk starts with the last sentence(s) of this one
        first_sentence = b.text.split(". ")[0] + "."
        assert first_sentence in a.text
    # splits fall between sentences, and every sentence is somewhere
    assert all(c.text.endswith(".") for c in chunks)
    joined = " ".join(c.text for c in chunks)
    assert all(s in joined for s in SENTENCES)


def test_no_overlap_means_no_repeated_sentence() -> None:
    chunks = _chunks([Section("lesson", "l1", "Outbox", "M > Outbox", LONG)], max_tokens=120, overlap_tokens=0)
    assert sum(c.text.count("Sentence ") for c in chunks) == len(SENTENCES)


def test_paragraphs_are_preferred_split_points() -> None:
    para = " ".join(SENTENCES[:6])  # ~100 tokens
    text = "\n\n".join([para, para.replace("outbox", "saga"), para.replace("outbox", "inbox")])
    chunks = _chunks([Section("material", "m", "Doc", "Doc", text)], max_tokens=150, overlap_tokens=20)
    assert [c.text for c in chunks] == [para, para.replace("outbox", "saga"), para.replace("outbox", "inbox")]


def test_deterministic_ids_and_hashes() -> None:
    a = _chunks(sections_from_snapshot(fx.snapshot(long_text=LONG)))
    b = _chunks(sections_from_snapshot(fx.snapshot(long_text=LONG)))
    assert a == b
    assert len({c.chunk_id for c in a}) == len(a)
    assert all(len(c.content_hash) == 64 for c in a)


def test_hash_covers_what_is_embedded() -> None:
    (chunk,) = _chunks([Section("lesson", "l1", "Outbox", "Mod > Outbox > Why", "State and events commit together.")])
    assert embedding_text(chunk) == "Mod > Outbox > Why\n\nState and events commit together."
    assert chunk.content_hash == content_hash(embedding_text(chunk))
    # whitespace-only edits keep the hash; a renamed heading or edited text changes it
    (same,) = _chunks([Section("lesson", "l9", "Outbox", "Mod > Outbox > Why", "State  and events\ncommit together.")])
    (renamed,) = _chunks([Section("lesson", "l1", "Outbox", "Mod > Outbox > How", "State and events commit together.")])
    (edited,) = _chunks([Section("lesson", "l1", "Outbox", "Mod > Outbox > Why", "State and events commit apart.")])
    assert same.content_hash == chunk.content_hash
    assert renamed.content_hash != chunk.content_hash != edited.content_hash


def test_material_breadcrumb_leaves_page_numbers_out() -> None:
    page, heading = _chunks(
        [
            Section("material", "m", "Kafka notes", "page 3", "Partitions keep order.", page=3),
            Section("material", "m", "Kafka notes", "Keys > Choice", "Use the aggregate id.", heading_path=["Keys"]),
        ]
    )
    assert embedding_text(page) == "Kafka notes\n\nPartitions keep order."
    assert embedding_text(heading) == "Kafka notes > Keys > Choice\n\nUse the aggregate id."
    assert dataclasses.replace(page, location="page 4").content_hash == page.content_hash


def test_no_quiz_answer_reaches_a_chunk() -> None:
    chunks = _chunks(sections_from_snapshot(fx.snapshot()))
    assert any("Which pattern commits" in c.text for c in chunks)
    assert not [c for c in chunks if fx.QUIZ_ANSWER_OPTION in embedding_text(c)]


def test_bad_budgets_are_refused() -> None:
    with pytest.raises(ValueError):
        _chunks([], max_tokens=50, overlap_tokens=50)


def test_a_huge_text_is_split_without_tokenizing_it_whole() -> None:
    """explore7 F1: a 19 MB text file failed every publish at `chunk`: the tokenizer, asked for the length of the
    whole text (and of each big part), held the GIL for 16 s, past the step's heartbeat timeout. Texts far longer than
    a chunk are now measured by their characters (a 19 MB file: 29,598 chunks either way, 8.6 s instead of 24 s)."""
    from smartcourse.content.chunk import bounded

    asked: list[int] = []

    def counting(text: str) -> int:
        asked.append(len(text))
        return count_tokens(text)

    paragraph = "Chlorophyll absorbs red and blue light; the green is reflected. " * 12
    text = "\n\n".join(f"{n}. {paragraph}" for n in range(300))  # about 230,000 characters
    section = Section(source_type="material", source_id="m", title="big.txt", location="big.txt", text=text)
    chunks = chunk_sections([section], course_id="c", version=1, count=counting)
    assert max(asked) <= 50 * 200, max(asked)  # never the whole text nor a part of it bigger than 250 tokens' worth
    assert len(chunks) >= 300 and all(count_tokens(c.text) <= 200 for c in chunks)
    measure = bounded(lambda _: 7, 200)
    assert measure("x" * 10_001) == 10_001 and measure("x" * 10_000) == 7
