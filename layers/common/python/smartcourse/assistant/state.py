"""The state that flows through the assistant graph."""

from __future__ import annotations

from typing import Any, Literal, TypedDict

from smartcourse.ports import ChatMessage, Hit

Outcome = Literal["answer", "clarify", "refuse"]


class AskState(TypedDict, total=False):
    """Input: question (+ history). Output: type, answer, citations. The rest is working memory."""

    question: str
    history: list[ChatMessage]
    standalone: str
    hits: list[Hit]
    passages: list[Hit]  # what the model was shown, numbered 1..n in this order
    route: Outcome
    reason: str  # why the route was taken (kept with the interaction)
    candidates: list[str]
    draft: str
    cut: bool  # the draft stopped at the output limit (`Knobs.max_tokens` pieces)
    model_error: str  # the model failed drafting (timed out, gone): the server quoted the course instead
    attempts: int
    type: Outcome
    answer: str
    citations: list[dict[str, Any]]
