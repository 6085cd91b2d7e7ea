"""Instructor generation: strict validation of what the model writes (quiz, objectives), retry, then a clear error."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from smartcourse.assistant import generation
from smartcourse.errors import Unavailable
from tests.unit.test_assistant import OUTBOX, RELAY, WEAK, ScriptedChat, hit

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
        # explore31 F9: the list numbers the model wrote made these two "different".
        (lambda q: q["questions"][0].update(options=["2. Ice forms,  slowly", "3. ice forms, slowly"]), "distinct"),
        # explore42 F4: only their final punctuation told these apart.
        (lambda q: q["questions"][0].update(options=["Erosion by waves.", "erosion by waves,"]), "distinct"),
        (lambda q: q["questions"][0].update(source=5), "not shown"),
        (lambda q: q["questions"][0].pop("answer"), "answer"),
        (lambda q: q["questions"][0].update(extra="x"), "extra"),
        (lambda q: q["questions"].pop(), "expected 2 questions"),
        # explore45 F2: an option looping to the schema's bound, and bare letters, were saved as a quiz.
        (
            lambda q: q["questions"][0].update(
                options=["Strombolism", ("Volcano Eruption " + "and Eruption " * 8)[:100], "Lava"]
            ),
            "cut at the 100-character limit",
        ),
        (
            lambda q: q["questions"][0].update(options=["Eruption and lava and ash and lava and ash and lava", "B"]),
            "repeats",
        ),
        (lambda q: q["questions"][0].update(options=["a", "b", "c"]), "names its slot"),
        # explore46 F3: the same, spelled otherwise.
        (lambda q: q["questions"][0].update(options=["Lava", "b)", "(c)"]), "names its slot"),
        (lambda q: q["questions"][0].update(options=["Lava", "Option A"]), "names its slot"),
        (lambda q: q["questions"][0].update(options=["Lava", "Volcano Volcano Volcano Volcano"]), "repeats"),
        (lambda q: q["questions"][0].update(options=["Lava", "x " * 49 + "x"]), "cut at the 100-character limit"),
        (lambda q: q["questions"][0].update(prompt="Why? " + "x" * 195), "cut at the 200-character limit"),
    ],
)
def test_an_invalid_quiz_is_refused_whole(mutate, why: str) -> None:  # type: ignore[no-untyped-def]
    bad = json.loads(json.dumps(GOOD))
    mutate(bad)
    with pytest.raises(generation.InvalidOutput, match=why):
        generation.parse_quiz(json.dumps(bad), n_questions=2, n_passages=2)


def test_a_repeated_option_is_kept_once_while_two_remain() -> None:
    """explore46: 6 of 9 quizzes of the embedded model were refused for one repeated option; the question keeps each
    option once, its answer on the kept one. Fewer than two left is refused, as before."""
    repeated = json.loads(json.dumps(GOOD))
    repeated["questions"][1].update(options=["A relay", "The client", "1. a relay."], answer=2)
    qs = generation.parse_quiz(json.dumps(repeated), n_questions=2, n_passages=2)
    assert (qs[1].options, qs[1].answer) == (["A relay", "The client"], 0)
    repeated["questions"][1].update(options=["A relay", "a relay", "The client"], answer=2)
    qs = generation.parse_quiz(json.dumps(repeated), n_questions=2, n_passages=2)
    assert (qs[1].options, qs[1].answer) == (["A relay", "The client"], 1)


def test_a_quiz_question_must_be_about_its_source_passage() -> None:
    """explore46 F4: a quiz on travelling by car, train or bus came back for a lesson on rivers, and could be saved."""
    off = json.loads(json.dumps(GOOD))
    off["questions"][0].update(
        prompt="How can you travel the world?", options=["By car", "By bus", "On foot"], answer=0
    )
    with pytest.raises(generation.InvalidOutput, match="question 0 is about none of the passages"):
        generation.parse_quiz(json.dumps(off), n_questions=2, n_passages=2, passages=[OUTBOX, RELAY])
    assert len(generation.parse_quiz(json.dumps(GOOD), n_questions=2, n_passages=2, passages=[OUTBOX, RELAY])) == 2
    # A question citing the wrong passage is the one it is about's (the embedded model cites passage 1 most often).
    miscited = {
        "questions": [
            {"prompt": "What does the relay lock?", "options": ["Unsent rows", "Tables"], "answer": 0, "source": 1},
            {
                "prompt": "When are certificates issued?",
                "options": ["At 100 percent", "Never"],
                "answer": 0,
                "source": 1,
            },
        ]
    }
    qs = generation.parse_quiz(json.dumps(miscited), n_questions=2, n_passages=2, passages=[WEAK, RELAY])
    assert [q.source for q in qs] == [2, 1]


def test_list_markers_are_taken_off_the_options() -> None:
    numbered = json.loads(json.dumps(GOOD))
    numbered["questions"][1]["options"] = ["1. A relay", "B) The client", "- Nobody"]
    numbered["questions"][0]["options"] = ["3.5 metres", "(b) Kafka"]
    qs = generation.parse_quiz(json.dumps(numbered), n_questions=2, n_passages=2)
    assert qs[1].options == ["A relay", "The client", "Nobody"] and qs[0].options == ["3.5 metres", "Kafka"]


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


def test_objectives_wrapped_in_markup_are_read_without_it() -> None:
    """explore42 F3: lines the model wrapped in HTML or Markdown emphasis were refused ("no line starts with a Bloom
    verb"), 5 calls of 8."""
    text = (
        "<mark>1. Explain how waves erode a headland.</mark>\n"
        "<b>2. Describe the formation of a sea stack</b>\n"
        "**3. Compare** spits and bars\n"
        "- *Identify* the parts of a wave-cut platform\n"
        "<p>The coast is nice.</p>\n"
        "Explain: The passage describes the formation of a spit.\n"  # prose under a label (explore43 N2)
        "Describe what the passage says about tides"
    )
    assert generation.parse_objectives(text) == [
        "Explain how waves erode a headland",
        "Describe the formation of a sea stack",
        "Compare spits and bars",
        "Identify the parts of a wave-cut platform",
    ]


def test_an_objective_about_none_of_the_passages_is_dropped() -> None:
    """explore76 F6: "Describe the process of creating a snowboard" over a lesson on seracs was accepted, with a
    citation of the lesson that made it look grounded."""
    seracs = hit(5, "Seracs", "A serac is a block of ice formed where a glacier cracks over a steep slope.", 0.9)
    reply = json.dumps(
        {"objectives": ["Describe the process of creating a snowboard", "Explain how a serac forms on a glacier"]}
    )
    assert generation.parse_objectives(reply, [seracs]) == ["Explain how a serac forms on a glacier"]
    with pytest.raises(generation.InvalidOutput, match="no usable objective"):
        generation.parse_objectives(json.dumps({"objectives": ["Identify the key features of a snowboard"]}), [seracs])


def test_objectives_as_json_keep_only_the_valid_items() -> None:
    """explore43 F3: asked for lines, the embedded model wrote none in 10 calls of 12; it is now asked for (and
    constrained to) `{"objectives": [...]}`. An item that loops, is cut at the schema's length or starts with no
    Bloom verb is left out; a reply of another shape is invalid."""
    loop = "Explain the process of a relay process, then describe the process of a relay process, then describe"
    cut = "Describe " + "x" * (generation.OBJECTIVE_CHARS - 9)
    reply = json.dumps(
        {
            "objectives": [
                "Explain how the outbox commits events.",
                loop,
                cut,
                "The outbox is nice",
                "Explain, Describe, Compare, Apply, Identify",  # the instruction's verbs copied
                "Explain \u2014 Foundations \u203a",  # two words
                "Describe the [passage_id] in [table_name]",  # a template's blanks
                "Describe how rivers carry sediment to the sea 79308181-4a66-4801",  # an id the material had
                "Compare and contrast relays and CDC",
                "explain how the outbox commits events",  # said twice
            ]
        }
    )
    assert generation.parse_objectives(reply) == [
        "Explain how the outbox commits events",
        "Compare and contrast relays and CDC",
    ]
    copied = [
        "State the outbox table's purpose",  # a sentence of the passage
        "Explain the table \u2014 Module 1 \u203a Outbox",  # its source label
        "Explain why an Outbox \u2014 Module 1",  # its title and module
        "Describe the process of how a relay \u2014 Module 1 \u203a",  # a part of it
        "Explain the outbox of module 1 in depth",  # the same words, but no label
        "Explain how a relay publishes events",
    ]
    state = hit(3, "Outbox", "State the outbox table's purpose. The relay reads it.", 0.9)
    assert state.chunk.location == "Module 1 > Outbox"
    reply = json.dumps({"objectives": copied})
    assert generation.parse_objectives(reply, [state]) == [
        "Explain the outbox of module 1 in depth",
        "Explain how a relay publishes events",
    ]
    # explore45 F1: one phrase under each verb of the instruction is one objective; a passage's sentence after
    # "<verb> how" is a copy.
    rivers = hit(
        4, "Rivers", "Rivers carry sediment to the sea 7930. Deltas form at the mouth. A relay sends messages.", 0.9
    )
    reply = json.dumps(
        {
            "objectives": [
                "Explain how to use the relay to send messages",
                "Describe how to use the relay to send messages",
                "Compare how to use the relay to send messages",
                "Explain how rivers carry sediment to the sea 7930",
                "Describe where deltas form and why",
            ]
        }
    )
    assert generation.parse_objectives(reply, [rivers]) == [
        "Explain how to use the relay to send messages",
        "Describe where deltas form and why",
    ]
    shapes = ('{"objectives": "Explain the outbox"}', '{"goals": ["Explain the outbox table"]}', '{"objectives": [1]}')
    for bad in shapes:
        with pytest.raises(generation.InvalidOutput, match="objectives"):
            generation.parse_objectives(bad)
    schema = generation.objectives_json_schema()["properties"]["objectives"]
    assert (schema["minItems"], schema["maxItems"], schema["items"]["maxLength"]) == (3, 5, generation.OBJECTIVE_CHARS)


def test_objectives_so_far_shows_each_accepted_item_once_it_is_closed() -> None:
    reply = json.dumps({"objectives": ["Explain how the outbox commits events.", "The outbox", 'Compare "and" CDC']})
    shown = [generation.objectives_so_far(reply[:n]) for n in range(len(reply) + 1)]
    assert shown[-1] == '- Explain how the outbox commits events\n- Compare "and" CDC'
    assert all(b.startswith(a) for a, b in itertools.pairwise(shown))  # only ever grows
    assert sorted(set(shown), key=len) == ["", "- Explain how the outbox commits events", shown[-1]]
    assert generation.objectives_so_far('{"objecti') == ""
    assert generation.objectives_so_far("1. Explain the outbox table\n2. Compare re") == "- Explain the outbox table"


def test_objectives_of_a_course_in_another_language_are_accepted() -> None:
    """explore7 F2: only English verbs were accepted, so a French course could never get objectives."""
    text = (
        "- Expliquer le rôle de la chlorophylle dans la photosynthèse\n"
        "- Décrire la structure d'une feuille\n"  # an accented capital, as typed
        "- Explicar la función de los estomas\n"
        "- Erklären, wie Pflanzen Licht nutzen\n"
        "- La chlorophylle est verte"
    )
    assert [o.split()[0] for o in generation.parse_objectives(text)] == [
        "Expliquer",
        "Décrire",
        "Explicar",
        "Erklären,",
    ]
    assert "language of the passages" in generation.prompts.GENERATOR_SYSTEM


def test_grounded_text_drops_unshown_citations() -> None:
    assert generation.parse_grounded_text("The outbox commits events [1] and more [4].", [OUTBOX, RELAY]) == (
        "The outbox commits events [1] and more."
    )
    with pytest.raises(generation.InvalidOutput):
        generation.parse_grounded_text("ok", [OUTBOX, RELAY])


def test_a_line_that_plays_back_a_passage_label_is_dropped() -> None:
    # The local model opened a summary with the passage's `source="..."` in its own wrapping and dashes.
    for label in ("<<Why an outbox \u2013 Module 1 \u203a Why an outbox>>", "Why an outbox", "**The relay**"):
        text = f"{label}\nThe outbox table commits events with the state change [1]."
        assert generation.parse_grounded_text(text, [OUTBOX, RELAY]) == (
            "The outbox table commits events with the state change [1]."
        ), label
    # A sentence that only starts with a title's words is text, kept.
    kept = "Why an outbox matters: the outbox table commits events with the state change [1]."
    assert generation.parse_grounded_text(kept, [OUTBOX, RELAY]) == kept


def test_a_summary_made_of_source_labels_is_refused() -> None:
    """explore73 F2: a course summary made only of lines of label names ("- Anatomy of a response — Foundations of
    HTTP", some invented, one twice) was accepted. A sentence naming a lesson is kept."""
    labels = (
        "The passages in this response are:\n\n- Why an outbox \u2014 Module 1\n- The relay \u2014 Outbox and relay\n"
    )
    with pytest.raises(generation.InvalidOutput):  # what is left is its heading line
        generation.parse_grounded_text(labels + "- The relay \u2014 Outbox and relay", [OUTBOX, RELAY])
    text = "The relay \u2014 a process of its own \u2014 publishes the outbox rows in order [2]."
    assert generation.parse_grounded_text(labels + text, [OUTBOX, RELAY]).endswith(text)


@pytest.mark.parametrize(
    ("prompt", "options", "why"),
    [
        ("Why an outbox \u2014 Module 1 \u203a Why an outbox", ["The outbox", "The relay"], "source label"),
        ("What does the outbox table commit in the passage n=", ["Events", "Rows"], "prompt's markup"),
        ("What does the outbox table commit?", ["1", "2", "3"], "number their slots"),
        ("Which rows does the relay lock?", ["4", "5", "6"], "number their slots"),
    ],
)
def test_a_quiz_that_plays_the_prompt_back_is_refused(prompt: str, options: list[str], why: str) -> None:
    """explore73 F1: prompts that were the passages' source labels or the prompt's markup, with options "1", "2",
    "3", were accepted and saved as a quiz."""
    bad = json.loads(json.dumps(GOOD))
    bad["questions"][0].update(prompt=prompt, options=options, answer=0)
    with pytest.raises(generation.InvalidOutput, match=why):
        generation.parse_quiz(json.dumps(bad), n_questions=2, n_passages=2, passages=[OUTBOX, RELAY])


@pytest.mark.parametrize(
    ("prompt", "options"),
    [
        # explore74 F6: "Greenland" named by no passage; it shared "outbox"-like common words and was saved.
        ("What is the main purpose of the Greenland outbox table?", ["To store events", "To delete events"]),
        # ... or in the right answer (a wrong option may name anything: "Kafka").
        ("Where are events written first?", ["Kafka", "The Debezium outbox"]),
    ],
)
def test_a_question_naming_what_no_passage_gives_is_invalid(prompt: str, options: list[str]) -> None:
    bad = json.loads(json.dumps(GOOD))
    bad["questions"][0].update(prompt=prompt, options=options, answer=1 if "Kafka" in options else 0)
    with pytest.raises(generation.InvalidOutput, match="which no passage gives"):
        generation.parse_quiz(json.dumps(bad), n_questions=2, n_passages=2, passages=[OUTBOX, RELAY])


def test_numbers_asked_for_are_answers() -> None:
    asked = json.loads(json.dumps(GOOD))
    asked["questions"][0].update(prompt="How many relays publish the outbox table's events?", options=["1", "2"])
    assert len(generation.parse_quiz(json.dumps(asked), n_questions=2, n_passages=2, passages=[OUTBOX, RELAY])) == 2


class JsonChat(ScriptedChat):
    """A fake with the adapter's `stream_json`: each scripted reply is text, or an exception to raise mid-stream."""

    def __init__(self, *replies: str | Exception) -> None:
        super().__init__()
        self.script = list(replies)
        self.budgets: list[int] = []
        self.schemas: list[dict[str, Any]] = []

    async def stream_json(self, messages, *, schema, max_tokens):  # type: ignore[no-untyped-def]
        self.calls.append(list(messages))
        self.budgets.append(max_tokens)
        self.schemas.append(schema)
        reply = self.script.pop(0)
        if isinstance(reply, Exception):
            yield '{"questions": [{"prompt": "Where'
            raise reply
        yield reply


async def test_a_reply_cut_at_the_output_limit_is_invalid_output_retried_with_a_larger_budget() -> None:
    """What the embedded model did on every quiz: the JSON outgrew `max_tokens` (LengthFinishReasonError, which
    escaped as a generic 503 `assistant_failed`)."""
    from smartcourse.ports import OutputTruncated

    task = generation.quiz_task(2, 2)
    resets: list[int] = []
    chat = JsonChat(OutputTruncated(task.max_tokens), json.dumps(GOOD))
    qs = await generation.run(chat, task, [OUTBOX, RELAY], on_reset=resets.append)  # type: ignore[arg-type]
    assert len(qs) == 2 and resets == [2]  # a streaming client is told to drop the cut-off attempt's tokens
    assert chat.budgets == [task.max_tokens, task.max_tokens * generation.RETRY_BUDGET]
    assert "too long" in chat.calls[1][-1].content and "cut off" in chat.calls[1][-1].content

    chat = JsonChat(OutputTruncated(task.max_tokens), OutputTruncated(task.max_tokens * 2))
    with pytest.raises(Unavailable) as err:
        await generation.run(chat, task, [OUTBOX, RELAY])  # type: ignore[arg-type]
    assert err.value.code == "ai_output_invalid"
    assert f"cut off at the {task.max_tokens * 2}-token output limit" in err.value.details["reason"]
    assert "valid quiz in 2 attempts" in err.value.message and "nothing was saved" in err.value.message


async def test_objectives_are_asked_for_as_constrained_json() -> None:
    reply = json.dumps({"objectives": ["Explain how the outbox commits events", "Describe the relay's role"]})
    chat = JsonChat(reply)
    shown: list[str] = []
    out = await generation.run(chat, generation.objectives_task(), [OUTBOX], on_token=shown.append)  # type: ignore[arg-type]
    assert out == ["Explain how the outbox commits events", "Describe the relay's role"]
    assert chat.schemas == [generation.objectives_json_schema()] and chat.budgets == [generation.OBJECTIVES_TOKENS]
    assert "".join(shown) == "- Explain how the outbox commits events\n- Describe the relay's role"


def sse_completion(*chunks: dict, finish: str) -> bytes:  # type: ignore[type-arg]
    """An OpenAI-compatible streamed chat completion (what llama.cpp's server sends)."""
    base = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    lines = [{**base, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in chunks]
    lines.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    lines.append({**base, "choices": [], "usage": {"prompt_tokens": 50, "completion_tokens": 2, "total_tokens": 52}})
    body = "".join(f"data: {json.dumps(x)}\n\n" for x in lines) + "data: [DONE]\n\n"
    return body.encode()


async def test_the_adapter_turns_a_length_cut_json_reply_into_output_truncated() -> None:
    """The real langchain-openai/openai path: with a JSON schema, `finish_reason: length` raises the openai
    client's LengthFinishReasonError; the adapter hands the port's OutputTruncated to generation instead. Plain
    streams (summary, objectives, explanation, answers) just end: their text is validated as usual."""
    import httpx
    from langchain_openai import ChatOpenAI

    from smartcourse.adapters.chat import OpenAIChatModel
    from smartcourse.ports import ChatMessage, OutputTruncated

    body = sse_completion({"role": "assistant", "content": '{"questions": [{"prompt": '}, finish="length")
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})
    )
    model = OpenAIChatModel(base_url="http://llm.test/v1", model="m", api_key=None)
    model._llm = ChatOpenAI(
        base_url="http://llm.test/v1",
        model="m",
        api_key="none",  # type: ignore[arg-type]
        streaming=True,
        stream_usage=True,
        max_retries=0,
        http_async_client=httpx.AsyncClient(transport=transport),
    )
    messages = [ChatMessage("user", "quiz please")]
    with pytest.raises(OutputTruncated) as err:
        _ = [p async for p in model.stream_json(messages, schema={"type": "object"}, max_tokens=2)]
    assert err.value.max_tokens == 2 and "cut off at the 2-token output limit" in str(err.value)
    assert "".join([p async for p in model.stream(messages, max_tokens=2)]) == '{"questions": [{"prompt": '


