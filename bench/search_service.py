"""Course search through the service beside the bare index call: what `services.search` adds on top of LanceDB.

    .venv/bin/python bench/search_service.py                     # 2,000 chunks, half of them a material's
    .venv/bin/python bench/search_service.py --chunks 10000 --queries 300

`retrieve_version` keeps a material's hits only while their `content_chunks` rows are (a material deleted from
the live version leaves every process's search at the deletion's commit, not after another process's index
refresh: docs/search.md). That is one indexed PostgreSQL read per search that returns a material's hit. This
measures it: on the embedded PostgreSQL, one course whose chunks are in `content_chunks` and in a LanceDB
version, half of them a material's, queries alternate between the bare `VectorIndex.search` (the baseline) and
`retrieve_version`, per mode, and p50/p95 of each and of the difference are printed. The query vector comes from
a fixed random embedder (the model's time is the same on both sides and is not what is measured).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

DIMS = 384
WORDS = [f"word{i}" for i in range(2_000)]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


class FixedEmbedder:
    """A unit vector per query, from its hash: the same on both sides."""

    dimensions = DIMS

    async def embed_query(self, text: str) -> list[float]:
        rng = np.random.default_rng(abs(hash(text)) % 2**32)
        v = rng.standard_normal(DIMS)
        return list(v / np.linalg.norm(v))


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from smartcourse import config
    from smartcourse.adapters.lance_index import LanceVectorIndex
    from smartcourse.bootstrap import embedded_engines
    from smartcourse.db import UnitOfWork, make_engine
    from smartcourse.migrations import upgrade_head
    from smartcourse.models import Course, User
    from smartcourse.ports import Chunk
    from smartcourse.services import content_index, search

    data_dir = Path(tempfile.mkdtemp(prefix="bench-search-service-"))
    os.environ["SMARTCOURSE_DATA_DIR"] = str(data_dir)
    os.environ["SMARTCOURSE_ENV"] = "test"
    os.environ.pop("DATABASE_URL", None)
    config.get_settings.cache_clear()
    eng = embedded_engines(config.get_settings())
    try:
        url = eng.postgres_url()
        await asyncio.to_thread(upgrade_head, url)
        engine = make_engine(url, pool_size=2)
        sm = async_sessionmaker(engine, expire_on_commit=False)
        teacher, course_id = uuid.uuid4(), uuid.uuid4()
        rng = random.Random(3)
        chunks = [
            Chunk(
                chunk_id=f"{course_id}:v1:{i}",
                course_id=str(course_id),
                version=1,
                source_type="material" if i % 2 else "lesson",
                source_id=f"source-{i % 40}",
                title=f"Source {i % 40}",
                location="",
                text=" ".join(rng.choice(WORDS) for _ in range(60)),
                content_hash=f"{i:064d}",
                ordinal=i,
            )
            for i in range(args.chunks)
        ]
        async with sm() as s, s.begin():
            s.add(User(id=teacher, email=f"{teacher}@example.com", password_hash="x", full_name="T", role="instructor"))
            await s.flush()
            s.add(Course(id=course_id, instructor_id=teacher, title="Bench", category="bench", status="published"))
            await s.flush()
            s.add_all(content_index.chunk_rows(chunks, course_id, 1))
        embedder = FixedEmbedder()
        index = LanceVectorIndex(str(data_dir / "index"), dimensions=DIMS)
        vectors = [await embedder.embed_query(c.text) for c in chunks]
        await index.write_version(str(course_id), 1, chunks, vectors)
        container = SimpleNamespace(vector_index=lambda: index, embedder=lambda: embedder, uow=lambda: UnitOfWork(sm))
        queries = [" ".join(rng.choice(WORDS) for _ in range(3)) for _ in range(args.queries)]
        out: dict[str, Any] = {}
        for mode in ("keyword", "hybrid"):
            bare: list[float] = []
            service: list[float] = []
            with_material = 0
            for q in queries[:10]:  # warm both paths
                await index.search(str(course_id), 1, query=q, vector=None, k=args.k, mode="keyword")
                await search.retrieve_version(container, course_id=course_id, version=1, query=q, k=args.k, mode=mode)
            for q in queries:
                t = time.perf_counter()
                vector = await embedder.embed_query(q) if mode != "keyword" else None
                hits = await index.search(str(course_id), 1, query=q, vector=vector, k=args.k, mode=mode)
                bare.append((time.perf_counter() - t) * 1000)
                with_material += any(h.chunk.source_type == "material" for h in hits)
                t = time.perf_counter()
                await search.retrieve_version(container, course_id=course_id, version=1, query=q, k=args.k, mode=mode)
                service.append((time.perf_counter() - t) * 1000)
            added = [s - b for s, b in zip(service, bare, strict=True)]
            out[mode] = {
                "bare_index_ms": {"p50": round(pct(bare, 50), 2), "p95": round(pct(bare, 95), 2)},
                "retrieve_version_ms": {"p50": round(pct(service, 50), 2), "p95": round(pct(service, 95), 2)},
                "added_ms": {"p50": round(pct(added, 50), 2), "mean": round(statistics.mean(added), 2)},
                "queries_with_a_material_hit": with_material,
            }
        await engine.dispose()
    finally:
        eng.stop()
    return {"chunks": args.chunks, "queries": args.queries, "k": args.k, "modes": out, "load": os.getloadavg()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=2_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("-k", type=int, default=8)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    print(f"{args.chunks} chunks (half a material's), {args.queries} queries, k={args.k}; load {result['load']:.2f}")
    print("| mode | bare index p50 / p95 | retrieve_version p50 / p95 | added p50 / mean | with a material hit |")
    print("| --- | --- | --- | --- | --- |")
    for mode, r in result["modes"].items():
        b, s, a = r["bare_index_ms"], r["retrieve_version_ms"], r["added_ms"]
        print(
            f"| {mode} | {b['p50']} / {b['p95']} ms | {s['p50']} / {s['p95']} ms | {a['p50']} / {a['mean']} ms "
            f"| {r['queries_with_a_material_hit']} |"
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
