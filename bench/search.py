"""Search latency of LanceVectorIndex (vector, keyword, hybrid) beside a numpy brute-force baseline.

    .venv/bin/python bench/search.py                 # 1k, 10k, 100k chunks
    .venv/bin/python bench/search.py --sizes 1000,10000 --queries 50

Per size: build time of `write_version` (rows + BM25 indexes + IVF_FLAT when big enough), then p50/p95 of
`search` per mode and of a numpy dot-product top-k over the same in-memory vectors (the floor: no I/O, no
text). 384-dim random unit vectors (the worst case for an ANN index: no clusters), synthetic text drawn
from a Zipf-distributed vocabulary. Prints a Markdown table (and JSON with --json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from smartcourse.adapters.lance_index import LanceVectorIndex
from smartcourse.ports import Chunk

DIMS = 384
WORDS_PER_CHUNK = 60


def vocabulary(size: int = 5_000) -> list[str]:
    rng = np.random.default_rng(1)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    return ["".join(rng.choice(letters, size=int(rng.integers(4, 10)))) for _ in range(size)]


def corpus(n: int, vocab: list[str], rng: np.random.Generator) -> tuple[list[Chunk], np.ndarray]:
    ranks = np.arange(1, len(vocab) + 1)
    p = (1 / ranks) / (1 / ranks).sum()
    words = np.array(vocab)[rng.choice(len(vocab), size=(n, WORDS_PER_CHUNK), p=p)]
    course = str(uuid.uuid4())
    chunks = [
        Chunk(
            chunk_id=f"c{i}",
            course_id=course,
            version=1,
            source_type="lesson",
            source_id=f"lesson-{i // 20}",
            title=" ".join(words[i, :3]),
            location=f"Module {i // 200} > Lesson {i // 20}",
            text=" ".join(words[i]),
            content_hash=f"h{i}",
            ordinal=i,
        )
        for i in range(n)
    ]
    vectors = rng.standard_normal((n, DIMS), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return chunks, vectors


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


async def bench_size(n: int, queries: int, k: int, root: Path, nprobes: int) -> dict[str, Any]:
    rng = np.random.default_rng(n)
    vocab = vocabulary()
    chunks, vectors = corpus(n, vocab, rng)
    course = chunks[0].course_id
    index = LanceVectorIndex(str(root / f"size-{n}"), dimensions=DIMS, nprobes=nprobes)
    t0 = time.perf_counter()
    await index.write_version(course, 1, chunks, vectors)
    build = time.perf_counter() - t0

    qvecs = rng.standard_normal((queries + 3, DIMS), dtype=np.float32)
    qvecs /= np.linalg.norm(qvecs, axis=1, keepdims=True)
    # two mid-frequency words per query: matches a realistic share of the chunks
    qtexts = [" ".join(rng.choice(vocab[20:400], size=2)) for _ in range(queries + 3)]
    out: dict[str, Any] = {"rows": n, "build_s": round(build, 2)}

    def numpy_topk(q: np.ndarray) -> np.ndarray:
        scores = vectors @ q
        top = np.argpartition(-scores, k)[:k]
        return top[np.argsort(-scores[top])]

    lat: list[float] = []
    for i, q in enumerate(qvecs):
        t0 = time.perf_counter()
        numpy_topk(q)
        if i >= 3:  # warm-up
            lat.append(time.perf_counter() - t0)
    out["numpy"] = (pct(lat, 0.5), pct(lat, 0.95))

    recall: list[float] = []
    for mode in ("vector", "keyword", "hybrid"):
        lat = []
        for i, (q, text) in enumerate(zip(qvecs, qtexts, strict=True)):
            t0 = time.perf_counter()
            hits = await index.search(course, 1, query=text, vector=q.tolist(), k=k, mode=mode)  # type: ignore[arg-type]
            if i >= 3:
                lat.append(time.perf_counter() - t0)
                if mode == "vector":
                    exact = {f"c{j}" for j in numpy_topk(q)}
                    recall.append(len(exact & {h.chunk.chunk_id for h in hits}) / k)
        out[mode] = (pct(lat, 0.5), pct(lat, 0.95))
    out["vector_recall"] = round(statistics.mean(recall), 3)
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,100000", help="comma-separated chunk counts")
    parser.add_argument("--queries", type=int, default=60, help="timed queries per mode and size")
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--nprobes", type=int, default=LanceVectorIndex(".", dimensions=1).nprobes)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        # the first write of a process pays a one-time start-up (runtime, tokenizer): measured apart
        warm = LanceVectorIndex(str(Path(tmp) / "warm-up"), dimensions=DIMS)
        chunks, vectors = corpus(10, vocabulary(), np.random.default_rng(0))
        t0 = time.perf_counter()
        await warm.write_version(chunks[0].course_id, 1, chunks, vectors)
        print(json.dumps({"first_write_in_process_s": round(time.perf_counter() - t0, 2), "nprobes": args.nprobes}))
        for n in (int(s) for s in args.sizes.split(",")):
            row = await bench_size(n, args.queries, args.k, Path(tmp), args.nprobes)
            rows.append(row)
            print(json.dumps(row), flush=True)
    modes = ("vector", "keyword", "hybrid", "numpy")
    print(f"\n| chunks | build | {' | '.join(f'{m} p50 / p95' for m in modes)} | recall@{args.k} |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        cells = " | ".join(f"{r[m][0]:.1f} / {r[m][1]:.1f} ms" for m in modes)
        print(f"| {r['rows']:,} | {r['build_s']:.1f} s | {cells} | {r['vector_recall']:.2f} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
