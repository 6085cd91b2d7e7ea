"""Instructor generation from a course's indexed passages: summary, objectives, quiz, explanation.

Model output is parsed and validated strictly; invalid output is retried once, then refused as a whole."""

from __future__ import annotations

import html
import json
import logging
import re
import unicodedata
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from smartcourse.assistant import evidence, prompts
from smartcourse.assistant.schemas import GeneratedQuestion
from smartcourse.assistant.text import sentences
from smartcourse.errors import Unavailable
from smartcourse.ports import ChatModel, Hit, OutputTruncated

log = logging.getLogger(__name__)

ATTEMPTS = 2
RETRY_BUDGET = 2  # a reply cut off at the output limit is retried with this many times the tokens

# Bloom's taxonomy, revised (Anderson & Krathwohl): one verb per objective, from any level.
BLOOM_VERBS = frozenset(
    """remember recall recognize recognise list define identify name state describe explain summarize summarise
    classify compare contrast interpret illustrate paraphrase discuss apply use implement demonstrate execute
    solve calculate compute construct analyze analyse differentiate distinguish organize organise examine
    categorize categorise outline evaluate assess justify critique judge argue defend select prioritize
    prioritise create design develop formulate produce plan compose propose build write""".split()
)
#: The same verbs as objectives start them in French, Spanish, Portuguese, Italian and German (the infinitive): a
#: course in one of these gets objectives in its language (explore7 F2: every French objective was refused).
BLOOM_VERBS_OTHER = frozenset(
    """citer définir décrire énumérer expliquer identifier lister nommer reconnaître résumer classer classifier
    comparer distinguer illustrer interpréter appliquer calculer construire démontrer résoudre utiliser analyser
    différencier examiner organiser argumenter critiquer évaluer juger justifier sélectionner choisir concevoir
    créer développer formuler planifier produire proposer rédiger
    definir describir enumerar explicar identificar listar nombrar reconocer resumir clasificar comparar
    interpretar ilustrar aplicar calcular construir demostrar resolver usar utilizar analizar diferenciar
    distinguir examinar organizar criticar evaluar juzgar justificar seleccionar crear diseñar desarrollar
    formular planificar producir proponer redactar
    descrever nomear reconhecer classificar demonstrar analisar avaliar julgar selecionar criar projetar
    desenvolver planejar produzir propor redigir
    definire descrivere elencare identificare nominare riconoscere riassumere spiegare classificare confrontare
    illustrare interpretare applicare calcolare costruire dimostrare risolvere usare utilizzare analizzare
    differenziare distinguere esaminare organizzare criticare giudicare giustificare valutare selezionare creare
    formulare pianificare produrre progettare proporre redigere sviluppare
    aufzählen benennen beschreiben definieren erklären erkennen identifizieren nennen zusammenfassen
    klassifizieren vergleichen interpretieren veranschaulichen anwenden berechnen demonstrieren konstruieren lösen
    nutzen verwenden analysieren unterscheiden untersuchen organisieren beurteilen bewerten begründen kritisieren
    auswählen entwerfen entwickeln erstellen formulieren planen verfassen""".split()
)


class QuizDraft(BaseModel):
    """The whole generated quiz: every question valid, or none is accepted."""

    model_config = {"extra": "forbid"}

    questions: list[GeneratedQuestion] = Field(min_length=1, max_length=10)


#: What the model is asked for (validation accepts 2-6 options, prompts up to 500 and options up to 200 characters:
#: `GeneratedQuestion`). Exactly three options, so the schema can bound `answer` by them: with up to six, the local
#: SmolLM2-135M filled every slot with repeats (options must be distinct) and named options it had not written.
QUIZ_OPTIONS = 3
QUIZ_PROMPT_CHARS = 200
QUIZ_OPTION_CHARS = 100
#: The output budget of a quiz: 180 tokens a question + 40 (measured on the embedded model; docs/assistant.md).
QUIZ_TOKENS_PER_QUESTION = 180
QUIZ_TOKENS_OVERHEAD = 40


