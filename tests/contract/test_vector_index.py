"""VectorIndex contract: LanceDB on a local directory, on S3 (moto server) and on the stack's S3 agree."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from smartcourse.ports import Chunk
from tests.engines import require_engine

BUCKET = os.environ.get("STACK_S3_BUCKET", "smartcourse")
VOCAB = (
    "outbox kafka temporal workflow saga retry idempotent consumer partition offset schema registry "
    "lambda layer handler router postgres index vacuum lock deadlock queue celery email certificate "
    "quiz grading enrollment waitlist capacity prerequisite progress lesson"
).split()
DIMS = len(VOCAB)
NASTY_QUERIES = [
    '"unterminated quote',
    "title:outbox",
    "(kafka AND temporal",
    "AND",
    "OR NOT",
    "*",
    "kafka*",
    "outbox\x00kafka",
    "\x00",
    "+- && || ! { } [ ] ^ ~ ? \\ /",
    "'; DROP TABLE v1; --",
    "",
    "   ",
    "é" * 5000,
]


def embed(text: str) -> list[float]:
    """Bag-of-words over VOCAB, unit length: similarity is word overlap, so the expected winner is known."""
    v = np.zeros(DIMS, dtype=np.float64)
    for word in text.lower().split():
        if word in VOCAB:
            v[VOCAB.index(word)] += 1.0
    v += 0.01  # never the zero vector
    return (v / np.linalg.norm(v)).tolist()


def chunks_for(course_id: str, version: int, texts: list[str], *, title: str = "Lesson") -> list[Chunk]:
    return [
        Chunk(
            chunk_id=f"{version}-{i}",
            course_id=course_id,
            version=version,
            source_type="lesson" if i % 2 == 0 else "material",
            source_id=f"src-{i // 3}",
            title=f"{title} {i}",
            location=f"Module 1 > Lesson {i} > Part {i % 3}",
            text=text,
            content_hash=f"sha256:{i:04d}",
            ordinal=i,
        )
        for i, text in enumerate(texts)
    ]


TEXTS = [
    "outbox kafka consumer partition offset",  # 0: the kafka/outbox chunk
    "temporal workflow saga retry idempotent",  # 1: the workflow chunk
    "postgres index vacuum lock deadlock",  # 2
    "celery queue email certificate",  # 3
    "quiz grading enrollment waitlist capacity",  # 4
    "lambda layer handler router",  # 5
    "schema registry kafka",  # 6
    "progress lesson prerequisite",  # 7
]


async def write(index: Any, course: str, version: int, texts: list[str], **kw: Any) -> list[Chunk]:
    chunks = chunks_for(course, version, texts, **kw)
    assert await index.write_version(course, version, chunks, [embed(c.text) for c in chunks]) == len(chunks)
    return chunks


# --- backends ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[str]:
    """A moto S3 server on a free port of 127.0.0.1 with the bucket created."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="moto", aws_secret_access_key="moto"
    ).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


def _s3_index(endpoint: str, key_id: str, secret: str, **kw: Any) -> Any:
    from smartcourse.adapters.lance_index import LanceVectorIndex, s3_storage_options

    options = s3_storage_options(endpoint, access_key_id=key_id, secret_access_key=secret)
    return LanceVectorIndex(
        f"s3://{BUCKET}/contract-{uuid.uuid4().hex[:8]}", dimensions=DIMS, storage_options=options, **kw
    )


@pytest.fixture(params=["local", "moto_s3", "stack_s3"])
def make_index(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """A factory of fresh indexes (each under its own root) on one backend."""
    from smartcourse.adapters.lance_index import LanceVectorIndex

    if request.param == "local":
        return lambda **kw: LanceVectorIndex(str(tmp_path / f"lance-{uuid.uuid4().hex[:8]}"), dimensions=DIMS, **kw)
    if request.param == "moto_s3":
        endpoint = request.getfixturevalue("moto_s3")
        return lambda **kw: _s3_index(endpoint, "moto", "moto", **kw)
    endpoint = os.environ.get("S3_ENDPOINT_URL") or require_engine("s3")
    import boto3

    key_id = os.environ.get("AWS_ACCESS_KEY_ID", "smartcourse")
    secret = os.environ.get("AWS_SECRET_ACCESS_KEY", "smartcourse")
    s3 = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=key_id, aws_secret_access_key=secret
    )
    if BUCKET not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        s3.create_bucket(Bucket=BUCKET)
    return lambda **kw: _s3_index(endpoint, key_id, secret, **kw)


