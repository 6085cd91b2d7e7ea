"""Pure decisions of the assistant: which evidence counts, when to clarify, which citations are valid."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from smartcourse.assistant.configuration import Knobs
from smartcourse.assistant.prompts import SYSTEM, defang, source_label
from smartcourse.ports import Hit

_WORD = re.compile(r"[a-z0-9][a-z0-9'+#-]*")
STOPWORDS = frozenset(
    """a an the and or but if of to in on at by for with about from into over under as is are was were be been
    being do does did doing have has had having i me my we our you your he she it its they them their this that
    these those there here what which who whom whose when where why how can could should would may might must
    shall will just so than then too very not no yes please tell explain describe mean means meaning define
    definition show give say said about more again also any some thing things stuff one ones other it's what's
    work works working use used using happen happens course lesson lessons module chapter part section""".split()
)
_FOLLOW_UP = re.compile(r"\b(it|its|that|this|those|these|they|them|he|she|one|ones|above|again|more)\b", re.I)
_QUIZ_ANSWERS = re.compile(
    r"\b(answers?|solutions?|correct\s+options?)\b.*\b(quiz|quizzes|test|exam)\b"
    r"|\b(quiz|quizzes|test|exam)\b.*\b(answers?|solutions?|correct\s+options?)\b",
    re.IGNORECASE | re.DOTALL,
)
_CITATION = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")


def subject_words(question: str) -> list[str]:
    """The words that could name what the question is about (stopwords and pronouns removed)."""
    return [w for w in _WORD.findall(question.lower()) if w not in STOPWORDS and len(w) > 1]


def is_follow_up(question: str) -> bool:
    """A short question or one leaning on a pronoun needs the conversation to be understood."""
    return bool(_FOLLOW_UP.search(question)) or len(subject_words(question)) <= 1


def asks_for_quiz_answers(question: str) -> bool:
    return bool(_QUIZ_ANSWERS.search(question))


def strong_hits(hits: Sequence[Hit], floor: float) -> list[Hit]:
    """Hits whose cosine similarity reaches the floor, best first: the only evidence the assistant uses."""
    strong = [h for h in hits if h.vector_score is not None and h.vector_score >= floor]
    return sorted(strong, key=lambda h: h.vector_score or 0.0, reverse=True)


@dataclass(frozen=True)
class Decision:
    route: str  # answer | clarify | refuse
    reason: str
    candidates: list[str]
    passages: list[Hit]


def _distinct_sources(hits: Sequence[Hit]) -> list[Hit]:
    seen: set[tuple[str, str]] = set()
    out = []
    for h in hits:
        key = (h.chunk.source_type, h.chunk.source_id)
        if key not in seen:
            seen.add(key)
            out.append(h)
    return out


def decide(question: str, hits: Sequence[Hit], knobs: Knobs) -> Decision:
    """Route on evidence. Deterministic, so it holds whatever the model's strength."""
    subject = subject_words(question)
    if not subject:  # nothing to search for: ask what is meant (retrieval scores mean nothing here)
        names = [source_label(h) for h in _distinct_sources(hits)[:3]]
        return Decision("clarify", "no_subject", names, [])
    strong = strong_hits(hits, knobs.relevance_floor)
    if not strong:
        return Decision("refuse", "no_relevant_material", [], [])
    sources = _distinct_sources(strong)
    if len(subject) <= knobs.clarify_max_subject_words:
        best = strong[0].vector_score or 0.0
        close = [h for h in sources if (h.vector_score or 0.0) >= best - knobs.clarify_margin]
        named = [h for h in sources if _title_names(h.chunk.title, subject)]
        for candidates in (close, named):
            if len({h.chunk.title.strip().lower() for h in candidates}) >= 2:
                names = [source_label(h) for h in candidates[:3]]
                return Decision("clarify", "ambiguous_candidates", names, [])
    return Decision("answer", "evidence", [], strong[: knobs.max_passages])


def _title_names(title: str, subject: Sequence[str]) -> bool:
    """A short question's subject word names this source ("key" names "Primary keys" and "Encryption keys")."""
    words = _WORD.findall(title.lower())
    return any(w.startswith(s) or s.startswith(w) for s in subject for w in words if len(w) > 2)


def clarify_text(reason: str, candidates: Sequence[str]) -> str:
    if not candidates:
        return "Could you say which topic of the course your question is about?"
    listed = "; ".join(f"“{c}”" for c in candidates)
    if reason == "no_subject":
        return f"What would you like to know? For example, about one of these parts of the course: {listed}."
    return f"Your question could be about several parts of the course: {listed}. Which one do you mean?"


