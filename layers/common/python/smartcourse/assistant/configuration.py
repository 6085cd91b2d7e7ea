"""What one run of the assistant graph needs: its knobs and its collaborators, from the runnable config."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from smartcourse.ports import ChatModel, Hit

if TYPE_CHECKING:  # a type only: the evidence rules (`Knobs`) are imported where LangChain is not shipped
    from langchain_core.runnables import RunnableConfig

Retriever = Callable[[str], Awaitable[list[Hit]]]


@dataclass(frozen=True)
class Knobs:
    """Routing thresholds and generation limits (documented in docs/assistant.md)."""

    relevance_floor: float = 0.3  # min cosine similarity of a chunk to count as evidence
    clarify_margin: float = 0.05  # candidates within this of the best are "equally strong"
    clarify_max_subject_words: int = 2  # a question this short over unrelated candidates is ambiguous
    # ... and one of its words in no passage: answered only from a passage at least this near in meaning
    partial_match_floor: float = 0.5
    max_passages: int = 4  # passages shown to the model (small models have small contexts)
    max_tokens: int = 256
    history_turns: int = 6

    @classmethod
    def from_settings(cls, settings: Any) -> Knobs:
        return cls(relevance_floor=settings.assistant_relevance_floor, max_tokens=settings.assistant_max_tokens)


@dataclass
class Configuration:
    """Injected per run under config["configurable"]: the model, the retriever and the knobs."""

    chat: ChatModel
    retriever: Retriever
    knobs: Knobs = field(default_factory=Knobs)
    # A student asking for the answers of a quiz they have not passed is refused.
    quiz_answers_locked: bool = False
    # The live version's modules and their lessons' titles, read for a question about the course as a whole
    # (`evidence.asks_for_overview`), which is answered with them.
    outline: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @classmethod
    def from_runnable_config(cls, config: RunnableConfig | None) -> Configuration:
        configurable = (config or {}).get("configurable", {})
        found = configurable.get("assistant")
        if not isinstance(found, Configuration):
            raise RuntimeError("the assistant graph needs config['configurable']['assistant']")
        return found

    def as_config(self, **extra: Any) -> RunnableConfig:
        return {"configurable": {"assistant": self, **extra}}
