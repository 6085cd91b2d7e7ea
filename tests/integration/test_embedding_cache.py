"""The embedding cache on the suite's PostgreSQL (the cached embedder's unit tests use a fake cache)."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np

from smartcourse.adapters.embedders import CachedEmbedder, PostgresEmbeddingCache
from tests.unit.test_embedders import CountingEmbedder, _chunks


async def test_postgres_embedding_cache_roundtrip(container: Any) -> None:
    cache = PostgresEmbeddingCache(container.sessionmaker)
    model = f"test-model-{uuid.uuid4().hex[:8]}"
    vectors = {f"{i:064x}": [i + 0.5, -1.25, 3.0e-3] for i in range(1500)}  # over one statement's batch
    await cache.put_many(model, vectors)
    await cache.put_many(model, {f"{0:064x}": [9.0, 9.0, 9.0]})  # a conflict is ignored, not an error
    got = await cache.get_many(model, [*vectors, "f" * 64])
    assert set(got) == set(vectors)
    assert np.allclose(got[f"{0:064x}"], [0.5, -1.25, 3.0e-3])
    assert np.allclose(got[f"{1499:064x}"], [1499.5, -1.25, 3.0e-3])
    assert await cache.get_many("another-model", list(vectors)[:3]) == {}
    embedder = CachedEmbedder(CountingEmbedder(), cache)
    embedder.inner.name = model  # type: ignore[misc]
    chunks = _chunks("persisted text")
    _, first = await embedder.embed_chunks(chunks)
    _, second = await embedder.embed_chunks(chunks)
    assert (first, second) == ({"embedded": 1, "cached": 0, "repeated": 0}, {"embedded": 0, "cached": 1, "repeated": 0})