# --- explore-ai L4/L6: form errors the validation now refuses -----------------------------------------------------


def test_a_quiz_asking_the_same_question_twice_is_refused() -> None:
    """ "What is the nucleus?" twice with different answers (generate-quiz, lesson "The nucleus", n=3)."""
    same = json.loads(json.dumps(GOOD))
    same["questions"][0]["prompt"] = "What is the nucleus?"
    same["questions"][1]["prompt"] = "What is the nucleus ?"
    with pytest.raises(generation.InvalidOutput, match="same prompt"):
        generation.parse_quiz(json.dumps(same), n_questions=2, n_passages=2)


def test_html_entities_in_a_quiz_are_decoded() -> None:
    """The model copied the escaped source label: "The nucleus &gt; The nucleus &gt; Nucleus"."""
    quiz = json.loads(json.dumps(GOOD))
    quiz["questions"][0]["options"] = ["The nucleus &gt; The nucleus &gt; Nucleus", "The outbox"]
    quiz["questions"][0]["prompt"] = "Where &amp; when are events written?"
    qs = generation.parse_quiz(json.dumps(quiz), n_questions=2, n_passages=2)
    assert (
        qs[0].options[0] == "The nucleus > The nucleus > Nucleus" and qs[0].prompt == "Where & when are events written?"
    )


