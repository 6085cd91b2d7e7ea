"""Instructor generation: strict validation of what the model writes (quiz, objectives), retry, then a clear error."""

from __future__ import annotations

import json

import pytest

from smartcourse.assistant import generation
from smartcourse.errors import Unavailable
from tests.unit.test_assistant import OUTBOX, RELAY, ScriptedChat

GOOD = {
    "questions": [
        {"prompt": "Where are events written first?", "options": ["Kafka", "The outbox"], "answer": 1, "source": 1},
        {"prompt": "What publishes them?", "options": ["A relay", "The client", "Nobody"], "answer": 0, "source": 2},
    ]
}


def test_a_valid_quiz_parses() -> None:
    qs = generation.parse_quiz("Here you go:\n" + json.dumps(GOOD), n_questions=2, n_passages=2)
    assert [q.answer for q in qs] == [1, 0] and qs[1].options == ["A relay", "The client", "Nobody"]


@pytest.mark.parametrize(
    ("mutate", "why"),
    [
        (lambda q: q["questions"][0].update(answer=2), "answer must be the index"),
        (lambda q: q["questions"][0].update(options=["only one"]), "at least 2"),
        (lambda q: q["questions"][0].update(options=list("abcdefg")), "at most 6"),
        (lambda q: q["questions"][0].update(options=["Same", "same"]), "distinct"),
        (lambda q: q["questions"][0].update(source=5), "not shown"),
        (lambda q: q["questions"][0].pop("answer"), "answer"),
        (lambda q: q["questions"][0].update(extra="x"), "extra"),
        (lambda q: q["questions"].pop(), "expected 2 questions"),
    ],
)
def test_an_invalid_quiz_is_refused_whole(mutate, why: str) -> None:  # type: ignore[no-untyped-def]
    bad = json.loads(json.dumps(GOOD))
    mutate(bad)
    with pytest.raises(generation.InvalidOutput, match=why):
        generation.parse_quiz(json.dumps(bad), n_questions=2, n_passages=2)


def test_not_json_is_refused() -> None:
    with pytest.raises(generation.InvalidOutput, match="JSON"):
        generation.parse_quiz("Question 1: what is", n_questions=1, n_passages=1)


async def test_invalid_output_is_retried_once_then_an_error() -> None:
    chat = ScriptedChat("not json", json.dumps(GOOD))
    qs = await generation.run(chat, generation.quiz_task(2, 2), [OUTBOX, RELAY])  # type: ignore[arg-type]
    assert len(qs) == 2 and "invalid" in chat.calls[1][-1].content
    chat = ScriptedChat("not json", "still not json")
    with pytest.raises(Unavailable) as err:
        await generation.run(chat, generation.quiz_task(2, 2), [OUTBOX, RELAY])  # type: ignore[arg-type]
    assert err.value.code == "ai_output_invalid" and "JSON" in err.value.details["reason"]


def test_objectives_keep_only_bloom_verb_lines() -> None:
    text = "Objectives:\n1. Explain why the outbox commits events with state.\n- Compare relays and CDC\nfoo bar baz"
    assert generation.parse_objectives(text) == [
        "Explain why the outbox commits events with state",
        "Compare relays and CDC",
    ]
    with pytest.raises(generation.InvalidOutput):
        generation.parse_objectives("The outbox is nice.\nKafka too.")


def test_grounded_text_drops_unshown_citations() -> None:
    assert generation.parse_grounded_text("The outbox commits events [1] and more [4].", 2) == (
        "The outbox commits events [1] and more ."
    )
    with pytest.raises(generation.InvalidOutput):
        generation.parse_grounded_text("ok", 2)
