"""The assistant graph's nodes: each `async def node(state, config) -> dict` updates part of the state."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.config import get_stream_writer

from smartcourse.assistant import evidence, i18n, prompts
from smartcourse.assistant.configuration import Configuration
from smartcourse.assistant.state import AskState
from smartcourse.assistant.text import sentences
from smartcourse.errors import Unavailable
from smartcourse.ports import ChatMessage, Hit

log = logging.getLogger(__name__)

#: How often (in streamed pieces) a draft is looked at for a loop (`evidence.loops`, which splits the whole draft).
LOOP_CHECK_PIECES = 8


async def guard_input(state: AskState, config: RunnableConfig) -> dict[str, Any]:
    """Refuse before retrieval: prompt-extraction attempts and quiz answers the student has not earned."""
    cfg = Configuration.from_runnable_config(config)
    question = state["question"]
    if prompts.probes_instructions(question):
        answer = i18n.text("instructions", await _lang(state, cfg))
        return {"route": "refuse", "reason": "instruction_probe", "answer": answer}
    if cfg.quiz_answers_locked and evidence.asks_for_quiz_answers(question):
        answer = i18n.text("quiz_locked", await _lang(state, cfg))
        return {"route": "refuse", "reason": "quiz_answers_locked", "answer": answer}
    return {"route": "answer", "reason": ""}


async def _lang(state: AskState, cfg: Configuration) -> str:
    """The language of the assistant's own texts: the student's question's (with their earlier ones), read only
    when such a text is written (an answer is the model's, in the passages' language); when it cannot be told, the
    course's (`_course_language`), else English."""
    await i18n.loaded()
    return i18n.language(state["question"], _earlier(state), default=_course_language(state, cfg))


def _course_texts(state: AskState, cfg: Configuration) -> list[str]:
    """Some of the course's material, to read its language from: the passages retrieved, and the outline's titles
    when the question had it read."""
    read = [h.chunk.text for h in (state.get("hits") or [])[:5]]
    return read + [f"{module}: {', '.join(lessons)}" for module, lessons in cfg.outline]


def _course_language(state: AskState, cfg: Configuration) -> str:
    """The language the course's material is written in, if it can be told (`_course_texts`): "háblame de la
    república", too short to tell, was answered in English in a Spanish course (explore83 F8; explore85 F1: read from
    the outline alone, which only an overview question loads, it was always English)."""
    return i18n.material_language(_course_texts(state, cfg)) or "en"


def _earlier(state: AskState) -> list[str]:
    return [m.content for m in state.get("history") or [] if m.role == "user"]


def usable_history(history: list[ChatMessage]) -> list[ChatMessage]:
    """The turns a rewrite may lean on: an assistant turn that only echoed the instructions (stored before the check
    rejected such drafts) is left out, so it cannot snowball into every later answer."""
    return [
        m for m in history if m.role != "assistant" or not (evidence.leaks_prompt(m.content) or _only_echo(m.content))
    ]


def _only_echo(text: str) -> bool:
    cited = [s.text for s in sentences(text) if evidence.cited_indexes(s.text)]
    return bool(cited) and all(evidence.is_instruction_echo(s) for s in cited)


async def _new_subject_in_course(cfg: Configuration, question: str) -> list[Hit] | None:
    """A question without a pronoun that names its own subject, found in the course ("And what about aquaporins?"):
    a change of topic, not a follow-up, whatever its length. Its hits (the retrieval step reuses them), or None."""
    subject = evidence.subject_words(question)
    if not subject or evidence.leans_on_context(question):
        return None
    hits = await cfg.retriever(question)
    return hits if any(evidence.keyword_strong(h, subject) or _mentions(h, subject) for h in hits) else None


def _mentions(hit: Hit, subject: list[str]) -> bool:
    return bool(
        evidence.subject_stems(" ".join(subject)) <= evidence.subject_stems(f"{hit.chunk.title} {hit.chunk.text}")
    )


