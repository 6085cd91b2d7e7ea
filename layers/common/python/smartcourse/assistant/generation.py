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
from smartcourse.assistant.schemas import _LIST_MARKER, GeneratedQuestion
from smartcourse.assistant.text import sentences
from smartcourse.errors import Unavailable
from smartcourse.ports import ChatModel, Hit, OutputTruncated
from smartcourse.schemas import option_key

log = logging.getLogger(__name__)

ATTEMPTS = 2
RETRY_BUDGET = 2  # a reply cut off at the output limit is retried with this many times the tokens
#: A streamed generation's `progress` event comes at each attempt's start and every this many pieces of the model's
#: reply: objectives show nothing until one is whole, a quiz nothing readable (explore73 F10: a minute of pings).
PROGRESS_PIECES = 16

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
                _without_repeated_options(q)
    return data


def _without_repeated_options(question: dict[str, Any]) -> None:
    """A question whose options repeat one another (as a student reads them: `option_key`, list markers aside) keeps
    each once, its answer pointing at the kept one, while two distinct options remain: ["Lava", "Ash", "lava."] with
    answer 2 is ["Lava", "Ash"] with answer 0. The embedded model repeats an option in most quizzes it writes
    (explore46: 6 of 9 calls refused, "options must be distinct"); a question left with fewer than two is refused as
    before."""
    options, answer = question["options"], question.get("answer")
    if not all(isinstance(o, str) for o in options) or not isinstance(answer, int) or not 0 <= answer < len(options):
        return
    keys = [option_key(_LIST_MARKER.sub("", o, count=1) or o) for o in options]
    kept = list(dict.fromkeys(keys))
    if len(kept) == len(keys) or len(kept) < 2:
        return
    first = {key: i for i, key in reversed(list(enumerate(keys)))}
    question["options"] = [options[first[key]] for key in kept]
    question["answer"] = kept.index(keys[answer])