MITOCHONDRIA = [
    hit(8, "Mitochondria", "Mitochondria make ATP by oxidative phosphorylation. They have two membranes.", 0.6),
    hit(9, "The matrix", "The matrix holds the enzymes of the Krebs cycle.", 0.5),
]


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("The cell is made up of tiny machines that make up the cell. " * 14, "repeats the same sentence"),
        (
            "Oxidative phosphorylation makes ATP in the mitochondria [1]. It uses the electron transport chain.\n\n"
            * 3,
            "repeats the same sentence",
        ),
        ("You can use only the passages you want. " * 5, "instructions"),
        ("Mitochondria make ATP [1]. You can use only the passages you want.", "instructions"),
    ],
)
def test_degenerate_summaries_and_explanations_are_refused(text: str, why: str) -> None:
    with pytest.raises(generation.InvalidOutput, match=why):
        generation.parse_grounded_text(text, MITOCHONDRIA)
    ok = "Mitochondria make ATP [1]. They have two membranes [1]. The matrix holds enzymes [2]."
    assert generation.parse_grounded_text(ok, MITOCHONDRIA) == ok


async def test_the_error_message_names_the_kind_in_good_english() -> None:
    chat = ScriptedChat("nothing useful", "nothing useful")
    with pytest.raises(Unavailable) as err:
        await generation.run(chat, generation.objectives_task(), [OUTBOX])  # type: ignore[arg-type]
    assert "did not write valid learning objectives in 2 attempts" in err.value.message
    assert "a valid objectives" not in err.value.message