async def rewrite(state: AskState, config: RunnableConfig) -> dict[str, Any]:
    """Turn a follow-up into a standalone question using the conversation (kept as is when there is none, or when
    the question names a new subject the course has)."""
    cfg = Configuration.from_runnable_config(config)
    question, history = state["question"], usable_history(state.get("history") or [])
    if not history or not evidence.is_follow_up(question) or evidence.is_acknowledgement(question):
        return {"standalone": question}
    new_subject_hits = await _new_subject_in_course(cfg, question)
    if new_subject_hits is not None:
        return {"standalone": question, "hits": new_subject_hits}
    recent = history[-cfg.knobs.history_turns :]
    try:
        text = await cfg.chat.complete(prompts.rewrite_messages(recent, question), max_tokens=64)
    except Exception as exc:  # the model timed out or is gone: the rule below needs no model (explore72 F4)
        log.warning(
            "the follow-up's rewrite failed (%s: %s): the previous question is searched with it", _kind(exc), exc
        )
        text = ""
    candidate = text.strip().splitlines()[0].strip() if text.strip() else ""
    # The latest question that named a subject: "tell me more about it" after "explain this" after "What is a
    # deadlock?" is about the deadlock (explore72 F14: the vague turn in between lost it).
    asked = [m.content for m in reversed(recent) if m.role == "user"]
    last_user = next((q for q in asked if evidence.names_a_subject(q)), asked[0] if asked else "")
    # A weak model may return nothing useful, or drift to an older subject of the conversation ("How hot is the
    # water they emit?" after black smokers, rewritten about the coral bleaching asked two turns before): the rewrite
    # must name the previous question's subject (its words the follow-up does not repeat, since the follow-up's own
    # words, "water", prove nothing), else the query is the previous question and the follow-up.
    # Nor may it add a name nobody wrote: the model answering instead of rewriting (explore34 F6) made the student's
    # follow-up refused for a name of its own invention.
    previous = evidence.subject_stems(last_user) - evidence.subject_stems(question) or evidence.subject_stems(last_user)
    said = " ".join([question, *(m.content for m in recent)])
    if (
        not candidate
        or len(candidate) > 4 * max(len(question), 80)
        or prompts.looks_like_injection(candidate)
        or not evidence.subject_stems(candidate) & previous
        or evidence.invented_names(candidate, said)
    ):
        candidate = f"{last_user} {question}"
    return {"standalone": candidate}


async def retrieve(state: AskState, config: RunnableConfig) -> dict[str, Any]:
    """Hybrid search over the course's live index version (the service's retriever checks access); the rewrite's
    search for a new subject is not repeated."""
    if state.get("hits") is not None:
        return {}
    if evidence.is_acknowledgement(state["question"]):  # "ok thanks!": nothing to search for (`route`)
        return {"hits": []}
    cfg = Configuration.from_runnable_config(config)
    return {"hits": await cfg.retriever(state["standalone"])}


async def route(state: AskState, config: RunnableConfig) -> dict[str, Any]:
    """Decide answer / clarify / refuse from the evidence alone."""
    cfg = Configuration.from_runnable_config(config)
    if evidence.is_acknowledgement(state["question"]):
        # "ok thanks!" closes an exchange: answered in kind, not refused as off-course (explore75 F4); "merci" alone
        # is French however short (explore76 F4).
        lang = i18n.thanks_language(state["question"]) or await _lang(state, cfg)
        answer = i18n.text("acknowledged", lang)
        return {"route": "clarify", "reason": "acknowledgement", "candidates": [], "passages": [], "attempts": 0,
                "answer": answer}  # fmt: skip
    if cfg.outline and evidence.asks_for_overview(state["standalone"]):
        # What the course covers, as a whole: its outline, not a search (explore56 F3: refused as off-course).
        names = [module for module, _ in cfg.outline]
        answer = evidence.overview_text(cfg.outline, await _lang(state, cfg))
        return {"route": "clarify", "reason": "course_overview", "candidates": names, "passages": [], "attempts": 0,
                "answer": answer}  # fmt: skip
    decision = evidence.decide(state["standalone"], state.get("hits") or [], cfg.knobs)
    if decision.route == "refuse" and evidence.asks_for_quiz_answers(state["question"]):
        # A student who may ask (the quiz passed) asks for a quiz's answers, which the assistant never reads (its
        # prompts are no evidence): not "nothing about that in this course" (explore75 F12).
        answer = i18n.text("quiz_question", await _lang(state, cfg))
        return {"route": "clarify", "reason": "quiz_question", "candidates": [], "passages": [], "attempts": 0,
                "answer": answer}  # fmt: skip
    update: dict[str, Any] = {
        "route": decision.route,
        "reason": decision.reason,
        "candidates": decision.candidates,
        "passages": decision.passages,
        "attempts": 0,
    }
    if decision.route == "refuse":
        lang = await _lang(state, cfg)
        update["answer"] = i18n.text("off_topic", lang)
        # Asked in another language than the course's: say so, not "nothing in this course" (explore80 F7).
        if said := await asyncio.to_thread(_in_another_language, state, cfg, lang):
            update.update(answer=said, reason="other_language")
    elif decision.route == "clarify":
        update["answer"] = evidence.clarify_text(decision.reason, decision.candidates, await _lang(state, cfg))
    return update


def _in_another_language(state: AskState, cfg: Configuration, lang: str) -> str | None:
    """The text telling the student that the course's material is in another language than their question's (read
    from the retrieved passages and the outline's titles), or None when it is not, or cannot be told."""
    course = i18n.material_language(_course_texts(state, cfg))
    if course is None or course == lang:
        return None
    name = i18n.LANGUAGE_NAMES.get(lang, i18n.LANGUAGE_NAMES["en"]).get(course, course)
    return i18n.text("other_language", lang, course=name)