def _same_text(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def parse_quiz(
    text: str, *, n_questions: int, n_passages: int, passages: Sequence[Hit] = ()
) -> list[GeneratedQuestion]:
    """Strictly validate a generated quiz: the schema, the count, sources among the passages shown, no question asked
    twice (entities in the text are decoded first), no degenerate text (`_degenerate_text`), and, given the
    `passages`, each question about one of them (`_source_of`: a quiz on travelling by car, train or bus came back
    for a lesson on rivers and could be saved: explore46 F4), its `source` that passage."""
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
    material = _Material(passages) if passages else None
    for i, q in enumerate(draft.questions):
        if why := (
            _degenerate_text(q.prompt, QUIZ_PROMPT_CHARS)
            or next((w for o in q.options if (w := _degenerate_option(o))), None)
            or _numbered_slots(q)
            or _plays_the_prompt(q, material)
            or _invents(q, passages)
        ):
            raise InvalidOutput(f"question {i}: {why}")
        if passages:
            q.source = _source_of(q, passages, i)
    return draft.questions


#: A prompt that asks for a number: its options may well be consecutive numbers.
_ASKS_A_NUMBER = re.compile(
    r"\b(?:how\s+(?:many|much|long|old|often)|number|count|year|percent|digits?|bits?|bytes?|version)\b", re.IGNORECASE
)


def _numbered_slots(question: GeneratedQuestion) -> str | None:
    """Options that number their slots ("1", "2", "3"; the next question's "4", "5", "6"), as "a", "b", "c" name them
    (explore73 F1: both were saved as a quiz), unless the prompt asks for a number."""
    values = [o.strip().rstrip(".)") for o in question.options]
    if not all(v.isdigit() for v in values) or _ASKS_A_NUMBER.search(question.prompt):
        return None
    numbers = [int(v) for v in values]
    if numbers == list(range(numbers[0], numbers[0] + len(numbers))):
        return f"the options number their slots ({', '.join(question.options)}), not answers"
    return None


def _plays_the_prompt(question: GeneratedQuestion, material: _Material | None) -> str | None:
    """A prompt or an option that plays the prompt back: its markup ("… in the passage n=") or a passage's source
    label ("What HTTP is — Foundations of HTTP > What HTTP is": explore73 F1, saved as a quiz's questions)."""
    for text in (question.prompt, *question.options):
        if evidence.leaks_prompt(text):
            return "a text repeats the prompt's markup"
        if material is not None and material.plays_a_label(text):
            return "a text plays back a passage's source label"
    return None


def _invents(question: GeneratedQuestion, passages: Sequence[Hit]) -> str | None:
    """A prompt or a right answer naming something, or giving a figure, that no passage gives
    (`evidence.invented_details`, a summary's rule): "What is the main purpose of the Greenland ice cap?" over passages
    on alpine glaciers shared "ice" with them and was saved (explore74 F6). The right answer is a phrase: its names
    are checked, any word capitalised, not its figures ("How many relays …?" is answered by a count). A wrong option
    may name anything."""
    if not passages:
        return None
    made_up = evidence.invented_details(question.prompt, passages)
    made_up += evidence.absent_names(question.options[question.answer], passages, phrase=True)
    return f"it names {', '.join(made_up)}, which no passage gives" if made_up else None


def _source_of(question: GeneratedQuestion, passages: Sequence[Hit], i: int) -> int:
    """The passage a question is about: the one its prompt and answer share most content words with, the one it cites
    among equals (the embedded model cites passage 1 for a question on passage 3 more often than not: the saved quiz
    named the wrong source); none sharing any is invalid output."""
    asked = evidence.content_stems(f"{question.prompt} {question.options[question.answer]}")
    shared = [len(asked & evidence.content_stems(f"{p.chunk.title} {p.chunk.text}")) for p in passages]
    best = max(range(len(passages)), key=lambda n: (shared[n], n == question.source - 1))
    if not shared[best]:
        raise InvalidOutput(f"question {i} is about none of the passages: it shares no word with them")
    return best + 1


#: A word said three times in a row ("Volcano Volcano Volcano"): the model looping in a text too short for
#: `_repeats_itself`'s phrases.
_STUTTER = re.compile(r"\b(\w+)(?:\W+\1\b){2}", re.IGNORECASE)
#: An option that names its slot instead of an answer: "a", "b)", "(c)", "D.", "Option A".
_SLOT = re.compile(r"^(?:option\s+)?\(?[a-f][).]?$", re.IGNORECASE)


def _degenerate_text(text: str, bound: int) -> str | None:
    """Why a prompt or an option is no text a student should read, or None: it loops ("Volcano Eruption and Eruption
    and Eruption and … and E", explore45 F2; "Volcano Volcano Volcano") or stops at the schema's bound, which closed it
    mid-word (or just after a space, stripped since: a character short of it)."""
    if bound - 1 <= len(text) <= bound:  # longer: a server that does not constrain the output, which cuts nothing
        return f"a text was cut at the {bound}-character limit"
    if _repeats_itself(text) or _STUTTER.search(text):
        return "a text repeats itself"
    return None


def _degenerate_option(option: str) -> str | None:
    if _SLOT.match(option.strip()):
        return f"an option names its slot ({option!r}), not an answer"  # "a", "b", "c" (explore45 F2, explore46 F3)
    return _degenerate_text(option, QUIZ_OPTION_CHARS)


#: HTML tags and Markdown's bold/italic markers, which the model sometimes wraps an objective's line in.
_INLINE_MARKUP = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>|\*\*|__|(?<!\w)\*(?=\S)|(?<=\S)\*(?!\w)")


#: An objective's line that talks about the text it was drawn from rather than what a student will do.
_ABOUT_THE_PASSAGE = re.compile(r"\b(?:the|this|these)\s+passages?\b", re.IGNORECASE)


#: What an objectives reply is asked for: 3 to 5 objectives of at most `OBJECTIVE_CHARS` characters each.
OBJECTIVES_MIN, OBJECTIVES_MAX = 3, 5
OBJECTIVE_CHARS = 160
#: An objectives reply's output budget: 5 objectives of up to 160 characters (~40 tokens each) and the JSON around
#: them (the embedded model wrote 78-297 tokens: docs/assistant.md, "Objectives on the embedded model").
OBJECTIVES_TOKENS = 300


def objectives_json_schema() -> dict[str, Any]:
    """What the model is asked (and, where the server supports it, constrained) to write: `{"objectives": [...]}`.

    Constrained JSON, not free lines: asked for lines, the embedded SmolLM2-135M wrote no valid objective in 10 of 12
    calls (prose, `<pre><code>` blocks, form markup: explore43 F3); with the schema, bench/assistant_objectives.py
    measures the difference. No verb pattern in the schema: with one, llama.cpp compiled a grammar for up to 17 s and
    the replies ran past the token budget more often (measured in the same bench)."""
    item = {"type": "string", "minLength": 15, "maxLength": OBJECTIVE_CHARS}
    return {
        "type": "object",
        "properties": {
            "objectives": {"type": "array", "items": item, "minItems": OBJECTIVES_MIN, "maxItems": OBJECTIVES_MAX}
        },
        "required": ["objectives"],
        "additionalProperties": False,
    }


#: A phrase of this many words said twice in one objective is the model looping ("the process of a relay process,
#: then describe the process of a relay process, then …"), not an objective.
_LOOP_WORDS = 5


def _repeats_itself(item: str) -> bool:
    words = re.findall(r"\w+", item.casefold())
    grams = [tuple(words[i : i + _LOOP_WORDS]) for i in range(len(words) - _LOOP_WORDS + 1)]
    return len(set(grams)) < len(grams)


#: An identifier the model copied from the material ("… to the sea 79308181-4a66-…", explore45 F1, explore46 F1): a
#: run of seven hexadecimal characters or more mixing digits and letters, or of eight digits or more.
_AN_ID = re.compile(r"\b(?:(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,}|\d{8,})\b", re.IGNORECASE)


#: A template's blank the model left in ("Describe the [passage_id] in [table_name]"); objectives cite nothing.
_PLACEHOLDER = re.compile(r"\[[^\]]*[^\W\d][^\]]*\]|\{[^}]*\}")


def _lists_verbs(item: str) -> bool:
    """The instruction's verbs copied as the objective ("Explain, Describe, Compare, Apply, Identify": the embedded
    model's reply in 2 calls of 10, bench/assistant_objectives.py): half its words or more are Bloom verbs."""
    words = [unicodedata.normalize("NFC", w) for w in re.findall(r"\w+", item.casefold())]
    verbs = sum(1 for w in words if w in BLOOM_VERBS or w in BLOOM_VERBS_OTHER)
    return verbs >= 2 and 2 * verbs >= len(words)


def _objective(raw: str) -> str | None:
    """One line or JSON item as an objective, or None: it must start with a Bloom verb (list markers and inline
    markup removed), in English or in one of the languages of `BLOOM_VERBS_OTHER`, have three words or more, not be
    prose under a verb label, not loop, and not be cut at `OBJECTIVE_CHARS` (the schema's limit closes the string
    wherever the model was)."""
    # Inline markup around or inside the line ("<mark>1. Explain …</mark>", "**1. Explain** …") is not the
    # objective's: it hid the list marker and the verb (explore42 F3: 5 of 8 calls refused).
    line = _INLINE_MARKUP.sub("", raw)
    item = re.sub(r"^\s*(?:[-*•]|\d+[.)])\s*", "", line).strip().rstrip(".")
    if not item or len(raw.strip()) >= OBJECTIVE_CHARS:
        return None
    head = item.split()[0]
    first = unicodedata.normalize("NFC", head.casefold().strip(":,"))
    # "Explain: The passage describes …" is prose under a label, not an objective (explore43 N2).
    labelled = head.endswith(":") or _ABOUT_THE_PASSAGE.search(item) is not None
    if not (first in BLOOM_VERBS or first in BLOOM_VERBS_OTHER) or len(re.findall(r"\w+", item)) < 3 or labelled:
        return None
    if _repeats_itself(item) or _lists_verbs(item) or _PLACEHOLDER.search(item) or _AN_ID.search(item):
        return None
    return item[0].upper() + item[1:]


_DECODER = json.JSONDecoder()
_OBJECTIVES_ARRAY = re.compile(r'^\s*\{\s*"objectives"\s*:\s*\[')


def _written_items(text: str, *, finished: bool) -> list[str]:
    """The objectives a reply has written so far, raw: the strings of its JSON array that are closed, or its lines
    (the last one only once the reply is `finished`: until then it may be cut)."""
    start = _OBJECTIVES_ARRAY.match(text)
    if start is None:
        if text.lstrip().startswith("{"):
            return []  # JSON of another shape (or not yet past its key): nothing to show yet
        lines = text.splitlines()
        return lines if finished or text.endswith("\n") else lines[:-1]
    items: list[str] = []
    at = start.end()
    while True:
        while at < len(text) and text[at] in " \t\r\n,":
            at += 1
        if at >= len(text) or text[at] != '"':
            return items
        try:
            value, at = _DECODER.raw_decode(text, at)
        except json.JSONDecodeError:
            return items  # the string is still being written
        items.append(value)


def objectives_so_far(text: str, passages: Sequence[Hit] = (), *, material: _Material | None = None) -> str:
    """What a streaming client is shown while the model writes: the objectives accepted so far, as the result's text
    spells them ("- …" lines), so the stream and `done.text` agree and no item the check refuses is ever shown.
    Called at each piece: the task reads its `material` once."""
    kept = _kept(_written_items(text, finished=False), material or _Material(passages))
    return "\n".join(f"- {o}" for o in kept[:OBJECTIVES_MAX])


class _Material:
    """What the copy checks read of the passages, read once: their text and sentences as `_same_text` spells them,
    and a pattern per name of their source labels."""

    def __init__(self, passages: Sequence[Hit]) -> None:
        self.texts = [_same_text(p.chunk.text) for p in passages]
        self.sentences = {_same_text(s.text) for p in passages for s in sentences(p.chunk.text)}
        # The content words of the passages: an objective with none of them is about something else.
        self.stems: set[str] = set().union(
            *(evidence.content_stems(f"{p.chunk.title} {p.chunk.text}") for p in passages)
        )
        names = {n.strip() for p in passages for n in [p.chunk.title, *p.chunk.location.split(" > ")] if n.strip()}
        # One of a label's names after one of its separators (`prompts.source_label`: "Title — Module > Lesson"; the
        # model writes U+203A for ">"): "Explain why an outbox — Foundations".
        self.label = (
            re.compile("[\u2014>\u203a\u00bb]\\s*(?:" + "|".join(map(re.escape, sorted(names))) + ")", re.IGNORECASE)
            if names
            else None
        )

    def plays_a_label(self, objective: str) -> bool:
        return self.label is not None and self.label.search(objective) is not None


#: The words an objective puts between its verb and a statement ("Explain how rivers carry sediment to the sea").
_LEAD_INS = ("how ", "why ", "what ", "that ", "the way ")


def _kept(items: Sequence[str], material: _Material) -> list[str]:
    """The items `_objective` accepts, each once, none copied from a passage or its source label, and each with a
    content word of the passages (when there are passages).

    Once: compared without their verb, "Explain|Describe|Compare how to use the relay" is one objective said under
    each verb of the instruction (explore45 F1: 8 of 12 replies). Copied: the item, or what follows its verb (and
    "how", "why", ...), is a passage's sentence word for word: the README lesson's "State and events commit
    together." four times ("state" being a Bloom verb), "Explain how rivers carry sediment to the sea <an id>" (the
    material's sentence, id included). The label: "Explain why an outbox — Foundations > Why an outbox"."""
    out: list[str] = []
    seen: set[str] = set()
    said: list[set[str]] = []
    for objective in map(_objective, items):
        if objective is None or _SELF_COMPARISON.search(objective):
            continue
        key = _same_text(objective)
        tail = key.split(" ", 1)[1] if " " in key else key
        if tail in seen or any(key in text for text in material.texts) or material.plays_a_label(objective):
            continue
        stems = evidence.content_stems(tail)
        if any(_near(stems, other) for other in said):
            continue  # another wording of a kept one (explore83 F9: "Describe|Identify|Evaluate the difference …")
        statement = next((tail[len(w) :] for w in _LEAD_INS if tail.startswith(w)), tail)
        if statement in material.sentences:
            continue
        if material.stems and not evidence.content_stems(tail) & material.stems:
            # About none of the passages ("Describe the process of creating a snowboard" over a lesson on seracs:
            # explore76 F6), as a quiz's question about none of them is invalid.
            continue
        seen.add(tail)
        said.append(stems)
        out.append(objective)
    return out


#: An objective comparing a thing with itself ("Compare compound interest to compound interest": explore83 F9).
_SELF_COMPARISON = re.compile(
    r"\b(?:compare|contrast|distinguish|differentiate)\s+(?:the\s+)?(.{3,60}?)\s+(?:to|with|and|from)\s+(?:the\s+)?"
    r"\1\b",
    re.IGNORECASE,
)
#: The share of their content words two objectives must have in common to be one said twice (`_near`).
NEAR_OBJECTIVES = 0.75


def _near(a: set[str], b: set[str]) -> bool:
    """Two objectives' content words (after the verb) mostly the same: one objective said twice."""
    return bool(a and b) and len(a & b) / len(a | b) >= NEAR_OBJECTIVES


def parse_objectives(text: str, passages: Sequence[Hit] = (), *, material: _Material | None = None) -> list[str]:
    """The objectives of a reply: `{"objectives": [...]}` (as asked), or one per line (a server that does not
    constrain the output, or a model that ignored it); each kept if `_objective` accepts it and it is not a sentence
    of the `passages` (`_kept`); at least one."""
    if text.lstrip().startswith("{"):
        data = _json_object(text)
        items = data.get("objectives") if isinstance(data, dict) else None
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise InvalidOutput('expected {"objectives": [strings]}')
    else:
        items = _written_items(text, finished=True)
    out = _kept(items, material or _Material(passages))
    if not out:
        # Said whatever the items failed on: the retry's note tells the model what an objective is (explore46 F6: it
        # said "no objective starts with a Bloom verb" of replies whose items were repeats or copies).
        raise InvalidOutput(
            "no usable objective: each must start with a Bloom verb and be about the passages, one of its own, not a "
            "repeat, a loop or a copy of the passages"
        )
    return out[:OBJECTIVES_MAX]


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
    return evidence.drop_sentences(body, said[-1:], last=True)


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
    #: What a streaming client is shown of the reply so far, when not the reply itself (objectives: the accepted
    #: ones, as the result spells them); None streams the reply as it comes.
    display: Callable[[str], str] | None = None


def summary_task(passages: Sequence[Hit]) -> Task:
    return Task(
        "summary",
        "Summarise these passages for a student in 3 to 5 sentences. Cite passages like [1].",
        lambda text: parse_grounded_text(text, passages),
        200,
    )


def objectives_task(passages: Sequence[Hit] = ()) -> Task:
    example = {"objectives": ["Explain …", "Compare …"]}
    material = _Material(passages)
    return Task(
        "objectives",
        f"Write {OBJECTIVES_MIN} to {OBJECTIVES_MAX} learning objectives for these passages. Start each objective "
        "with a verb such as Explain, Describe, Compare, Apply, Identify or Evaluate. Reply with JSON only, like "
        f"{json.dumps(example, ensure_ascii=False)}.",
        lambda text: parse_objectives(text, material=material),
        OBJECTIVES_TOKENS,
        objectives_json_schema(),
        display=lambda text: objectives_so_far(text, material=material),
    )


def quiz_budget(n_questions: int) -> int:
    """The output tokens a quiz of n questions is given (doubled for the retry of a reply cut off at the limit)."""
    return QUIZ_TOKENS_PER_QUESTION * n_questions + QUIZ_TOKENS_OVERHEAD


def quiz_task(n_questions: int, n_passages: int, passages: Sequence[Hit] = ()) -> Task:
    example = {"questions": [{"prompt": "…?", "options": ["…"] * QUIZ_OPTIONS, "answer": 0, "source": 1}]}
    return Task(
        "quiz",
        f"Write {n_questions} multiple-choice questions testing these passages. Reply with JSON only, like "
        f"{json.dumps(example, ensure_ascii=False)}: {QUIZ_OPTIONS} different options, `answer` is the index "
        "of the correct option, `source` the passage number the question comes from.",
        lambda text: parse_quiz(text, n_questions=n_questions, n_passages=n_passages, passages=passages),
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


def _show(visible: str, shown: str, on_token: Callable[[str], Any] | None) -> str:
    """Stream what `visible` adds to what was `shown` (it only grows: accepted items are never taken back)."""
    if on_token is not None and len(visible) > len(shown) and visible.startswith(shown):
        on_token(visible[len(shown) :])
        return visible
    return shown


async def run(
    chat: ChatModel,
    task: Task,
    passages: Sequence[Hit],
    on_token: Callable[[str], Any] | None = None,
    on_reset: Callable[[int], Any] | None = None,
    on_progress: Callable[[dict[str, int]], Any] | None = None,
) -> Any:
    """Generate and validate; retried once with the reason, then Unavailable `ai_output_invalid`.

    `on_progress({attempt, written, budget})`: at each attempt's start, then every `PROGRESS_PIECES` pieces of the
    reply (`written` counts them, `budget` is the attempt's output limit in tokens: a piece is about a token).

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
        text, sent, shown = "", 0, ""
        if on_progress is not None:
            on_progress({"attempt": attempt, "written": 0, "budget": budget})
        try:
            pieces = _attempt(chat, task, passages, note, budget)
            try:
                async for piece in pieces:
                    parts.append(piece)
                    text += piece
                    if on_progress is not None and len(parts) % PROGRESS_PIECES == 0:
                        on_progress({"attempt": attempt, "written": len(parts), "budget": budget})
                    if evidence.leaks_prompt(text):
                        break
                    if task.display is not None:
                        shown = _show(task.display(text), shown, on_token)
                        continue
                    safe = len(text) - evidence.markup_tail(text)
                    if on_token is not None and safe > sent:
                        on_token(text[sent:safe])
                        sent = safe
                else:
                    if on_token is not None and len(text) > sent and task.display is None:
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
