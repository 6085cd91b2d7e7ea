"""How many tokens the embedded model's quizzes take, and how often they pass validation (docs/assistant.md).

    .venv/bin/python bench/assistant_quiz.py [--questions 3] [--runs 6] [--course readme|bench] [--raw] [--json FILE]

Starts the embedded llama.cpp server (SmolLM2-135M, `smartcourse.assistant.llm_server`) on a free port unless
LLM_BASE_URL is set (then LLM_MODEL, LLM_API_KEY apply). The passages are built here, shaped as the live index's
chunks (no database): `readme` is the README quick-start course's lesson, `bench` the first four lessons of
bench/assistant.py's COURSE (what `POST /ai/generate-quiz` shows the model: the first chunk of up to four sources).

* --raw: one reply a run, with `max_tokens` 3000 so that nothing is cut: tokens out, and whether `parse_quiz` takes it;
* otherwise `generation.run` as the endpoint calls it (the shipped budget, the retry): generated or
  `ai_output_invalid`, attempts, tokens, seconds.

One JSON line a run to stdout (and the list to --json FILE); measures, asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "layers" / "common" / "python"), str(REPO)]

from bench.assistant import COURSE  # noqa: E402
from smartcourse.adapters.chat import OpenAIChatModel  # noqa: E402
from smartcourse.assistant import generation, llm_server, prompts, usage  # noqa: E402
from smartcourse.errors import Unavailable  # noqa: E402
from smartcourse.ports import Chunk, Hit, OutputTruncated  # noqa: E402

COURSES = {
    "readme": [("Why an outbox", "# Why\nState and events commit together.")],
    "bench": COURSE[:4],
}


def passages(course: str) -> list[Hit]:
    return [
        Hit(
            chunk=Chunk(
                chunk_id=f"c{i}",
                course_id="bench",
                version=1,
                source_type="lesson",
                source_id=f"lesson-{i}",
                title=title,
                location=f"Foundations > {title}",
                text=text,
                content_hash=f"h{i}",
            ),
            score=1.0,
        )
        for i, (title, text) in enumerate(COURSES[course])
    ]


def start_embedded() -> tuple[str, subprocess.Popen[bytes]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path[:2])}
    argv = [sys.executable, "-m", "smartcourse.assistant.llm_server", "--port", str(port)]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                if r.status == 200:
                    return f"http://127.0.0.1:{port}/v1", proc
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("the embedded model server did not become healthy")


@contextlib.contextmanager
def chat_model() -> Iterator[tuple[OpenAIChatModel, str]]:
    """The model a bench talks to, and its name: LLM_BASE_URL's (with LLM_MODEL, LLM_API_KEY), else the embedded
    server, started here and stopped when the block ends."""
    proc = None
    base_url = os.environ.get("LLM_BASE_URL")
    model = os.environ.get("LLM_MODEL", llm_server.MODEL_NAME)
    if not base_url:
        base_url, proc = start_embedded()
    try:
        yield OpenAIChatModel(base_url=base_url, model=model, api_key=os.environ.get("LLM_API_KEY"), timeout=600), model
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)


async def one(chat: OpenAIChatModel, hits: list[Hit], n: int, raw: bool) -> dict[str, Any]:
    task = generation.quiz_task(n, len(hits), hits)
    started = time.perf_counter()
    row: dict[str, Any] = {"questions": n, "budget": task.max_tokens}
    with usage.metered() as meter:
        if raw:
            parts: list[str] = []
            messages = prompts.generator_messages(task.instruction, hits)
            try:
                async for piece in chat.stream_json(messages, schema=task.json_schema or {}, max_tokens=3000):
                    parts.append(piece)
                task.parse("".join(parts))
                row["result"] = "valid"
            except (generation.InvalidOutput, OutputTruncated) as exc:
                row["result"] = f"invalid: {exc}"[:200]
            row["text"] = "".join(parts)
        else:
            resets: list[int] = []
            try:
                quiz = await generation.run(chat, task, hits, on_reset=resets.append)
                row.update(result="generated", quiz=[q.model_dump() for q in quiz])
            except Unavailable as exc:
                row.update(result=exc.code, message=exc.message)
            row["attempts"] = 1 + len(resets)
    row.update(tokens_in=meter.tokens_in, tokens_out=meter.tokens_out, seconds=round(time.perf_counter() - started, 1))
    return row


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=int, default=3)
    ap.add_argument("--runs", type=int, default=6)
    ap.add_argument("--course", choices=sorted(COURSES), default="readme")
    ap.add_argument("--raw", action="store_true", help="one uncut reply a run instead of the endpoint's generation")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    with chat_model() as (chat, model):
        rows = []
        hits = passages(args.course)
        for run in range(args.runs):
            row = {"run": run, "course": args.course, **await one(chat, hits, args.questions, args.raw)}
            print(json.dumps(row, ensure_ascii=False), flush=True)
            rows.append(row)
    if args.json:
        args.json.write_text(json.dumps({"model": model, "raw": args.raw, "runs": rows}, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    asyncio.run(main())