async def generate(state: AskState, config: RunnableConfig) -> dict[str, Any]:
    """Write the answer from the numbered passages, streaming tokens to a `custom` stream reader.

    `{"reset": n}` goes first when this is attempt n > 1 (the reader discards what it had). The prompt's markup is
    never streamed: text that could begin it is held back until the next piece, and a draft that repeats the
    prompt (`evidence.leaks_prompt`, which the check rejects whatever follows) stops the model there."""
    cfg = Configuration.from_runnable_config(config)
    attempt = state.get("attempts", 0) + 1
    writer = get_stream_writer()
    if attempt > 1:
        writer({"reset": attempt})
    messages = prompts.answer_messages(state["standalone"], state["passages"], retry=attempt > 1)
    text, sent, pieces = "", 0, 0
    stream = cfg.chat.stream(messages, max_tokens=cfg.knobs.max_tokens, temperature=0.0)
    try:
        async for piece in stream:
            text += piece
            pieces += 1
            if evidence.leaks_prompt(text):
                break
            if pieces % LOOP_CHECK_PIECES == 0 and evidence.loops(text):
                # A third time the same sentence: the check refuses it whatever follows, so the model stops here
                # (explore72 F11: one sentence streamed 16 times, ~150 s, before its `reset`).
                break
            safe = len(text) - evidence.markup_tail(text)
            if safe > sent:
                writer({"token": text[sent:safe]})
                sent = safe
        else:
            if len(text) > sent:
                writer({"token": text[sent:]})
    except Exception as exc:
        # The model timed out, dropped the connection or is gone: the passages are chosen, and the server's quotes
        # need no model (explore72 F4: the student waited minutes for 503 `assistant_failed`). No second attempt.
        log.warning("the model failed drafting an answer (%s: %s): the server quotes the course", _kind(exc), exc)
        return {"draft": "", "attempts": max(attempt, 2), "cut": False, "model_error": f"{_kind(exc)}: {exc}"[:300]}
    finally:
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()  # stops the model's HTTP stream when we left it early
    # A streamed piece is one token (llama.cpp, OpenAI): as many as the limit means the model was stopped there.
    return {"draft": text.strip(), "attempts": attempt, "cut": pieces >= cfg.knobs.max_tokens}


def _kind(exc: BaseException) -> str:
    return type(exc).__name__


def check(state: AskState) -> dict[str, Any]:
    """Accept the draft only if it is grounded (`evidence.grounded`: a cited sentence the cited passages support,
    not an echo of the instructions, nothing leaked); else retry, then fallback."""
    passages = state["passages"]
    found = evidence.grounded(state.get("draft", ""), passages, state["standalone"], cut=state.get("cut", False))
    if found is not None and (not found.invalid or state.get("attempts", 0) >= 2):
        answer = evidence.strip_invalid(found.answer, found.invalid) if found.invalid else found.answer
        weights = evidence.quote_weights(passages, state["standalone"], state["question"])
        cites = [evidence.citation(n, passages[n - 1], state["standalone"], weights) for n in found.valid]
        return {"type": "answer", "answer": answer, "citations": cites, "reason": "cited"}
    return {"type": "answer", "answer": "", "citations": []}


def fallback(state: AskState, config: RunnableConfig) -> dict[str, Any]:
    """The model could not cite twice: quote the best passages with their citations instead (every passage of a
    source the question names, up to `Knobs.max_passages`), or refuse when no passage shares a subject word with the
    question (`evidence.fallback_answer`)."""
    cfg = Configuration.from_runnable_config(config)
    knobs = cfg.knobs
    # A sync node: LangGraph runs it off the event loop.
    lang = i18n.language(state["question"], _earlier(state), default=_course_language(state, cfg))
    found = evidence.fallback_answer(
        state["passages"], state["standalone"], k=knobs.max_passages, lang=lang, focus=state["question"]
    )
    if found is None and state.get("model_error"):
        # Nothing to quote and no model: a failure, not "the course has nothing about that".
        raise Unavailable(
            "the assistant could not answer; the interaction id identifies the cause",
            code="assistant_failed",
            details={"reason": state["model_error"][:200]},
        )
    if found is None and evidence.asks_for_quiz_answers(state["question"]):
        # The quiz's own chunk was found (its title named), and its prompts are never quoted (explore76 F5).
        answer = i18n.text("quiz_question", lang)
        return {"type": "clarify", "answer": answer, "citations": [], "reason": "quiz_question"}
    if found is None and (said := _in_another_language(state, Configuration.from_runnable_config(config), lang)):
        # A question in another language than the course's found passages but no sentence to quote (explore81 F6).
        return {"type": "refuse", "answer": said, "citations": [], "reason": "other_language"}
    if found is None:
        # Passages were found near the question: "nothing about that in this course" was untrue (explore75 F4).
        answer = i18n.text("no_quote", lang)
        return {"type": "refuse", "answer": answer, "citations": [], "reason": "no_quotable_match"}
    answer, cites = found
    # Why the server quoted: the model's drafts failed the check twice, or the model itself failed (kept with the
    # interaction, whose `error` then says how: `services.assistant`).
    reason = "model_failed_quotes" if state.get("model_error") else "fallback_quotes"
    return {"type": "answer", "answer": answer, "citations": cites, "reason": reason}


def finish_without_answer(state: AskState) -> dict[str, Any]:
    """Clarify or refuse: the text is already in `answer`; never any sources."""
    return {"type": state["route"], "citations": []}
