"""Instructor generation from a course's indexed passages: summary, objectives, quiz, explanation.

Model output is parsed and validated strictly; invalid output is retried once, then refused as a whole."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from smartcourse.assistant import evidence, prompts
from smartcourse.assistant.schemas import GeneratedQuestion
from smartcourse.errors import Unavailable
from smartcourse.ports import ChatModel, Hit

ATTEMPTS = 2

# Bloom's taxonomy, revised (Anderson & Krathwohl): one verb per objective, from any level.
BLOOM_VERBS = frozenset(
    """remember recall recognize recognise list define identify name state describe explain summarize summarise
    classify compare contrast interpret illustrate paraphrase discuss apply use implement demonstrate execute
    solve calculate compute construct analyze analyse differentiate distinguish organize organise examine
    categorize categorise outline evaluate assess justify critique judge argue defend select prioritize
    prioritise create design develop formulate produce plan compose propose build write""".split()
)


class QuizDraft(BaseModel):
    """The whole generated quiz: every question valid, or none is accepted."""

    model_config = {"extra": "forbid"}

    questions: list[GeneratedQuestion] = Field(min_length=1, max_length=10)


def quiz_json_schema(n: int) -> dict[str, Any]:
    """The JSON schema the model is asked (and, where the server supports it, constrained) to follow."""
    question = {
        "type": "object",
        "properties": {
            "prompt": {"type": "string", "minLength": 3},
            "options": {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 2, "maxItems": 6},
            "answer": {"type": "integer", "minimum": 0},
            "source": {"type": "integer", "minimum": 1},
        },
        "required": ["prompt", "options", "answer", "source"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"questions": {"type": "array", "items": question, "minItems": n, "maxItems": n}},
        "required": ["questions"],
        "additionalProperties": False,
    }


class InvalidOutput(ValueError):
    """The model's output did not pass validation (the message says why)."""


def _json_object(text: str) -> Any:
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        raise InvalidOutput("no JSON object in the output")
    try:
        return json.loads(text[start : end + 1])
    except json.JSONDecodeError as exc:
        raise InvalidOutput(f"malformed JSON: {exc.msg}") from exc


def parse_quiz(text: str, *, n_questions: int, n_passages: int) -> list[GeneratedQuestion]:
    """Strictly validate a generated quiz: the schema, the count, and sources among the passages shown."""
    try:
        draft = QuizDraft.model_validate(_json_object(text))
    except ValidationError as exc:
        raise InvalidOutput("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from exc
    if len(draft.questions) != n_questions:
        raise InvalidOutput(f"expected {n_questions} questions, got {len(draft.questions)}")
    bad = [i for i, q in enumerate(draft.questions) if q.source > n_passages]
    if bad:
        raise InvalidOutput(f"questions {bad} cite a passage that was not shown")
    return draft.questions


def parse_objectives(text: str) -> list[str]:
    """One objective per line, each starting with a Bloom verb (list markers removed); at least one."""
    out = []
    for line in text.splitlines():
        item = re.sub(r"^\s*(?:[-*•]|\d+[.)])\s*", "", line).strip().rstrip(".")
        if not item:
            continue
        first = item.split()[0].lower().strip(":,")
        if first in BLOOM_VERBS and len(item.split()) >= 3:
            out.append(item[0].upper() + item[1:])
    if not out:
        raise InvalidOutput("no line starts with a Bloom verb")
    return out[:6]


def parse_grounded_text(text: str, n_passages: int) -> str:
    """Summary / explanation: non-empty, no system-prompt echo, no citation of an unshown passage."""
    body = text.strip()
    if len(body) < 20:
        raise InvalidOutput("the text is empty or too short")
    if evidence.leaks_prompt(body):
        raise InvalidOutput("the text repeats the instructions or the passages' markup")
    _, invalid = evidence.check_citations(body, n_passages)
    return evidence.strip_invalid(body, invalid) if invalid else body


@dataclass(frozen=True)
class Task:
    kind: str  # summary | objectives | quiz | explain
    instruction: str
    parse: Callable[[str], Any]
    max_tokens: int
    json_schema: dict[str, Any] | None = None


def summary_task(n_passages: int) -> Task:
    return Task(
        "summary",
        "Summarise these passages for a student in 3 to 5 sentences. Cite passages like [1].",
        lambda text: parse_grounded_text(text, n_passages),
        200,
    )


def objectives_task() -> Task:
    return Task(
        "objectives",
        "Write 3 to 5 learning objectives for these passages, one per line. Start each line with a verb "
        "such as Explain, Describe, Compare, Apply, Identify or Evaluate.",
        parse_objectives,
        160,
    )


def quiz_task(n_questions: int, n_passages: int) -> Task:
    example = {"questions": [{"prompt": "…?", "options": ["…", "…", "…"], "answer": 0, "source": 1}]}
    return Task(
        "quiz",
        f"Write {n_questions} multiple-choice questions testing these passages. Reply with JSON only, like "
        f"{json.dumps(example, ensure_ascii=False)}: 2 to 6 options, `answer` is the index of the correct "
        "option, `source` the passage number the question comes from.",
        lambda text: parse_quiz(text, n_questions=n_questions, n_passages=n_passages),
        120 * n_questions + 60,
        quiz_json_schema(n_questions),
    )


def explain_task(concept: str, level: str, n_passages: int) -> Task:
    return Task(
        "explain",
        f"Explain the concept “{prompts.neutralise(concept)}” to a {level} student in 2 to 4 sentences, using "
        "only these passages. Cite passages like [1].",
        lambda text: parse_grounded_text(text, n_passages),
        200,
    )


async def _attempt(chat: ChatModel, task: Task, passages: Sequence[Hit], retry_note: str | None) -> AsyncIterator[str]:
    messages = prompts.generator_messages(task.instruction + (f"\n{retry_note}" if retry_note else ""), passages)
    complete_json = getattr(chat, "stream_json", None)
    if task.json_schema is not None and complete_json is not None:
        stream = complete_json(messages, schema=task.json_schema, max_tokens=task.max_tokens)
    else:
        stream = chat.stream(messages, max_tokens=task.max_tokens, temperature=0.2)
    async for piece in stream:
        yield piece


async def run(
    chat: ChatModel, task: Task, passages: Sequence[Hit], on_token: Callable[[str], Any] | None = None
) -> Any:
    """Generate and validate; retried once with the reason, then Unavailable `ai_output_invalid`."""
    reason: str | None = None
    for attempt in range(1, ATTEMPTS + 1):
        note = f"Your previous reply was invalid ({reason}). Follow the format exactly." if reason else None
        parts = []
        async for piece in _attempt(chat, task, passages, note):
            parts.append(piece)
            if on_token is not None:
                on_token(piece)
        try:
            return task.parse("".join(parts))
        except InvalidOutput as exc:
            reason = str(exc)[:300]
            if on_token is not None and attempt < ATTEMPTS:
                on_token("\n")
    raise Unavailable(
        f"the model's {task.kind} did not pass validation twice; nothing was saved",
        code="ai_output_invalid",
        details={"reason": reason},
    )
