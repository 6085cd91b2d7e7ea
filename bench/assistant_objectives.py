"""How often the embedded model's learning objectives pass validation: asked as lines (before) or as constrained
JSON (what `POST /ai/generate-objectives` asks now), side by side in one run (docs/assistant.md).

    .venv/bin/python bench/assistant_objectives.py [--runs 8] [--course bench|readme] [--json FILE]

Starts the embedded llama.cpp server (SmolLM2-135M) on a free port unless LLM_BASE_URL is set (then LLM_MODEL,
LLM_API_KEY apply). Each run calls `generation.run` as the endpoint does (its retry included) once per variant,
alternating which goes first:

* `lines`: the previous task: "one per line", plain text, 160 output tokens;
* `json`: `generation.objectives_task(passages)`: `{"objectives": [...]}` under its JSON schema.

One JSON line a call, then a summary per variant (generated, objectives kept, attempts, tokens, seconds); measures,
asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "layers" / "common" / "python"), str(REPO)]

from bench.assistant_quiz import COURSES, chat_model, passages  # noqa: E402
from smartcourse.adapters.chat import OpenAIChatModel  # noqa: E402
from smartcourse.assistant import generation, usage  # noqa: E402
from smartcourse.errors import Unavailable  # noqa: E402
from smartcourse.ports import Hit  # noqa: E402


def tasks(hits: list[Hit]) -> dict[str, generation.Task]:
    lines = generation.Task(
        "objectives",
        "Write 3 to 5 learning objectives for these passages, one per line. Start each line with a verb "
        "such as Explain, Describe, Compare, Apply, Identify or Evaluate.",
        # Today's check of an item, so that the two differ only in how the model is asked.
        lambda text: generation.parse_objectives(text, hits),
        160,
    )
    return {"lines": lines, "json": generation.objectives_task(hits)}


async def one(chat: OpenAIChatModel, hits: list[Hit], variant: str) -> dict[str, Any]:
    started = time.perf_counter()
    resets: list[int] = []
    row: dict[str, Any] = {"variant": variant}
    with usage.metered() as meter:
        try:
            out = await generation.run(chat, tasks(hits)[variant], hits, on_reset=resets.append)
            row.update(result="generated", objectives=out)
        except Unavailable as exc:
            row.update(result=exc.code, reason=(exc.details or {}).get("reason"))
    row.update(
        attempts=1 + len(resets),
        tokens_out=meter.tokens_out,
        seconds=round(time.perf_counter() - started, 1),
    )
    return row


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    made = [r for r in rows if r["result"] == "generated"]
    return {
        "calls": len(rows),
        "generated": len(made),
        "objectives_mean": round(statistics.fmean(len(r["objectives"]) for r in made), 1) if made else 0,
        "attempts_mean": round(statistics.fmean(r["attempts"] for r in rows), 2),
        "tokens_out_median": statistics.median(r["tokens_out"] for r in rows),
        "seconds_median": statistics.median(r["seconds"] for r in rows),
    }


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--course", choices=sorted(COURSES), default="bench")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    rows: dict[str, list[dict[str, Any]]] = {"lines": [], "json": []}
    with chat_model() as (chat, model):
        hits = passages(args.course)
        for run in range(args.runs):
            order = ["lines", "json"] if run % 2 == 0 else ["json", "lines"]
            for variant in order:
                row = {"run": run, "course": args.course, **await one(chat, hits, variant)}
                print(json.dumps(row, ensure_ascii=False), flush=True)
                rows[variant].append(row)
    result = {variant: summary(r) for variant, r in rows.items()}
    print(json.dumps({"model": model, "course": args.course, "summary": result}, indent=1))
    if args.json:
        report = {"model": model, "summary": result, "runs": rows}
        args.json.write_text(json.dumps(report, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    asyncio.run(main())