def quiz_json_schema(n: int, n_passages: int | None = None) -> dict[str, Any]:
    """The JSON schema the model is asked (and, where the server supports it, constrained) to follow."""
    source: dict[str, Any] = {"type": "integer", "minimum": 1}
    if n_passages:
        source["maximum"] = n_passages
    option = {"type": "string", "minLength": 1, "maxLength": QUIZ_OPTION_CHARS}
    question = {
        "type": "object",
        "properties": {
            "prompt": {"type": "string", "minLength": 3, "maxLength": QUIZ_PROMPT_CHARS},
            "options": {"type": "array", "items": option, "minItems": QUIZ_OPTIONS, "maxItems": QUIZ_OPTIONS},
            "answer": {"type": "integer", "minimum": 0, "maximum": QUIZ_OPTIONS - 1},
            "source": source,
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


def _unescaped(data: Any) -> Any:
    """The quiz with HTML entities in its prompts and options decoded ("A &gt; B" → "A > B"): the passages reach the
    model HTML-escaped, and it copies the entities."""
    if isinstance(data, dict) and isinstance(data.get("questions"), list):
        for q in data["questions"]:
            if not isinstance(q, dict):
                continue
            if isinstance(q.get("prompt"), str):
                q["prompt"] = html.unescape(q["prompt"])
            if isinstance(q.get("options"), list):
                q["options"] = [html.unescape(o) if isinstance(o, str) else o for o in q["options"]]
    return data


def _same_text(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def parse_quiz(text: str, *, n_questions: int, n_passages: int) -> list[GeneratedQuestion]:
    """Strictly validate a generated quiz: the schema, the count, sources among the passages shown, and no question
    asked twice (entities in the text are decoded first)."""
    try:
        draft = QuizDraft.model_validate(_unescaped(_json_object(text)))
    except ValidationError as exc:
        raise InvalidOutput("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from exc
    if len(draft.questions) != n_questions:
        raise InvalidOutput(f"expected {n_questions} questions, got {len(draft.questions)}")
    bad = [i for i, q in enumerate(draft.questions) if q.source > n_passages]
    if bad:
        raise InvalidOutput(f"questions {bad} cite a passage that was not shown")
    prompts_seen = [_same_text(q.prompt) for q in draft.questions]
    if len(set(prompts_seen)) != len(prompts_seen):
        raise InvalidOutput("two questions have the same prompt")
    return draft.questions


#: HTML tags and Markdown's bold/italic markers, which the model sometimes wraps an objective's line in.
_INLINE_MARKUP = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>|\*\*|__|(?<!\w)\*(?=\S)|(?<=\S)\*(?!\w)")


#: An objective's line that talks about the text it was drawn from rather than what a student will do.
_ABOUT_THE_PASSAGE = re.compile(r"\b(?:the|this|these)\s+passages?\b", re.IGNORECASE)


def parse_objectives(text: str) -> list[str]:
    """One objective per line, each starting with a Bloom verb (list markers removed), in English or in one of the
    languages of `BLOOM_VERBS_OTHER`; at least one."""
    out = []
    for line in text.splitlines():
        # Inline markup around or inside the line ("<mark>1. Explain …</mark>", "**1. Explain** …") is not the
        # objective's: it hid the list marker and the verb (explore42 F3: 5 of 8 calls refused).
        line = _INLINE_MARKUP.sub("", line)
        item = re.sub(r"^\s*(?:[-*•]|\d+[.)])\s*", "", line).strip().rstrip(".")
        if not item:
            continue
        head = item.split()[0]
        first = unicodedata.normalize("NFC", head.casefold().strip(":,"))
        # "Explain: The passage describes …" is prose under a label, not an objective (explore43 N2).
        labelled = head.endswith(":") or _ABOUT_THE_PASSAGE.search(item) is not None
        if (first in BLOOM_VERBS or first in BLOOM_VERBS_OTHER) and len(item.split()) >= 3 and not labelled:
            out.append(item[0].upper() + item[1:])
    if not out:
        raise InvalidOutput("no line starts with a Bloom verb")
    return out[:6]


MAX_REPEATS = evidence.MAX_REPEATS


_LIST_LINE = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s")


def _without_unfinished_end(body: str) -> str:
    """The text without a stray closing code fence and without a last sentence cut off in the middle ("… the
    limpets, which are": explore17 F8, seen below the output limit too, where the ask's `cut` rule does not look).
    A list item's line is left alone: an item need not end with a period."""
    body = re.sub(r"\n?`{3,}\s*$", "", body).rstrip()
    if not body or not evidence.unfinished(body):
        return body
    last_line = body.splitlines()[-1]
    if _LIST_LINE.match(last_line):
        return body
    said = [s.text for s in sentences(body)]
    if len(said) < 2:
        return body  # nothing would be left: judged as it is (too short, or unsupported)
    return evidence.drop_sentences(body, said[-1:])


_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n\s*")


def _without_repeated_paragraphs(body: str) -> str:
    """The text with each paragraph once (`evidence.loop_key`: digits and citations aside): the model writing its
    text twice ("The passage on glacier formation … \n\nThe passage on glacier formation …", explore31 F4) wrote
    one text, not a longer one."""
    paragraphs = _PARAGRAPH_BREAK.split(body)
    seen: set[str] = set()
    kept = []
    for paragraph in paragraphs:
        key = evidence.loop_key(paragraph) or paragraph.strip()
        if key not in seen:
            seen.add(key)
            kept.append(paragraph)
    return "\n\n".join(p.strip() for p in kept) if len(kept) < len(paragraphs) else body


#: How many of an unsupported sentence's first words the retry note quotes.
NOTE_WORDS = 6


def _opening(sentence: str) -> str:
    """The first `NOTE_WORDS` words of a sentence, whole (citations aside), to name it in the retry note. Not a cut
    sentence ending in "…": the model copied such an excerpt back as its whole summary (explore31 F4); a copy of
    these words is no sentence (`evidence.unfinished`)."""
    said = evidence.strip_invalid(sentence, evidence.cited_indexes(sentence)).split()
    return " ".join(said[:NOTE_WORDS]).rstrip(".!?,;:\u2026")


def parse_grounded_text(text: str, passages: Sequence[Hit], question: str = "") -> str:
    """Summary / explanation: non-empty, no system-prompt echo, no paraphrase of the instructions ("You can use only
    the passages you want."), no sentence repeated more than `MAX_REPEATS` times (`evidence.loops`: digits and
    citations aside), sentences supported as the ask's answers are (`evidence.unsupported_claim`: a cited one by the
    passages it cites, an uncited one that claims something by all the passages shown; `question`, the concept
    explained, is no support), no citation of an unshown passage (removed).

    Unsupported sentences are dropped while they are at most as many as the supported ones (a summary with one
    invented sentence out of four is the other three); more of them make the text invalid (retried with the reason,
    then `ai_output_invalid`): what would be left is not the text the model was asked for. A line that only repeats
    a passage's source label is dropped first (`evidence.without_source_labels`), and so is a paragraph written
    twice (`_without_repeated_paragraphs`). A last sentence cut off (no end, or an ellipsis: `evidence.unfinished`)
    is dropped (`_without_unfinished_end`); a text that is nothing else is invalid."""
    written = evidence.without_source_labels(text, passages).strip()
    body = _without_unfinished_end(_without_repeated_paragraphs(written))
    if len(body) < 20:
        raise InvalidOutput("the text is empty or too short")
    if evidence.leaks_prompt(body):
        raise InvalidOutput("the text repeats the instructions or the passages' markup")
    said = [s.text for s in sentences(body)]
    if any(evidence.is_instruction_echo(s) for s in said):
        raise InvalidOutput("the text talks about the instructions instead of the passages")
    if evidence.loops(written):  # sentences compared without their digits and citations, repeats included
        raise InvalidOutput("the text repeats the same sentence")
    if evidence.unfinished(body) and not _LIST_LINE.match(body.splitlines()[-1]):
        raise InvalidOutput("the text stops mid-sentence")
    supported, unsupported = evidence.supported_and_not(body, passages, question, details=True)
    if unsupported:
        kept = evidence.drop_sentences(body, unsupported)
        if len(unsupported) > supported or len(kept) < 20:
            first = unsupported[0]
            cites = evidence.check_citations(first, len(passages))[0]
            by = "the passages it cites" if cites else "the passages (it cites none)"
            raise InvalidOutput(f"a sentence is not supported by {by}: the one beginning “{_opening(first)}”")
        log.info("generated text: %d unsupported sentence(s) dropped, %d kept", len(unsupported), supported)
        body = kept
    _, invalid = evidence.check_citations(body, len(passages))
    return evidence.strip_invalid(body, invalid) if invalid else body


@dataclass(frozen=True)
class Task:
    kind: str  # summary | objectives | quiz | explain
    instruction: str
    parse: Callable[[str], Any]
    max_tokens: int
    json_schema: dict[str, Any] | None = None


def summary_task(passages: Sequence[Hit]) -> Task:
    return Task(
        "summary",
        "Summarise these passages for a student in 3 to 5 sentences. Cite passages like [1].",
        lambda text: parse_grounded_text(text, passages),
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


def quiz_budget(n_questions: int) -> int:
    """The output tokens a quiz of n questions is given (doubled for the retry of a reply cut off at the limit)."""
    return QUIZ_TOKENS_PER_QUESTION * n_questions + QUIZ_TOKENS_OVERHEAD


def quiz_task(n_questions: int, n_passages: int) -> Task:
    example = {"questions": [{"prompt": "…?", "options": ["…"] * QUIZ_OPTIONS, "answer": 0, "source": 1}]}
    return Task(
        "quiz",
        f"Write {n_questions} multiple-choice questions testing these passages. Reply with JSON only, like "
        f"{json.dumps(example, ensure_ascii=False)}: {QUIZ_OPTIONS} different options, `answer` is the index "
        "of the correct option, `source` the passage number the question comes from.",
        lambda text: parse_quiz(text, n_questions=n_questions, n_passages=n_passages),
        quiz_budget(n_questions),
        quiz_json_schema(n_questions, n_passages),
    )


def parse_explanation(text: str, passages: Sequence[Hit], concept: str) -> str:
    """`parse_grounded_text`, and about the concept: the explanation names it (one of its content words, any
    inflection). A sentence copied from a passage about something else passed the support check and came back as
    the explanation of a concept it never mentions (explore29 F7)."""
    body = parse_grounded_text(text, passages, concept)
    wanted = evidence.content_stems(concept)
    if wanted and not wanted & evidence.content_stems(body):
        raise InvalidOutput(f"the text does not mention “{concept}”")
    return body


def explain_task(concept: str, level: str, passages: Sequence[Hit]) -> Task:
    return Task(
        "explain",
        f"Explain the concept “{prompts.neutralise(concept)}” to a {level} student in 2 to 4 sentences, using "
        "only these passages. Cite passages like [1].",
        lambda text: parse_explanation(text, passages, concept),
        200,
    )


_WHAT = {
    "summary": "a valid summary",
    "objectives": "valid learning objectives",
    "quiz": "a valid quiz",
    "explain": "a valid explanation",
}


async def _attempt(
    chat: ChatModel, task: Task, passages: Sequence[Hit], retry_note: str | None, max_tokens: int
) -> AsyncGenerator[str, None]:
    messages = prompts.generator_messages(task.instruction + (f"\n{retry_note}" if retry_note else ""), passages)
    complete_json = getattr(chat, "stream_json", None)
    if task.json_schema is not None and complete_json is not None:
        stream = complete_json(messages, schema=task.json_schema, max_tokens=max_tokens)
    else:
        stream = chat.stream(messages, max_tokens=max_tokens, temperature=0.2)
    async for piece in stream:
        yield piece


async def run(
    chat: ChatModel,
    task: Task,
    passages: Sequence[Hit],
    on_token: Callable[[str], Any] | None = None,
    on_reset: Callable[[int], Any] | None = None,
) -> Any:
    """Generate and validate; retried once with the reason, then Unavailable `ai_output_invalid`.

    A reply cut off at the output limit (`OutputTruncated`: unfinished JSON) is invalid output too; its retry gets
    `RETRY_BUDGET` times the tokens. `on_reset(attempt)` tells a streaming caller to discard the tokens of the
    rejected attempt before the next one's. As the ask's stream, the prompt's markup is never streamed: text that
    could begin it is held back until the next piece (`evidence.markup_tail`), and a reply that plays the prompt back
    (`evidence.leaks_prompt`, which the check rejects whatever follows) stops the model there."""
    reason: str | None = None
    note: str | None = None
    budget = task.max_tokens
    for attempt in range(1, ATTEMPTS + 1):
        parts: list[str] = []
        text, sent = "", 0
        try:
            pieces = _attempt(chat, task, passages, note, budget)
            try:
                async for piece in pieces:
                    parts.append(piece)
                    text += piece
                    if evidence.leaks_prompt(text):
                        break
                    safe = len(text) - evidence.markup_tail(text)
                    if on_token is not None and safe > sent:
                        on_token(text[sent:safe])
                        sent = safe
                else:
                    if on_token is not None and len(text) > sent:
                        on_token(text[sent:])
            finally:
                await pieces.aclose()  # stops the model's stream when the reply was left early
            return task.parse("".join(parts))
        except OutputTruncated as exc:
            reason = str(exc)
            note = f"Your previous reply was too long: {reason}. Reply again, shorter, in the same format."
            budget = task.max_tokens * RETRY_BUDGET
        except InvalidOutput as exc:
            reason = str(exc)[:300]
            note = f"Your previous reply was invalid ({reason}). Follow the format exactly."
        if parts and attempt < ATTEMPTS:
            if on_reset is not None:
                on_reset(attempt + 1)
            elif on_token is not None:
                on_token("\n")
    raise Unavailable(
        f"the model did not write {_WHAT[task.kind]} in {ATTEMPTS} attempts ({reason}); nothing was saved",
        code="ai_output_invalid",
        details={"reason": reason, "attempts": ATTEMPTS},
        headers={"Retry-After": "2"},  # another run of the model may well write it
    )