# --- explore-ai L7: a failed generation's record and error event -------------------------------------------------


def generation_run(
    chat: object, task: generation.Task, recorded: list[Any], monkeypatch: pytest.MonkeyPatch, passages: Any = None
) -> Any:
    """A prepared `GenerationRun` on a fake model, its interaction records collected in `recorded`."""
    import asyncio
    import uuid

    from smartcourse.security import Principal
    from smartcourse.services import assistant

    async def fake_record(container: object, interaction: assistant.Interaction, **kw: object) -> None:
        recorded.append(interaction)

    class Container:
        def chat_model(self) -> object:
            return chat

    monkeypatch.setattr(assistant, "record", fake_record)
    user = uuid.uuid4()
    return assistant.GenerationRun(
        container=Container(),
        principal=Principal(user_id=user, role="instructor"),
        task=task,
        passages=passages or [OUTBOX],
        interaction=assistant.Interaction(user_id=user, course_id=uuid.uuid4(), kind=task.kind, model="scripted"),
        slot=asyncio.Semaphore(0),
        query="outbox",
    )


async def test_a_failed_generation_records_its_reason_and_the_error_event_has_one_shape(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from smartcourse.assistant.sse import generation_events
    from smartcourse.services import assistant

    recorded: list[assistant.Interaction] = []
    chat = ScriptedChat("nothing useful", "nothing useful")
    run = generation_run(chat, generation.objectives_task(), recorded, monkeypatch)
    events = [e async for e in generation_events(run)]
    error = json.loads(events[-1]["data"])
    assert events[-1]["event"] == "error" and error["code"] == "ai_output_invalid"
    assert error["interaction_id"] == str(run.interaction.id) == error["details"]["interaction_id"]
    assert recorded[0].outcome == "error" and recorded[0].reason.startswith("no usable objective: each must start")
    long = Unavailable("x", code="ai_output_invalid", details={"reason": "malformed JSON: " + "e" * 80})
    assert len(assistant.failure_reason(long) or "") == assistant.REASON_CHARS
    assert assistant.failure_reason(Unavailable("busy", code="assistant_busy")) == "assistant_busy"


async def test_a_streamed_generation_is_recorded_as_streamed(monkeypatch: pytest.MonkeyPatch) -> None:
    """D6 (round 2): the SSE generations were all recorded `streamed = false`; the JSON ones stay false."""
    from smartcourse.assistant.sse import generation_events

    good = "- Explain how the outbox commits events\n- Describe the relay's role"
    recorded: list[Any] = []
    run = generation_run(ScriptedChat(good), generation.objectives_task(), recorded, monkeypatch)
    events = [e async for e in generation_events(run)]
    assert events[-1]["event"] == "done" and recorded[0].outcome == "generated" and recorded[0].streamed is True
    run = generation_run(ScriptedChat(good), generation.objectives_task(), recorded, monkeypatch)
    await run.execute()
    assert recorded[1].outcome == "generated" and recorded[1].streamed is False


async def test_a_generation_failing_mid_stream_resets_before_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """D11 (round 2): as on /ai/ask-stream, a `reset` discards the tokens of a generation that failed."""
    from smartcourse.assistant.sse import generation_events
    from tests.unit.test_assistant import DroppingChat

    run = generation_run(DroppingChat(), generation.summary_task([OUTBOX]), [], monkeypatch)
    events = [(e["event"], json.loads(e["data"])) async for e in generation_events(run)]
    assert events[0] == (
        "progress",
        {"attempt": 1, "written": 0, "budget": generation.summary_task([OUTBOX]).max_tokens},
    )
    events = events[1:]
    assert [name for name, _ in events] == ["token", "token", "token", "reset", "error"], events
    assert events[3][1] == {"attempt": 2, "next": "error"} and events[4][1]["code"] == "assistant_failed"


async def test_a_model_call_that_timed_out_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    """D12 (round 2): a hung model cost two 60 s timeouts (the openai client retried the timed-out request); now it
    costs one. A refused connection or a 500 before any output is still tried once more."""
    import httpx
    import openai

    from smartcourse.adapters import chat as adapter
    from smartcourse.ports import ChatMessage

    monkeypatch.setattr(adapter, "RETRY_PAUSE_SECONDS", 0.0)
    calls: list[str] = []

    def hang(request: httpx.Request) -> httpx.Response:
        calls.append("hang")
        raise httpx.ReadTimeout("timed out", request=request)

    def down(request: httpx.Request) -> httpx.Response:
        calls.append("500")
        return httpx.Response(500, json={"error": {"message": "boom"}})

    messages = [ChatMessage("user", "hello")]
    for handler, expected, error in ((hang, 1, openai.APITimeoutError), (down, 2, openai.InternalServerError)):
        calls.clear()
        client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        model = adapter.OpenAIChatModel(
            base_url="http://llm.test/v1", model="m", api_key=None, http_async_client=client
        )
        with pytest.raises(error):
            _ = [p async for p in model.stream(messages)]
        assert len(calls) == expected, (handler.__name__, calls)


@pytest.mark.parametrize(
    ("reply", "task", "resets"),
    [
        # Objectives written as "1. …" lines (a server that does not constrain the output) are streamed as the
        # accepted "- …" lines, an invented tail never shown: no reset.
        (
            "1. Explain how the outbox commits events\n2. Describe the relay\n\nHere is the passage: Coral polyps …",
            generation.objectives_task(),
            0,
        ),
        # Objectives as JSON: only the accepted items are streamed, as `done.text` spells them.
        (
            json.dumps({"objectives": ["Explain how the outbox commits events.", "Nice", "Describe the relay role"]}),
            generation.objectives_task(),
            0,
        ),
        # A summary whose invalid citation is removed.
        ("The outbox table commits events with the state change [1] [7]. A relay publishes them [1].", None, 1),
        # A summary accepted as streamed: no reset.
        ("The outbox table commits events with the state change [1]. A relay publishes them [1].", None, 0),
        # A quiz: its JSON tokens are dropped, the questions are in `done`.
        (json.dumps(GOOD), generation.quiz_task(2, 2), 1),
    ],
)
async def test_a_generation_stream_ends_with_exactly_done_text(
    reply: str, task: generation.Task | None, resets: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """D7 (round 2): the generation stream showed text that `done` dropped, with no `reset`."""
    from smartcourse.assistant.sse import generation_events
    from tests.unit.test_assistant import what_a_client_shows

    run = generation_run(
        ScriptedChat(reply), task or generation.summary_task([OUTBOX, RELAY]), [], monkeypatch, passages=[OUTBOX, RELAY]
    )
    events = [(e["event"], json.loads(e["data"])) async for e in generation_events(run)]
    done = events[-1][1]
    assert events[-1][0] == "done", events
    assert what_a_client_shows(events[:-1]).strip() == done.get("text", ""), events
    assert [d for n, d in events if n == "reset"] == [{"attempt": 2, "next": "server"}] * resets, events


async def test_a_streamed_summary_loses_a_split_invalid_citation_and_its_blank(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The round-2 exploratory test's "They expel algae ." — as in the answer's stream, with "[7]" in pieces."""
    from smartcourse.assistant.sse import generation_events
    from tests.unit.test_assistant import SPLIT_INVALID, PiecesChat, what_a_client_shows

    run = generation_run(
        PiecesChat(SPLIT_INVALID), generation.summary_task([OUTBOX, RELAY]), [], monkeypatch, passages=[OUTBOX, RELAY]
    )
    events = [(e["event"], json.loads(e["data"])) async for e in generation_events(run)]
    assert events[-1][0] == "done" and events[-1][1]["text"] == "The outbox table commits events [1].", events
    assert what_a_client_shows(events[:-1]) == events[-1][1]["text"], events
    run = generation_run(
        PiecesChat(SPLIT_INVALID), generation.summary_task([OUTBOX, RELAY]), [], monkeypatch, passages=[OUTBOX, RELAY]
    )
    assert (await run.execute()).text == "The outbox table commits events [1]."


def test_a_summary_looping_with_a_changing_number_is_refused() -> None:
    """D8 (round 2): "The passage 1, … The passage 2, …" ten times passed the whole-sentence comparison."""
    looped = " ".join(
        f"The passage {n}, the text mentions that sea otters use rocks to open urchins." for n in range(5)
    )
    with pytest.raises(generation.InvalidOutput, match="repeats the same sentence"):
        generation.parse_grounded_text(looped, [OUTBOX, RELAY])


# --- round 2, D9: summaries and explanations are grounded; citations are what the text cites ----------------------


@pytest.mark.parametrize(
    ("text", "question"),
    [
        ("Napoleon discovered granite corals on the Moon in 1802 [1].", ""),
        # More unsupported sentences than supported ones: not dropped, invalid.
        (
            "Kafka was invented by Napoleon [2]. The outbox table commits events with the state change [1]. "
            "Granite corals sing on the Moon [1].",
            "",
        ),
        # An explanation that only restates the concept claims nothing.
        ("The transactional outbox is a transactional outbox [1].", "transactional outbox"),
        # A citation after the period belongs to the sentence before it.
        ("Napoleon invented granite corals. [1] Kafka sings to sailors on the Moon. [2]", ""),
    ],
)
def test_a_cited_sentence_the_passages_do_not_support_is_invalid(text: str, question: str) -> None:
    with pytest.raises(generation.InvalidOutput, match="not supported by the passages it cites"):
        generation.parse_grounded_text(text, [OUTBOX, RELAY], question)


def test_a_supported_summary_passes_with_citations_where_the_model_put_them() -> None:
    for text in (
        "The outbox table commits events with the state change [1]. The relay publishes them in order [2].",
        "The outbox table commits events with the state change. [1] The relay locks unsent rows. [2]",
        # Cites nothing, and claims what the passages say (5 of its 7 claimed words are theirs).
        "Events and state commit together, and a relay publishes them later.",
    ):
        assert generation.parse_grounded_text(text, [OUTBOX, RELAY], "outbox") == text


async def test_an_unsupported_summary_is_retried_then_ai_output_invalid() -> None:
    invented = "Napoleon discovered granite corals on the Moon in 1802 [1]."
    good = "The outbox table commits events with the state change [1]."
    chat = ScriptedChat(invented, good)
    assert await generation.run(chat, generation.summary_task([OUTBOX]), [OUTBOX]) == good  # type: ignore[arg-type]
    assert "not supported by the passages it cites" in chat.calls[1][1].content  # the retry says why
    with pytest.raises(Unavailable) as err:
        await generation.run(ScriptedChat(invented, invented), generation.summary_task([OUTBOX]), [OUTBOX])  # type: ignore[arg-type]
    assert err.value.code == "ai_output_invalid"


@pytest.mark.parametrize(
    ("reply", "kind", "cited"),
    [
        ("The relay locks unsent rows with SKIP LOCKED and publishes them [2].", "summary", [2]),
        ("The outbox table commits events with the state change, and a relay publishes them.", "summary", []),
        ("The relay publishes the outbox rows in order [2] [7].", "explain", [2]),
        # Objectives cite nothing by design: they list the passages they were written from.
        ("- Explain how the outbox commits events\n- Describe the relay's role", "objectives", [1, 2]),
    ],
)
async def test_citations_are_the_passages_the_text_cites(
    reply: str, kind: str, cited: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    passages = [OUTBOX, RELAY]
    task = {
        "summary": generation.summary_task(passages),
        "explain": generation.explain_task("relay", "beginner", passages),
        "objectives": generation.objectives_task(),
    }[kind]
    recorded: list[Any] = []
    out = await generation_run(ScriptedChat(reply), task, recorded, monkeypatch, passages=passages).execute()
    assert [c.index for c in out.citations] == cited, out
    assert [c.chunk_id for c in out.citations] == [passages[n - 1].chunk.chunk_id for n in cited]


# --- uncited sentences of summaries and explanations are checked as the ask's are (round 2 left-over) -------------

#: What a fake model writes: a sentence the passages support, and invented ones; none cites anything.
SUPPORTED = "The outbox table commits events with the state change, and a relay publishes them."
INVENTED = "Corals are actually plants that grow on the Moon and were discovered by Napoleon in 1802."
INVENTED_TOO = "Granite corals sing to sailors every winter on the far side of Mars."


@pytest.mark.parametrize(
    ("text", "question"),
    [
        (f"{SUPPORTED} {INVENTED} {INVENTED_TOO}", ""),
        (f"{INVENTED} {INVENTED_TOO} {SUPPORTED}", "outbox"),
        # A cited sentence passes; the uncited ones after it are still checked.
        (f"The outbox table commits events with the state change [1]. {INVENTED} {INVENTED_TOO}", ""),
        # An explanation: the concept's own words are no support ("transactional outbox" is in the passages).
        ("A transactional outbox is an invention of Napoleon for granite corals.", "transactional outbox"),
    ],
)
def test_an_uncited_sentence_the_passages_do_not_support_is_invalid(text: str, question: str) -> None:
    with pytest.raises(generation.InvalidOutput, match=r"not supported by the passages \(it cites none\)"):
        generation.parse_grounded_text(text, [OUTBOX, RELAY], question)


@pytest.mark.parametrize(
    ("text", "question", "kept"),
    [
        (f"{SUPPORTED} {INVENTED}", "", SUPPORTED),
        (f"{INVENTED} {SUPPORTED}", "outbox", SUPPORTED),
        (
            f"The outbox table commits events with the state change [1]. {INVENTED} The relay publishes them [2].",
            "",
            "The outbox table commits events with the state change [1]. The relay publishes them [2].",
        ),
        ("The outbox table commits events with the state change [1]. Kafka was invented by Napoleon [2].", "",
         "The outbox table commits events with the state change [1]."),
        # A citation after the period belongs to the sentence before it, and goes with it.
        ("The outbox table commits events with the state change. Napoleon invented granite corals. [1]", "",
         "The outbox table commits events with the state change."),
        # A list keeps its other items, and loses the emptied one.
        (f"- {SUPPORTED}\n- {INVENTED}\n- The relay publishes them [2].", "",
         f"- {SUPPORTED}\n- The relay publishes them [2]."),
    ],
)  # fmt: skip
def test_unsupported_sentences_no_more_than_the_supported_ones_are_dropped(text: str, question: str, kept: str) -> None:
    assert generation.parse_grounded_text(text, [OUTBOX, RELAY], question) == kept


def test_uncited_sentences_that_claim_nothing_or_what_the_passages_say_pass() -> None:
    for text in (
        SUPPORTED,
        f"Here is a short summary. {SUPPORTED} I hope this helps.",  # connective sentences claim nothing
        "The relay locks unsent rows with SKIP LOCKED. It publishes them in order.",
    ):
        assert generation.parse_grounded_text(text, [OUTBOX, RELAY]) == text


@pytest.mark.parametrize("kind", ["summary", "explain"])
async def test_a_generation_with_an_unsupported_uncited_sentence_is_retried_then_ai_output_invalid(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fake ChatModel writes a supported sentence and two unsupported ones: the generation is retried with the
    reason (no other model call: the check is lexical), and a second such reply is `ai_output_invalid`; a supported
    retry is the result. One unsupported sentence beside a supported one is dropped, without a retry."""
    passages = [OUTBOX, RELAY]

    def task() -> generation.Task:
        if kind == "summary":
            return generation.summary_task(passages)
        return generation.explain_task("outbox relay", "beginner", passages)

    chat = ScriptedChat(f"{SUPPORTED} {INVENTED} {INVENTED_TOO}", SUPPORTED)
    out = await generation_run(chat, task(), [], monkeypatch, passages=passages).execute()
    assert out.text == SUPPORTED and out.citations == []
    assert (
        len(chat.calls) == 2
        and "it cites none" in chat.calls[1][-1].content
        and "Corals are actually plants" in chat.calls[1][-1].content
    )
    recorded: list[Any] = []
    chat = ScriptedChat(f"{SUPPORTED} {INVENTED}")
    out = await generation_run(chat, task(), [], monkeypatch, passages=passages).execute()
    assert out.text == SUPPORTED and len(chat.calls) == 1
    chat = ScriptedChat(f"{SUPPORTED} {INVENTED} {INVENTED_TOO}", f"{INVENTED} {INVENTED_TOO} {SUPPORTED}")
    with pytest.raises(Unavailable) as err:
        await generation_run(chat, task(), recorded, monkeypatch, passages=passages).execute()
    assert err.value.code == "ai_output_invalid" and len(chat.calls) == 2
    assert "not supported" in err.value.details["reason"] and recorded[0].outcome == "error"


def test_a_dropped_sentence_is_cut_where_a_sentence_starts_not_inside_a_word() -> None:
    from smartcourse.assistant import evidence

    text = "PostgreSQL keeps the outbox rows. SQL keeps the outbox rows."
    assert evidence.drop_sentences(text, ["SQL keeps the outbox rows."]) == "PostgreSQL keeps the outbox rows."


def test_a_cut_off_last_sentence_is_dropped_at_the_end_not_where_an_earlier_one_begins_like_it() -> None:
    """explore73 F3: the cut-off end "HTTP is a protocol" was dropped from the start of the first sentence ("HTTP is
    a protocol for …"), which was mutilated, and the text kept its cut end and was refused."""
    from smartcourse.assistant.generation import _without_unfinished_end

    text = "HTTP is a protocol for fetching resources. Servers answer requests. HTTP is a protocol"
    assert _without_unfinished_end(text) == "HTTP is a protocol for fetching resources. Servers answer requests."


async def test_a_generation_stream_never_shows_the_prompts_markup() -> None:
    """explore7 F8: a summary stream sent `<course_material>\\n<passage n="1" ...>` as tokens before its reset (the
    ask stream held it back). The markup is held back and the attempt stopped there; the retry's text streams."""
    played_back = 'Here it is: <course_material> <passage n="1" src="Why an outbox"> The outbox table commits events'
    good = "The outbox table commits events with the state change [1]."
    tokens: list[str] = []
    resets: list[int] = []
    chat = ScriptedChat(played_back, good)
    out = await generation.run(chat, generation.summary_task([OUTBOX]), [OUTBOX], tokens.append, resets.append)  # type: ignore[arg-type]
    shown = "".join(tokens)
    assert "<course" not in shown and "<passage" not in shown and "<" not in shown.split("The outbox")[0], shown
    assert resets == [2] and str(out).startswith("The outbox table commits events"), (out, shown)


def test_generation_passages_are_spread_over_the_whole_course() -> None:
    """explore17 F2: the first four sources only, so a course's materials (last in its outline) were never read."""
    from smartcourse.services.assistant import spread

    assert spread(list(range(3)), 4) == [0, 1, 2]
    assert spread(list(range(8)), 4) == [0, 2, 5, 7]
    assert spread(list(range(100)), 4)[-1] == 99
    assert spread(list(range(5)), 1) == [0]


KEYSTONE = hit(
    1,
    "Keystone predators",
    "In 1963 Robert Paine began removing the ochre starfish Pisaster from plots on the Washington coast. Without "
    "the starfish, mussels took over and diversity fell from fifteen species to eight.",
    1.0,
)


@pytest.mark.parametrize(
    ("sentence", "invented"),
    [
        ("Paine removed the starfish from the Washington coast in 1802 [1].", ["1802"]),
        ("Species diversity fell, with a 20% loss of habitat on the Moon [1].", ["Moon", "20"]),
        ("In 1963 Paine removed the starfish and diversity fell from 15 species to 8 [1].", []),  # words as figures
        ("1. Paine removed the ochre starfish from the Washington coast [1].", []),  # a list number
    ],
)
def test_names_and_figures_no_passage_gives_are_invented(sentence: str, invented: list[str]) -> None:
    from smartcourse.assistant import evidence

    assert evidence.invented_details(sentence, [KEYSTONE]) == invented


def test_a_summary_sentence_with_an_invented_figure_is_dropped() -> None:
    """explore17 F3: "a 15% decline in species diversity and a 20% loss of habitat" passed the share-of-words rule."""
    text = (
        "Paine removed the ochre starfish from plots on the Washington coast [1]. Diversity fell from fifteen "
        "species to eight [1]. The starfish removal caused a 20% loss of habitat on the Washington coast [1]."
    )
    kept = generation.parse_grounded_text(text, [KEYSTONE])
    assert "20%" not in kept and "fifteen species to eight" in kept
    with pytest.raises(generation.InvalidOutput):
        generation.parse_grounded_text("Napoleon removed the starfish from plots on the Moon in 1802.", [KEYSTONE])


def test_a_generated_text_cut_mid_sentence_loses_its_last_sentence() -> None:
    """explore17 F8: "… The removal of the keystone species, which" was accepted as the end of a summary."""
    text = (
        "Paine removed the ochre starfish from plots on the Washington coast [1]. Diversity fell from fifteen "
        "species to eight [1]. The removal of the keystone species, which"
    )
    kept = generation.parse_grounded_text(text, [KEYSTONE])
    assert kept.endswith("fifteen species to eight [1].") and "which" not in kept
    fenced = "Paine removed the ochre starfish from plots on the Washington coast [1].\n```"
    assert generation.parse_grounded_text(fenced, [KEYSTONE]).endswith("coast [1].")


def test_an_explanation_must_be_about_its_concept() -> None:
    """explore29 F7: a sentence copied from a passage about something else passed as the concept's explanation."""
    task = generation.explain_task("relays", "beginner", [OUTBOX, RELAY])
    off_topic = "The outbox table commits events with the state change [1]."
    assert generation.parse_grounded_text(off_topic, [OUTBOX, RELAY], "relays") == off_topic  # supported, though
    with pytest.raises(generation.InvalidOutput, match="does not mention “relays”"):
        task.parse(off_topic)
    about = "The relay locks unsent rows with SKIP LOCKED and publishes them in order [2]."
    assert task.parse(about) == about  # "relay" names "relays": any inflection


# --- explore31 F4: the server's own cut excerpt copied back ------------------------------------------------------

ICE_LESSON = hit(
    50, "Ice ages revised", "Glaciers form where snowfall exceeds ablation for many years; firn compacts into ice.", 0.6
)
GLACIERS_PDF = hit(
    51,
    "glaciers.pdf",
    "Chapter 1: Glacier formation revised\nGlaciers grow when winter snow survives the summer melt.",
    0.5,
)
EXCERPT_TWICE = (
    "The passage on glacier formation is a great example of how a passage can be con…\n\n"
    "The passage on glacier formation is a great example of how a passage can be con…"
)


def test_a_summary_made_of_the_retry_notes_cut_excerpt_twice_is_invalid() -> None:
    """explore31 F4: the retry note's excerpt ("… can be con…"), copied twice, was accepted as the summary."""
    with pytest.raises(generation.InvalidOutput, match="stops mid-sentence"):
        generation.parse_grounded_text(EXCERPT_TWICE, [ICE_LESSON, GLACIERS_PDF])
    with pytest.raises(generation.InvalidOutput, match="stops mid-sentence"):
        generation.parse_grounded_text(EXCERPT_TWICE.split("\n\n")[0], [ICE_LESSON, GLACIERS_PDF])


def test_a_last_sentence_ending_in_an_ellipsis_is_cut_off() -> None:
    good = "Glaciers form where snowfall exceeds ablation for many years [1]."
    kept = generation.parse_grounded_text(f"{good} Firn compacts into…", [ICE_LESSON])
    assert kept == good
    assert generation.parse_grounded_text(f"{good} Firn compacts into ice...", [ICE_LESSON]) == good


def test_a_paragraph_written_twice_is_kept_once() -> None:
    paragraph = "Glaciers form where snowfall exceeds ablation for many years [1]. Firn compacts into ice [1]."
    assert generation.parse_grounded_text(f"{paragraph}\n\n{paragraph}", [ICE_LESSON]) == paragraph
    other = "Glaciers grow when winter snow survives the summer melt [2]."
    text = f"{paragraph}\n\n{other}\n\n{paragraph.replace('[1]', '[2]')}"
    assert generation.parse_grounded_text(text, [ICE_LESSON, GLACIERS_PDF]) == f"{paragraph}\n\n{other}"


async def test_the_retry_note_names_the_unsupported_sentence_by_its_first_words_not_a_cut_excerpt() -> None:
    """The note quoted `first[:79] + "…"`, which the model copied back; now it gives the sentence's first words,
    whole, and a reply that is only those words is invalid too (no sentence)."""
    invented = (
        "The passage on glacier formation is a great example of how a passage can be constructed by an author "
        "who likes long sentences about nothing at all."
    )
    good = "Glaciers form where snowfall exceeds ablation for many years [1]."
    chat = ScriptedChat(invented, good)
    assert await generation.run(chat, generation.summary_task([ICE_LESSON]), [ICE_LESSON]) == good  # type: ignore[arg-type]
    note = chat.calls[1][-1].content
    assert "“The passage on glacier formation is”" in note and "…" not in note and "can be con" not in note
    copied = "The passage on glacier formation is\n\nThe passage on glacier formation is"
    with pytest.raises(generation.InvalidOutput, match="stops mid-sentence"):
        generation.parse_grounded_text(copied, [ICE_LESSON, GLACIERS_PDF])


def test_the_docs_say_a_lesson_generation_reads_its_attached_materials() -> None:
    """explore31 F8: docs/assistant.md said both that a lesson's generation includes its handout and that it reads
    "the lesson's own chunks, not the materials attached to it"; the code includes them (`_generation_passages`)."""
    from pathlib import Path

    docs = " ".join((Path(__file__).parents[2] / "docs" / "assistant.md").read_text(encoding="utf-8").split())
    assert "not the materials attached to it" not in docs
    assert "for a lesson, its chunks and those of the materials the working copy attaches to it" in docs


def test_generation_inputs_take_numbers_and_booleans_as_json_types_only() -> None:
    """explore42 F11: `num_questions: true` made and stored a 1-question quiz, `"3"` was read as 3."""
    import uuid

    from pydantic import ValidationError

    from smartcourse.assistant.schemas import QuizGenerateIn, SaveQuizIn

    course = str(uuid.uuid4())
    assert QuizGenerateIn.model_validate({"course_id": course, "num_questions": 3}).num_questions == 3
    for bad in (True, "3", 2.0):
        with pytest.raises(ValidationError):
            QuizGenerateIn.model_validate({"course_id": course, "num_questions": bad})
    for field, bad in (("pass_score", "70"), ("allow_missing_source", "yes")):
        with pytest.raises(ValidationError):
            SaveQuizIn.model_validate({"module_id": course, field: bad})


@pytest.mark.parametrize(
    ("accept", "streamed"),
    [
        ("text/event-stream", True),
        ("text/event-stream, */*", True),
        ("application/json, text/event-stream", True),  # equal: the stream, as before
        ("text/event-stream;q=0.1, application/json", False),  # explore42 F12
        ("application/json;q=0.5, text/event-stream;q=0.9", True),
        ("text/event-stream;q=0", False),
        ("text/event-stream;q=abc", False),
        ("application/json", False),
        ("*/*", False),
        ("", False),
    ],
)
def test_a_generation_is_streamed_when_the_accept_header_prefers_it(accept: str, streamed: bool) -> None:
    from types import SimpleNamespace

    from smartcourse.assistant.sse import wants_stream

    assert wants_stream(SimpleNamespace(headers={"accept": accept})) is streamed


def test_a_misspelt_concept_is_told_the_courses_spelling() -> None:
    """explore80 F6: `explain {"concept": "enantiomr"}` was explained from the passages near it in meaning, and the
    text called it "Enantiomr" throughout."""
    from smartcourse.services.assistant import spelling_hint

    course = [
        "Chirality Enantiomers are mirror images. They rotate plane-polarised light in opposite ways.",
        "La batalla del Ebro fue la más larga. El interés compuesto crece.",
    ]
    assert spelling_hint("enantiomr", course) == "Enantiomers"  # as the course writes it
    assert spelling_hint("enantiomr mirorr", course) == "Enantiomers mirror"
    # One word misspelt beside right ones, the others kept as typed (explore85 F13: no hint).
    assert spelling_hint("batalla del Ebor", course) == "batalla del Ebro"
    assert spelling_hint("interés compusto", course) == "interés compuesto"
    # A word of the concept in another form, or a concept near the course in meaning only: no hint.
    for concept in ("Enantiomer", "rotation", "optical activity", ""):
        assert spelling_hint(concept, course) is None, concept


def test_an_objective_said_twice_in_other_words_or_comparing_a_thing_with_itself_is_dropped() -> None:
    """explore83 F9: five objectives were kept, "Describe / Identify / Evaluate the difference between compound
    interest and simple interest" among them, and "Compare compound interest to compound interest"."""
    from tests.unit.test_assistant_evidence import hit

    passage = hit(
        1,
        "Compound interest explained",
        "Compound interest is interest on interest. Simple interest is paid on the principal only. The rule of 72 "
        "estimates how long money takes to double.",
        0.6,
    )
    items = [
        "Explain how compound interest works over time",
        "Describe the difference between compound interest and simple interest",
        "Identify the key differences between compound interest and simple interest",
        "Compare compound interest to compound interest, and how it differs from simple interest",
        "Evaluate the difference between compound interest and simple interest in savings",
        "Apply the rule of 72 to estimate how long money takes to double",
    ]
    assert generation.parse_objectives("\n".join(items), [passage]) == [items[0], items[1], items[5]]