@pytest.fixture
async def index(make_index: Any) -> AsyncIterator[Any]:
    yield make_index()


@pytest.fixture
def course() -> str:
    return str(uuid.uuid4())


# --- writes, counts, versions -----------------------------------------------------------------


async def test_write_count_and_versions(index: Any, course: str) -> None:
    assert await index.versions(course) == []
    await write(index, course, 1, TEXTS)
    await write(index, course, 2, TEXTS[:3])
    assert await index.count(course, 1) == len(TEXTS)
    assert await index.count(course, 2) == 3
    assert await index.versions(course) == [1, 2]
    assert await index.versions(str(uuid.uuid4())) == []


async def test_every_chunk_field_comes_back(index: Any, course: str) -> None:
    chunks = await write(index, course, 3, TEXTS)
    hits = await index.search(course, 3, query="", vector=embed(TEXTS[4]), k=len(TEXTS), mode="vector")
    assert sorted((h.chunk for h in hits), key=lambda c: c.ordinal) == chunks


async def test_rewrite_replaces_a_partial_attempt(index: Any, course: str) -> None:
    await write(index, course, 1, ["stale " + t for t in TEXTS] * 3)  # a failed attempt's leftovers
    fresh = await write(index, course, 1, TEXTS[:2])
    assert await index.count(course, 1) == 2
    hits = await index.search(course, 1, query="outbox kafka", vector=embed("outbox kafka"), k=50)
    assert {h.chunk for h in hits} <= set(fresh)
    assert await index.versions(course) == [1]


async def test_empty_version(index: Any, course: str) -> None:
    assert await index.write_version(course, 1, [], []) == 0
    assert await index.count(course, 1) == 0
    assert await index.versions(course) == [1]
    assert await index.search(course, 1, query="kafka", vector=embed("kafka"), k=5) == []


async def test_drop_is_idempotent_and_only_drops_that_version(index: Any, course: str) -> None:
    await write(index, course, 1, TEXTS)
    await write(index, course, 2, TEXTS)
    await index.drop_version(course, 1)
    await index.drop_version(course, 1)
    await index.drop_version(str(uuid.uuid4()), 7)
    assert await index.versions(course) == [2]
    assert await index.count(course, 1) == 0
    assert await index.search(course, 1, query="kafka", vector=embed("kafka"), k=5) == []
    assert await index.count(course, 2) == len(TEXTS)


