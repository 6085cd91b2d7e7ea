"""Embedders: the real local ONNX model, the OpenAI-compatible adapter on a fake server, and the vector cache."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import httpx
import numpy as np
import pytest

from smartcourse.adapters.embedders import (
    CachedEmbedder,
    OnnxMiniLMEmbedder,
    OpenAIEmbedder,
    build_embedder,
    local_embedder,
)
from smartcourse.content.chunk import chunk_sections, embedding_text
from smartcourse.content.extract import Section
from smartcourse.ports import Chunk, Embedder


@pytest.fixture(scope="module")
def onnx() -> OnnxMiniLMEmbedder:
    return OnnxMiniLMEmbedder(batch_size=4)


def _cos(a: Sequence[float], b: Sequence[float]) -> float:
    return float(np.dot(a, b))


# --- local ONNX ------------------------------------------------------------------------------------


async def test_onnx_vectors_are_384_dimensional_unit_vectors(onnx: OnnxMiniLMEmbedder) -> None:
    vectors = await onnx.embed_documents(["The outbox relay publishes events.", "Bonjour", ""])
    assert onnx.dimensions == 384 and onnx.name == "all-MiniLM-L6-v2-int8"
    assert [len(v) for v in vectors] == [384, 384, 384]
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert await onnx.embed_documents([]) == []


async def test_onnx_paraphrase_is_closer_than_an_unrelated_sentence(onnx: OnnxMiniLMEmbedder) -> None:
    query = await onnx.embed_query("How do I make sure no event is lost when the database commits?")
    para, other = await onnx.embed_documents(
        [
            "The transactional outbox writes events in the same database transaction, so none are lost.",
            "Preheat the oven to 200 degrees and bake the bread for forty minutes.",
        ]
    )
    assert _cos(query, para) > _cos(query, other) + 0.2


async def test_onnx_batches_give_the_same_vectors_as_singles(onnx: OnnxMiniLMEmbedder) -> None:
    texts = ["short", "a considerably longer sentence about Kafka partitions and keys " * 3, "medium text here", "x y"]
    batched = await onnx.embed_documents(texts)  # batch_size=4, sorted by length inside
    singles = [await onnx.embed_query(t) for t in texts]
    assert np.allclose(batched, singles, atol=1e-4)
    assert np.allclose((await OnnxMiniLMEmbedder(batch_size=3).embed_documents(texts))[1], singles[1], atol=1e-4)


async def test_onnx_truncates_long_inputs(onnx: OnnxMiniLMEmbedder) -> None:
    runtime = onnx.runtime()
    assert len(runtime.tokenizer.encode("word " * 2000).ids) == 256
    assert runtime is OnnxMiniLMEmbedder(batch_size=16).runtime()  # one session per process
    (vector,) = await onnx.embed_documents(["word " * 2000])
    assert len(vector) == 384


async def test_onnx_does_not_block_the_event_loop(onnx: OnnxMiniLMEmbedder) -> None:
    await onnx.embed_query("warm up")
    texts = [f"Passage {i} about idempotent consumers and redelivered messages in Kafka. " * 4 for i in range(128)]
    gaps: list[float] = []
    done = asyncio.Event()

    async def tick() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    start = time.perf_counter()
    await onnx.embed_documents(texts)
    elapsed = time.perf_counter() - start
    done.set()
    await ticker
    assert elapsed > 0.3, "the work must be long enough for the check to mean something"
    assert len(gaps) > 10 and max(gaps) < elapsed / 2


# --- OpenAI-compatible ------------------------------------------------------------------------------


def _fake_openai(dim: int) -> tuple[httpx.AsyncClient, list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append({"path": request.url.path, "body": body, "auth": request.headers.get("authorization")})
        data = [
            {"object": "embedding", "index": i, "embedding": [float(len(text)), 1.0] + [0.0] * (dim - 2)}
            for i, text in enumerate(body["input"] if isinstance(body["input"], list) else [body["input"]])
        ]
        return httpx.Response(200, json={"object": "list", "data": data, "model": body["model"], "usage": {}})

    return httpx.AsyncClient(transport=httpx.MockTransport(handler)), seen


async def test_a_failing_embeddings_endpoint_is_named_in_the_log(caplog: pytest.LogCaptureFixture) -> None:
    """explore18 F13: "APIConnectionError: Connection error." said neither which server nor which model."""

    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"error": {"message": "overloaded"}})

    import openai
    from langchain_openai import OpenAIEmbeddings
    from pydantic import SecretStr

    langchain = OpenAIEmbeddings(
        model="local-embed",
        base_url="http://embed.test/v1",
        api_key=SecretStr("k"),
        max_retries=0,
        check_embedding_ctx_length=False,
        http_async_client=httpx.AsyncClient(transport=httpx.MockTransport(refuse)),
    )
    embedder = OpenAIEmbedder(model="local-embed", base_url="http://embed.test/v1", client=langchain)
    with caplog.at_level("WARNING", logger="smartcourse.adapters.embedders"), pytest.raises(openai.APIStatusError):
        await embedder.embed_query("q")
    (line,) = [r.getMessage() for r in caplog.records if "embeddings endpoint" in r.getMessage()]
    assert "http://embed.test/v1" in line and "local-embed" in line


async def test_openai_embedder_sends_text_batches_and_normalises() -> None:
    client, seen = _fake_openai(8)
    embedder = OpenAIEmbedder(
        model="local-embed", base_url="http://embed.test/v1", api_key="k", batch_size=2, http_async_client=client
    )
    assert embedder.dimensions == 0  # unknown model: discovered on the first call
    vectors = await embedder.embed_documents(["abc", "de", "f"])
    assert embedder.name == "local-embed" and embedder.dimensions == 8
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert vectors[0][0] > vectors[2][0]  # the fake encodes the length: order is kept
    assert [len(s["body"]["input"]) for s in seen] == [2, 1]  # batch_size per request
    assert all(s["path"] == "/v1/embeddings" and s["auth"] == "Bearer k" for s in seen)
    assert seen[0]["body"]["input"] == ["abc", "de"] and seen[0]["body"]["model"] == "local-embed"  # text, not ids
    assert len(await embedder.embed_query("q")) == 8
    assert OpenAIEmbedder(model="text-embedding-3-small", http_async_client=client).dimensions == 1536


def test_build_embedder_picks_by_settings() -> None:
    local = SimpleNamespace(
        embeddings_base_url=None, embeddings_model="m", embeddings_api_key=None, embeddings_batch_size=8
    )
    remote = SimpleNamespace(**{**vars(local), "embeddings_base_url": "http://embed.test/v1"})
    assert build_embedder(local) is local_embedder()  # type: ignore[arg-type]
    assert isinstance(build_embedder(local), OnnxMiniLMEmbedder)  # type: ignore[arg-type]
    made = build_embedder(remote)  # type: ignore[arg-type]
    assert isinstance(made, OpenAIEmbedder) and made.name == "m"


# --- cache --------------------------------------------------------------------------------------------


class FakeCache:
    """EmbeddingCacheStore in memory."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], list[float]] = {}

    async def get_many(self, model: str, hashes: Sequence[str]) -> dict[str, list[float]]:
        return {h: self.rows[(model, h)] for h in hashes if (model, h) in self.rows}

    async def put_many(self, model: str, vectors: dict[str, list[float]]) -> None:
        for h, v in vectors.items():
            self.rows.setdefault((model, h), v)