REFUSE_OFF_TOPIC = (
    "I couldn't find anything about that in this course's material, so I can't answer it. "
    "Try rephrasing, or ask about a topic the course covers."
)
REFUSE_QUIZ = "I can't give the answers to a quiz you haven't passed yet, but I can explain the topics it covers."
REFUSE_INSTRUCTIONS = "I can only help with questions about this course's material."


def cited_indexes(answer: str) -> list[int]:
    """Every [n] (or [n, m]) in the answer, in order of first appearance."""
    out: list[int] = []
    for group in _CITATION.findall(answer):
        for part in group.split(","):
            n = int(part)
            if n not in out:
                out.append(n)
    return out


def check_citations(answer: str, n_passages: int) -> tuple[list[int], list[int]]:
    """(valid, invalid) citation numbers: valid ones name a passage the model was actually shown."""
    found = cited_indexes(answer)
    return [n for n in found if 1 <= n <= n_passages], [n for n in found if not 1 <= n <= n_passages]


def strip_invalid(answer: str, invalid: Sequence[int]) -> str:
    bad = set(invalid)

    def keep(match: re.Match[str]) -> str:
        parts = [p.strip() for p in match.group(1).split(",") if int(p) not in bad]
        return f"[{', '.join(parts)}]" if parts else ""

    return _CITATION.sub(keep, answer)


@cache
def _system_shingles(window: int) -> frozenset[str]:
    words = _WORD.findall(SYSTEM.lower())
    return frozenset(" ".join(words[i : i + window]) for i in range(len(words) - window + 1))


def leaks_system_prompt(answer: str, window: int = 6) -> bool:
    """True if the answer repeats any `window` consecutive words of the system prompt."""
    shingles = _system_shingles(window)
    said = _WORD.findall(answer.lower())
    return any(" ".join(said[i : i + window]) in shingles for i in range(len(said) - window + 1))


#: The markup and the instruction line of the answer prompt (`prompts.answer_messages`): an answer carrying any of
#: them is the prompt played back (the local SmolLM2-135M does it: "<course_material> <passage n="1" …> … Question: …
#: Answer, citing passages like [1]:", whose "[1]" passed the citation check), not an answer.
PROMPT_MARKUP = ("<course_material", "</course_material", "<passage", "</passage", "citing passages like")


def leaks_prompt(answer: str) -> bool:
    """True if the answer repeats the system prompt (`leaks_system_prompt`) or the user prompt's markup."""
    lowered = answer.lower()
    return any(mark in lowered for mark in PROMPT_MARKUP) or leaks_system_prompt(answer)


def markup_tail(text: str) -> int:
    """How many characters at the end of `text` could be the start of the prompt's markup (`PROMPT_MARKUP`).

    A stream holds them back until the next piece shows whether they are, so a draft that plays the prompt back
    ("<course_material> <passage n=\"1\" …>") never shows its markup to the student."""
    lowered = text.lower()
    longest = 0
    for mark in PROMPT_MARKUP:
        for k in range(min(len(mark) - 1, len(lowered)), longest, -1):
            if lowered.endswith(mark[:k]):
                longest = k
                break
    return longest


def best_sentence(text: str, query: str, limit: int = 240) -> str:
    """The sentence of `text` sharing most words with `query` (the quote shown with a citation)."""
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", text) if s.strip()] or [text.strip()]
    wanted = set(subject_words(query))
    best = max(sentences, key=lambda s: (len(wanted & set(subject_words(s))), -sentences.index(s)))
    return best if len(best) <= limit else best[: limit - 1].rsplit(" ", 1)[0] + "…"


def citation(index: int, hit: Hit, query: str) -> dict[str, Any]:
    return {
        "index": index,
        "chunk_id": hit.chunk.chunk_id,
        "source": source_label(hit),
        "quote": best_sentence(defang(hit.chunk.text), query),
    }


def fallback_answer(passages: Sequence[Hit], query: str, n: int = 2) -> tuple[str, list[dict[str, Any]]]:
    """When the model cannot cite: quote the best passages, each with its citation."""
    cites = [citation(i, h, query) for i, h in enumerate(passages[:n], 1)]
    lines = [f"“{c['quote']}” [{c['index']}]" for c in cites]
    return "Here is what the course material says:\n" + "\n".join(lines), cites