async def test_rejects_mismatched_input(index: Any, course: str) -> None:
    chunks = chunks_for(course, 1, TEXTS[:2])
    with pytest.raises(ValueError):
        await index.write_version(course, 1, chunks, [embed(TEXTS[0])])
    with pytest.raises(ValueError):
        await index.write_version(course, 1, chunks, [[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ValueError):
        await index.write_version(course, 2, chunks, [embed(t) for t in TEXTS[:2]])  # chunks say version 1


# --- deleting one source (a material deleted from a live course) -------------------------------


async def test_delete_source_removes_only_that_source_from_that_version(make_index: Any, course: str) -> None:
    index = make_index(vector_index_min_rows=4)  # with the IVF index too: deleted rows must leave every leg
    await write(index, course, 1, TEXTS)
    await write(index, course, 2, TEXTS)
    # ("material", "src-0") is chunk 1 alone: chunks 0 and 2 share the id but are lessons
    assert await index.delete_source(course, 1, source_type="material", source_id="src-0") == 1
    assert await index.count(course, 1) == len(TEXTS) - 1
    assert await index.count(course, 2) == len(TEXTS)
    for mode in ("vector", "keyword", "hybrid"):
        hits = await index.search(course, 1, query="saga retry", vector=embed(TEXTS[1]), k=len(TEXTS), mode=mode)
        assert "1-1" not in {h.chunk.chunk_id for h in hits}, mode
        assert (mode == "keyword") == (hits == []), mode  # "saga retry" was chunk 1's words alone
        again = await index.search(course, 2, query="saga retry", vector=embed(TEXTS[1]), k=3, mode=mode)
        assert again[0].chunk.chunk_id == "2-1", mode
    lessons = await index.search(course, 1, query="", vector=embed(TEXTS[0]), k=len(TEXTS), mode="vector")
    assert {"1-0", "1-2"} <= {h.chunk.chunk_id for h in lessons}
    # idempotent; nothing to delete is 0, not an error
    assert await index.delete_source(course, 1, source_type="material", source_id="src-0") == 0
    assert await index.delete_source(course, 9, source_type="material", source_id="src-0") == 0
    assert await index.delete_source(str(uuid.uuid4()), 1, source_type="material", source_id="src-0") == 0


async def test_delete_source_takes_ids_as_values_not_filter_syntax(index: Any, course: str) -> None:
    await write(index, course, 1, TEXTS)
    for source_id in ("x' OR '1'='1", "src-1' OR source_id LIKE '%", "'; DROP TABLE v1; --"):
        assert await index.delete_source(course, 1, source_type="material", source_id=source_id) == 0
    with pytest.raises(ValueError):
        await index.delete_source(course, 1, source_type="material' OR '1'='1", source_id="src-1")  # type: ignore[arg-type]
    assert await index.count(course, 1) == len(TEXTS)


async def test_another_reader_sees_a_deleted_source_within_its_refresh_interval(make_index: Any, course: str) -> None:
    writer = make_index()
    await write(writer, course, 1, TEXTS)
    # another object on the same storage (another API process, another Lambda) with the table's handle cached
    reader = type(writer)(writer.uri, dimensions=DIMS, storage_options=writer.storage_options, refresh_seconds=0.5)
    assert [h.chunk.chunk_id for h in await reader.search(course, 1, query="saga", vector=None, k=3)] == ["1-1"]
    assert await writer.delete_source(course, 1, source_type="material", source_id="src-0") == 1
    await asyncio.sleep(0.7)
    assert await reader.search(course, 1, query="saga", vector=None, k=3) == []
    assert await reader.count(course, 1) == len(TEXTS) - 1


# --- search -----------------------------------------------------------------------------------


async def test_vector_search_ranks_by_cosine(index: Any, course: str) -> None:
    await write(index, course, 1, TEXTS)
    hits = await index.search(course, 1, query="ignored", vector=embed("temporal workflow retry"), k=3, mode="vector")
    assert hits[0].chunk.chunk_id == "1-1"
    assert len(hits) == 3
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert all(h.vector_score == h.score and h.keyword_score is None for h in hits)
    expected = float(np.dot(embed("temporal workflow retry"), embed(TEXTS[1])))
    assert hits[0].vector_score == pytest.approx(expected, abs=1e-4)
    assert 0.0 <= hits[-1].vector_score <= hits[0].vector_score <= 1.0 + 1e-5


async def test_keyword_search_ranks_by_bm25(index: Any, course: str) -> None:
    await write(index, course, 1, TEXTS)
    hits = await index.search(course, 1, query="Deadlock?", vector=None, k=5, mode="keyword")
    assert [h.chunk.chunk_id for h in hits] == ["1-2"]
    assert hits[0].keyword_score and hits[0].keyword_score > 0 and hits[0].score == hits[0].keyword_score
    assert hits[0].vector_score is None
    hits = await index.search(course, 1, query="kafka", vector=None, k=5, mode="keyword")
    assert {h.chunk.chunk_id for h in hits} == {"1-0", "1-6"}
    assert hits[0].chunk.chunk_id == "1-6"  # BM25: the shorter chunk with the same term wins
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


async def test_keyword_search_also_matches_titles(index: Any, course: str) -> None:
    await write(index, course, 1, TEXTS, title="Capstone")
    hits = await index.search(course, 1, query="capstone", vector=None, k=3, mode="keyword")
    assert len(hits) == 3


async def test_keyword_search_finds_a_sql_keyword_that_is_an_english_stop_word(index: Any, course: str) -> None:
    """explore72 F3: the index dropped English stop words, so a SQL course's `?q=HAVING` found nothing. It keeps them
    now; a query's stop words are still left out when it has other words (else "what is" matched every chunk)."""
    texts = [
        "The HAVING clause filters groups after the aggregation.",
        "WHERE filters rows before grouping.",
        "It is what it is: a text that is only made of what is common.",
        "A B-tree keeps keys sorted in pages.",
    ]
    await write(index, course, 1, texts)

    async def found(query: str) -> list[str]:
        hits = await index.search(course, 1, query=query, vector=None, k=5, mode="keyword")
        return [h.chunk.chunk_id for h in hits]

    assert await found("HAVING") == ["1-0"]
    assert await found("where") == ["1-1"]
    assert set(await found("WHERE or HAVING?")) == {"1-0", "1-1"}
    # "what", "is", "a" are left out of a query with other words: the B-tree chunk only.
    assert await found("what is a B-tree?") == ["1-3"]


async def test_keyword_search_finds_a_chinese_word_inside_a_sentence(index: Any, course: str) -> None:
    """A run of CJK characters is indexed and queried as character bigrams (`domain.text.cjk_bigrams`): the
    tokenizer took "冰碛是冰川搬运和堆积的岩石碎屑" for one word, so "冰碛" found nothing (explore31 F2)."""
    texts = ["冰碛是冰川搬运和堆积的岩石碎屑。", "冰川的形成需要多年积雪。", *TEXTS[:2]]
    await write(index, course, 1, texts, title="冰川学入门")
    hits = await index.search(course, 1, query="冰碛", vector=None, k=5, mode="keyword")
    assert [h.chunk.chunk_id for h in hits] == ["1-0"]
    assert hits[0].chunk.text == texts[0] and hits[0].chunk.title == "冰川学入门 0"  # as written, not as indexed
    hits = await index.search(course, 1, query="冰川学", vector=None, k=5, mode="keyword")  # the titles' bigrams
    assert {h.chunk.chunk_id for h in hits} == {"1-0", "1-1", "1-2", "1-3"}
    hits = await index.search(course, 1, query="积雪", vector=embed("kafka"), k=5, mode="hybrid")
    assert [h.chunk.chunk_id for h in hits if h.keyword_score is not None] == ["1-1"]
    hits = await index.search(course, 1, query="kafka consumers", vector=None, k=5, mode="keyword")  # stemmed still
    assert [h.chunk.chunk_id for h in hits] == ["1-2"]


async def test_a_version_written_before_the_keyword_columns_is_still_searched(index: Any, course: str) -> None:
    """A version written before the `keyword_*` columns (its full-text indexes on `text`, `title`, `location`) is
    searched on those, the query as typed, until the course is published again."""
    import pyarrow as pa
    from lancedb.index import FTS

    chunks = chunks_for(course, 1, TEXTS)
    data = index._arrow(course, 1, chunks, [embed(c.text) for c in chunks])
    old = data.select([name for name in data.schema.names if not name.startswith("folded_")])
    assert isinstance(old, pa.Table) and "text" in old.schema.names
    table = await (await index._db(course)).create_table("v1", old)
    for column in ("text", "location", "title"):
        await table.create_index(column, config=FTS(with_position=False, stem=True, remove_stop_words=True))
    hits = await index.search(course, 1, query="deadlocks", vector=None, k=5, mode="keyword")
    assert [h.chunk.chunk_id for h in hits] == ["1-2"]
    hits = await index.search(course, 1, query="deadlock", vector=embed("quiz grading enrollment"), k=4)
    assert {h.chunk.chunk_id for h in hits[:2]} == {"1-2", "1-4"}


async def test_keyword_search_reads_words_without_their_optional_marks(index: Any, course: str) -> None:
    """The keyword columns drop the optional marks of every script, as the catalogue's fold does: Arabic typed without
    its short vowels, Vietnamese without its tones, all-caps Greek with its final sigma found the text written with
    them in the catalogue but not inside the course (explore65 F2: the tokenizer folds ASCII accents only). Typed
    with the marks, still found."""
    texts = ["يدور المُشتري حول الشمس", "Phở là món ăn Việt Nam", "Σωκράτης ήταν φιλόσοφος", *TEXTS[:2]]
    await write(index, course, 1, texts, title="Δοκιμή")
    for query, found in (
        ("المشتري", "1-0"),
        ("المُشتري", "1-0"),
        ("pho", "1-1"),
        ("Phở", "1-1"),
        ("ΣΩΚΡΆΤΗΣ", "1-2"),
        ("σωκρατης", "1-2"),
        ("kafka", "1-3"),  # stemmed and ASCII as before
    ):
        hits = await index.search(course, 1, query=query, vector=None, k=5, mode="keyword")
        assert [h.chunk.chunk_id for h in hits] == [found], query
    hits = await index.search(course, 1, query="δοκιμη", vector=None, k=9, mode="keyword")
    assert len(hits) == 5 and hits[0].chunk.title == "Δοκιμή 0"  # the titles too; as written, not as indexed


async def test_a_version_written_before_the_marks_were_folded_is_searched_as_it_was(index: Any, course: str) -> None:
    """A version written with the `keyword_*` columns (CJK bigrams, marks kept) is searched on them with the query
    made as they were (bigrams, marks as typed) until the course is published again: its words with marks are
    still found by the same words, its Chinese inside a sentence too."""
    import pyarrow as pa
    from lancedb.index import FTS

    from smartcourse.domain.text import cjk_bigrams

    texts = ["يدور المُشتري حول الشمس", "冰碛是冰川搬运和堆积的岩石碎屑。", *TEXTS[:2]]
    chunks = chunks_for(course, 1, texts)
    data = index._arrow(course, 1, chunks, [embed(c.text) for c in chunks])
    kept = data.select([name for name in data.schema.names if not name.startswith("folded_")])
    for name in ("text", "title", "location"):
        kept = kept.append_column(f"keyword_{name}", pa.array([cjk_bigrams(v) for v in data[name].to_pylist()]))
    table = await (await index._db(course)).create_table("v1", kept)
    fts = FTS(with_position=False, stem=True, remove_stop_words=True, ascii_folding=True)
    for column in ("keyword_text", "keyword_location", "keyword_title"):
        await table.create_index(column, config=fts)
    for query, found in (("المُشتري", ["1-0"]), ("冰碛", ["1-1"]), ("kafka", ["1-2"]), ("المشتري", [])):
        hits = await index.search(course, 1, query=query, vector=None, k=5, mode="keyword")
        assert [h.chunk.chunk_id for h in hits] == found, query


async def test_hybrid_fuses_both_rankings(index: Any, course: str) -> None:
    await write(index, course, 1, TEXTS)
    # keywords point at chunk 2 (deadlock), the vector at chunk 4 (quiz): both must be in the top 2,
    # and a chunk that both legs rank high beats either
    hits = await index.search(course, 1, query="deadlock", vector=embed("quiz grading enrollment"), k=4)
    top2 = {h.chunk.chunk_id for h in hits[:2]}
    assert top2 == {"1-2", "1-4"}
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert all(h.vector_score is not None for h in hits)  # filled even for keyword-only hits
    by_id = {h.chunk.chunk_id: h for h in hits}
    assert by_id["1-2"].keyword_score and by_id["1-2"].keyword_score > 0
    assert by_id["1-4"].vector_score == pytest.approx(
        float(np.dot(embed("quiz grading enrollment"), embed(TEXTS[4]))), abs=1e-4
    )
    assert by_id["1-2"].vector_score == pytest.approx(
        float(np.dot(embed("quiz grading enrollment"), embed(TEXTS[2]))), abs=1e-4
    )

    both = await index.search(course, 1, query="kafka offset", vector=embed("outbox kafka consumer"), k=4)
    assert both[0].chunk.chunk_id == "1-0"
    assert both[0].score == pytest.approx(2 / 61, rel=1e-3)  # rank 1 in both lists: 1/(60+1) twice


async def test_hybrid_with_one_leg_missing(index: Any, course: str) -> None:
    await write(index, course, 1, TEXTS)
    only_text = await index.search(course, 1, query="deadlock", vector=None, k=3)
    assert [h.chunk.chunk_id for h in only_text] == ["1-2"]
    only_vector = await index.search(course, 1, query="", vector=embed("celery email"), k=3)
    assert only_vector[0].chunk.chunk_id == "1-3" and len(only_vector) == 3
    assert [h.score for h in only_vector] == sorted((h.score for h in only_vector), reverse=True)
    assert await index.search(course, 1, query="  ", vector=None, k=3) == []
    assert await index.search(course, 1, query="kafka", vector=None, k=3, mode="vector") == []


@pytest.mark.parametrize("mode", ["keyword", "hybrid"])
async def test_query_syntax_never_raises(index: Any, course: str, mode: str) -> None:
    await write(index, course, 1, TEXTS)
    for query in NASTY_QUERIES:
        hits = await index.search(
            course, 1, query=query, vector=embed(query) if mode == "hybrid" else None, k=3, mode=mode
        )
        assert isinstance(hits, list), query
    hits = await index.search(course, 1, query='"kafka" AND (offset*)', vector=None, k=3, mode="keyword")
    assert hits and hits[0].chunk.chunk_id == "1-0"  # syntax is dropped, the words still count


async def test_unknown_course_or_version_is_empty(index: Any, course: str) -> None:
    await write(index, course, 1, TEXTS)
    for c, v in ((course, 2), (str(uuid.uuid4()), 1)):
        for mode in ("vector", "keyword", "hybrid"):
            assert await index.search(c, v, query="kafka", vector=embed("kafka"), k=3, mode=mode) == []
        assert await index.count(c, v) == 0


async def test_k_is_bounded(index: Any, course: str) -> None:
    from smartcourse.adapters.lance_index import MAX_K

    await write(index, course, 1, [f"kafka lesson {i}" for i in range(MAX_K + 20)])
    assert await index.search(course, 1, query="kafka", vector=embed("kafka"), k=0) == []
    assert await index.search(course, 1, query="kafka", vector=embed("kafka"), k=-1) == []
    for mode in ("vector", "keyword", "hybrid"):
        hits = await index.search(course, 1, query="kafka", vector=embed("kafka"), k=10**6, mode=mode)
        assert len(hits) == MAX_K, mode
    small = await index.search(course, 1, query="kafka", vector=embed("kafka"), k=5)
    assert len(small) == 5


async def test_versions_are_separate(index: Any, course: str) -> None:
    await write(index, course, 1, TEXTS[:4])
    await write(index, course, 2, TEXTS[4:])
    other = str(uuid.uuid4())
    await write(index, other, 1, TEXTS)
    for mode in ("vector", "keyword", "hybrid"):
        hits = await index.search(course, 2, query="kafka outbox lesson", vector=embed("kafka outbox"), k=20, mode=mode)
        assert hits and {(h.chunk.course_id, h.chunk.version) for h in hits} == {(course, 2)}, mode
    assert await index.count(other, 1) == len(TEXTS)


async def test_vector_index_above_threshold_keeps_exact_winner(make_index: Any, course: str) -> None:
    index = make_index(vector_index_min_rows=200)
    rng = np.random.default_rng(7)
    filler = [" ".join(rng.choice(VOCAB[8:], size=4)) for _ in range(300)]
    await write(index, course, 1, [*filler, "outbox kafka temporal workflow saga"])
    table = await index._table(course, 1)
    assert "vector_idx" in {i.name for i in await table.list_indices()}
    hits = await index.search(
        course, 1, query="", vector=embed("outbox kafka temporal workflow saga"), k=3, mode="vector"
    )
    assert hits[0].chunk.ordinal == 300 and hits[0].vector_score == pytest.approx(1.0, abs=1e-3)


# --- concurrency ------------------------------------------------------------------------------


async def test_writes_for_different_courses_run_concurrently(index: Any) -> None:
    courses = [str(uuid.uuid4()) for _ in range(4)]
    await asyncio.gather(*(write(index, c, 1, TEXTS[: i + 3]) for i, c in enumerate(courses)))
    assert [await index.count(c, 1) for c in courses] == [3, 4, 5, 6]


async def test_reads_of_the_live_version_are_stable_while_building_next_and_dropping_previous(
    make_index: Any, course: str
) -> None:
    writer, dropper, reader = make_index(), None, None
    await write(writer, course, 1, TEXTS)
    await write(writer, course, 2, TEXTS)
    # separate objects (as separate Lambdas would be) sharing the same storage
    dropper = type(writer)(writer.uri, dimensions=DIMS, storage_options=writer.storage_options)
    reader = type(writer)(writer.uri, dimensions=DIMS, storage_options=writer.storage_options)
    query, vec = "kafka offset", embed("outbox kafka consumer")
    baseline = {
        m: await reader.search(course, 2, query=query, vector=vec, k=5, mode=m) for m in ("vector", "keyword", "hybrid")
    }
    assert all(baseline.values())
    done = asyncio.Event()
    reads = 0

    async def read_loop() -> None:
        nonlocal reads
        while not done.is_set():
            for mode, expected in baseline.items():
                got = await reader.search(course, 2, query=query, vector=vec, k=5, mode=mode)
                assert [(h.chunk, round(h.score, 5)) for h in got] == [(h.chunk, round(h.score, 5)) for h in expected]
            assert await reader.count(course, 2) == len(TEXTS)
            reads += 1

    async def change() -> None:
        try:
            await asyncio.gather(
                write(writer, course, 3, [t + " next" for t in TEXTS] * 40),
                dropper.drop_version(course, 1),
            )
        finally:
            done.set()

    await asyncio.gather(read_loop(), read_loop(), change())
    assert reads >= 2
    assert await reader.versions(course) == [2, 3]


async def test_writing_does_not_block_the_event_loop(index: Any, course: str) -> None:
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    # The rows and their vectors are made before the clock starts: that is the test's own CPU on the loop (0.65 s
    # under load once), not the index's.
    chunks = chunks_for(course, 1, [f"{TEXTS[i % 8]} {i}" for i in range(3000)])
    vectors = [embed(c.text) for c in chunks]
    query = embed("kafka")

    async def work() -> None:
        try:
            assert await index.write_version(course, 1, chunks, vectors) == len(chunks)
            await index.search(course, 1, query="kafka", vector=query, k=50)
        finally:
            stop.set()

    await asyncio.gather(ticker(), work())
    assert max(gaps) < 0.5, max(gaps)  # lenient: 2 shared cores; a blocking 3000-row write takes far longer


async def test_s3_without_conditional_puts_commits_through_dynamodb(moto_s3: str, course: str) -> None:
    """A store without If-None-Match (simulated: conditional puts disabled) works via s3+ddb:// (moto DynamoDB)."""
    import boto3

    from smartcourse.adapters.lance_index import LanceVectorIndex, s3_storage_options

    table = f"lance-commits-{uuid.uuid4().hex[:8]}"
    boto3.client(
        "dynamodb",
        endpoint_url=moto_s3,
        region_name="us-east-1",
        aws_access_key_id="moto",
        aws_secret_access_key="moto",
    ).create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "base_uri", "KeyType": "HASH"}, {"AttributeName": "version", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "base_uri", "AttributeType": "S"},
            {"AttributeName": "version", "AttributeType": "N"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    options = {
        **s3_storage_options(moto_s3, access_key_id="moto", secret_access_key="moto"),
        "aws_conditional_put": "disabled",
        "dynamodb_endpoint": moto_s3,
    }
    plain = LanceVectorIndex(f"s3://{BUCKET}/no-cas-{uuid.uuid4().hex[:8]}", dimensions=DIMS, storage_options=options)
    with pytest.raises(Exception, match="conditional put"):
        await write(plain, course, 1, TEXTS)
    index = LanceVectorIndex(
        f"s3+ddb://{BUCKET}/ddb-{uuid.uuid4().hex[:8]}?ddbTableName={table}", dimensions=DIMS, storage_options=options
    )
    await write(index, course, 1, TEXTS)
    await write(index, course, 1, TEXTS[:3])
    assert await index.count(course, 1) == 3
    hits = await index.search(course, 1, query="deadlock", vector=embed("postgres lock"), k=2)
    assert hits[0].chunk.chunk_id == "1-2"
    await index.drop_version(course, 1)
    assert await index.versions(course) == []


async def test_an_index_whose_storage_is_gone_is_unavailable_not_an_internal_error(tmp_path: Path, course: str) -> None:
    """explore40 F3: the index directory replaced (a failed mount) made course search answer 500 `internal_error`;
    it is 503 `index_unavailable` now, and the path is logged."""
    import shutil

    from smartcourse.adapters.lance_index import LanceVectorIndex
    from smartcourse.errors import Unavailable

    root = tmp_path / "lance"
    index = LanceVectorIndex(str(root), dimensions=DIMS)
    await write(index, course, 1, TEXTS)
    assert await index.search(course, 1, query="deadlock", vector=embed("postgres lock"), k=2)
    fresh = LanceVectorIndex(str(root), dimensions=DIMS)  # no handle cached: it reads the storage
    shutil.rmtree(root)
    root.write_text("x")
    with pytest.raises(Unavailable) as caught:
        await fresh.search(course, 1, query="deadlock", vector=embed("postgres lock"), k=2)
    assert caught.value.code == "index_unavailable" and caught.value.status_code == 503
