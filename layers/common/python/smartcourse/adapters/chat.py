"""ChatModel over any OpenAI-compatible endpoint (OpenAI, vLLM, llama.cpp server, ...) via langchain-openai."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import openai
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI

from smartcourse.assistant import usage
from smartcourse.config import Settings
from smartcourse.ports import ChatMessage, OutputTruncated

_ROLES = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}


def to_langchain(messages: Sequence[ChatMessage]) -> list[BaseMessage]:
    return [_ROLES[m.role](content=m.content) for m in messages]


def _record_usage(meta: dict[str, Any] | None) -> None:
    if meta:
        usage.record(int(meta.get("input_tokens", 0)), int(meta.get("output_tokens", 0)))


class OpenAIChatModel:
    """The ChatModel port on `ChatOpenAI`; one client per process (it pools its HTTP connections)."""

    def __init__(self, *, base_url: str, model: str, api_key: str | None, timeout: float = 60.0) -> None:
        self.name = model
        self.base_url = base_url
        self._llm = ChatOpenAI(
            base_url=base_url,
            model=model,
            api_key=api_key or "none",  # type: ignore[arg-type]
            streaming=True,
            stream_usage=True,
            timeout=timeout,
            max_retries=1,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAIChatModel:
        return cls(base_url=settings.llm_base_url or "", model=settings.llm_model, api_key=settings.llm_api_key)

    async def complete(
        self, messages: Sequence[ChatMessage], *, max_tokens: int = 512, temperature: float = 0.0
    ) -> str:
        parts = [piece async for piece in self.stream(messages, max_tokens=max_tokens, temperature=temperature)]
        return "".join(parts)

    async def stream(
        self, messages: Sequence[ChatMessage], *, max_tokens: int = 512, temperature: float = 0.0
    ) -> AsyncIterator[str]:
        """Yields text as the model writes it; closing the iterator closes the HTTP stream (stops generation)."""
        llm = self._llm.bind(max_tokens=max_tokens, temperature=temperature)
        async for text in metered_stream(llm.astream(to_langchain(messages)), messages):
            yield text

    async def stream_json(
        self, messages: Sequence[ChatMessage], *, schema: dict[str, Any], max_tokens: int = 512
    ) -> AsyncIterator[str]:
        """Like `stream`, asking the server to constrain output to a JSON schema (llama.cpp, OpenAI, vLLM do).

        A reply cut at `max_tokens` is unfinished JSON: the openai client raises `LengthFinishReasonError` for it,
        which leaves here as the port's `OutputTruncated` (the caller retries it like any invalid output)."""
        llm = self._llm.bind(
            max_tokens=max_tokens,
            temperature=0.2,
            response_format={"type": "json_schema", "json_schema": {"name": "output", "schema": schema}},
        )
        try:
            async for text in metered_stream(llm.astream(to_langchain(messages)), messages):
                yield text
        except openai.LengthFinishReasonError as exc:
            raise OutputTruncated(max_tokens) from exc


def estimate_tokens(messages: Sequence[ChatMessage]) -> int:
    """A prompt's size in tokens, roughly (4 characters per token): used only when the server's count is lost."""
    return sum(len(m.content) for m in messages) // 4 + 4 * len(messages)


async def metered_stream(chunks: AsyncIterator[Any], messages: Sequence[ChatMessage]) -> AsyncIterator[str]:
    """The text of a langchain chunk stream, with its token usage recorded on the interaction's meter.

    The server reports usage in the stream's last chunk. When the stream is cut before it (the client left,
    a timeout), what was streamed is still accounted: each streamed piece is one token of llama.cpp/OpenAI
    output, and the prompt is estimated, so a cancelled answer never records 0 tokens.
    """
    reported = False
    pieces = 0
    try:
        async for chunk in chunks:
            if isinstance(chunk, AIMessageChunk) and chunk.usage_metadata:
                _record_usage(dict(chunk.usage_metadata))
                reported = True
            text = chunk.content if isinstance(chunk.content, str) else ""
            if text:
                pieces += 1
                yield text
    finally:
        if not reported and pieces:
            usage.record(estimate_tokens(messages), pieces)
