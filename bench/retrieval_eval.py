"""Retrieval quality on our own evaluation set: hit@1, hit@5 and MRR@10 for hybrid, vector-only and keyword-only.

Uses the product's own pieces — the chunker, the local embedder, the LanceDB index — on the passages of
`bench/data/retrieval_eval.json` (one lesson each, all in one course, as a student would search them) and
asks every question in each mode. Keyword and paraphrase questions are reported separately.

    .venv/bin/python bench/retrieval_eval.py [--data bench/data/retrieval_eval.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


async def evaluate(data_path: Path) -> dict[str, dict[str, float]]:
    from smartcourse.adapters.embedders import local_embedder
    from smartcourse.adapters.lance_index import LanceVectorIndex
    from smartcourse.content.chunk import chunk_sections, embedding_text
    from smartcourse.content.extract import Section

    data = json.loads(await asyncio.to_thread(data_path.read_text))
    sections = [
        Section(source_type="lesson", source_id=p["id"], title=p["title"], location=p["title"], text=p["text"])
        for p in data["passages"]
    ]
    course_id = "00000000-0000-0000-0000-00000000e7a1"
    chunks = chunk_sections(sections, course_id=course_id, version=1)
    embedder = local_embedder()
    vectors = await embedder.embed_documents([embedding_text(c) for c in chunks])
    index = LanceVectorIndex(tempfile.mkdtemp(prefix="retrieval-eval-"), dimensions=embedder.dimensions)
    await index.write_version(course_id, 1, chunks, vectors)

    results: dict[str, dict[str, float]] = {}
    for mode in ("hybrid", "vector", "keyword"):
        for kind in ("keyword", "paraphrase", "all"):
            qs = [q for q in data["questions"] if kind == "all" or q["kind"] == kind]
            hit1 = hit5 = rr = 0.0
            latencies = []
            for q in qs:
                t = time.perf_counter()
                vector = await embedder.embed_query(q["q"]) if mode != "keyword" else None
                hits = await index.search(course_id, 1, query=q["q"], vector=vector, k=10, mode=mode)  # type: ignore[arg-type]
                latencies.append(time.perf_counter() - t)
                ranked = [h.chunk.source_id for h in hits]
                if ranked[:1] == [q["expect"]]:
                    hit1 += 1
                if q["expect"] in ranked[:5]:
                    hit5 += 1
                if q["expect"] in ranked[:10]:
                    rr += 1 / (ranked.index(q["expect"]) + 1)
            n = len(qs)
            latencies.sort()
            results[f"{mode}/{kind}"] = {
                "n": n,
                "hit@1": hit1 / n,
                "hit@5": hit5 / n,
                "mrr@10": rr / n,
                "p50_ms": 1000 * latencies[n // 2],
            }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO / "bench" / "data" / "retrieval_eval.json")
    args = parser.parse_args()
    results = asyncio.run(evaluate(args.data))
    print(f"{'mode/questions':<22} {'n':>3} {'hit@1':>6} {'hit@5':>6} {'MRR@10':>7} {'p50 ms':>7}")
    for name, r in results.items():
        print(f"{name:<22} {r['n']:>3} {r['hit@1']:>6.2f} {r['hit@5']:>6.2f} {r['mrr@10']:>7.3f} {r['p50_ms']:>7.1f}")


if __name__ == "__main__":
    main()