class CountingEmbedder:
    name = "counting"
    dimensions = 3

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls.append(list(texts))
        return [[float(len(t)), 1.0, 0.0] for t in texts]

    async def embed_query(self, text: str) -> list[float]:
        return (await self.embed_documents([text]))[0]


def _chunks(*texts: str, version: int = 1) -> list[Chunk]:
    sections = [Section("lesson", f"l{i}", "Lesson", f"M > Lesson {i}", t) for i, t in enumerate(texts)]
    return chunk_sections(sections, course_id="c", version=version)


async def test_cached_embedder_embeds_only_misses() -> None:
    inner, cache = CountingEmbedder(), FakeCache()
    embedder = CachedEmbedder(inner, cache)
    first = _chunks("alpha", "beta", "gamma")
    vectors, stats = await embedder.embed_chunks(first)
    assert stats == {"embedded": 3, "cached": 0, "repeated": 0}
    assert inner.calls == [[embedding_text(c) for c in first]]
    # the next version changes one text; the others come from the cache
    second = _chunks("alpha", "beta (edited)", "gamma", version=2)
    again, stats = await embedder.embed_chunks(second)
    assert stats == {"embedded": 1, "cached": 2, "repeated": 0}
    assert inner.calls[1] == [embedding_text(second[1])]
    assert again[0] == vectors[0] and again[2] == vectors[2]
    assert again[1] == (await inner.embed_documents([embedding_text(second[1])]))[0]
    # duplicates inside one call are embedded once; another model name does not share entries
    dup = _chunks("same", "same")
    dup = [dup[0], Chunk(**{**vars(dup[1]), "location": dup[0].location, "content_hash": dup[0].content_hash})]
    _, stats = await embedder.embed_chunks(dup)
    assert stats == {"embedded": 1, "cached": 0, "repeated": 1}
    other = CountingEmbedder()
    other.name = "other"
    _, stats = await CachedEmbedder(other, cache).embed_chunks(first)
    assert stats == {"embedded": 3, "cached": 0, "repeated": 0}
    assert await embedder.embed_chunks([]) == ([], {"embedded": 0, "cached": 0, "repeated": 0})


async def test_cached_embedder_satisfies_the_port() -> None:
    port: Embedder = CachedEmbedder(CountingEmbedder(), FakeCache())
    assert port.name == "counting" and port.dimensions == 3
    assert await port.embed_query("abcd") == [4.0, 1.0, 0.0]


async def test_openai_embedder_builds_its_client_on_the_first_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """The recommendations' zip Lambda functions read the embedder's name only: their layer has no
    langchain-openai, so building the embedder must not import it."""
    monkeypatch.setitem(sys.modules, "langchain_openai", None)  # as absent as in the layer
    embedder = OpenAIEmbedder(model="text-embedding-3-small", base_url="http://embed.test/v1")
    assert embedder.name == "text-embedding-3-small" and embedder.dimensions == 1536
    with pytest.raises(ImportError):
        await embedder.embed_query("q")
