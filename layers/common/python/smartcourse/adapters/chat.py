"""ChatModel over any OpenAI-compatible endpoint (OpenAI, vLLM, llama.cpp server, ...) via langchain-openai."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import openai
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI
from opentelemetry.trace import SpanKind, Status, StatusCode

from smartcourse import telemetry
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

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None,
        timeout: float = 60.0,
        http_async_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.name = model
        self.base_url = base_url
        extra: dict[str, Any] = {"http_async_client": http_async_client} if http_async_client is not None else {}
        self._llm = ChatOpenAI(
            base_url=base_url,
            model=model,
            api_key=api_key or "none",  # type: ignore[arg-type]
            streaming=True,
            stream_usage=True,
            timeout=timeout,
            # The openai client's own retries include a request that timed out: a hung model cost the student two
            # timeouts (120 s) before the 503. Retries are ours instead (`_astream`): never after a timeout.
            max_retries=0,
            **extra,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAIChatModel:
        return cls(
            base_url=settings.llm_base_url or "",
            model=settings.llm_model,
            api_key=settings.llm_api_key,
            timeout=settings.llm_timeout_seconds,
        )

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
        async for text in self._traced(_astream(llm, messages), max_tokens):
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
            async for text in self._traced(_astream(llm, messages), max_tokens):
                yield text
        except openai.LengthFinishReasonError as exc:
            raise OutputTruncated(max_tokens) from exc

    async def _traced(self, chunks: AsyncIterator[str], max_tokens: int) -> AsyncIterator[str]:
        """The model call as a client span (`chat <model>`, the endpoint, the tokens) for as long as it streams, and
        its failure on it: an ask's trace had one span, so where its time went, or which endpoint refused it, could
        not be read from it (explore40 F9). Not made current: a stream's yields cross the caller's context."""
        span = telemetry.tracer().start_span(
            f"chat {self.name}",
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": self.name,
                "gen_ai.request.max_tokens": max_tokens,
                "server.address": self.base_url,
            },
        )
        pieces = 0
        try:
            async for text in chunks:
                pieces += 1
                yield text
        except Exception as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"[:300]))
            raise
        finally:
            span.set_attribute("gen_ai.response.chunks", pieces)
            span.end()


#: Provider statuses worth one more try: rate limited, or a transient server error.
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRY_PAUSE_SECONDS = 0.5


def retryable(exc: BaseException) -> bool:
    """A failure worth one more request: the connection refused or dropped, or a transient status. Never a timeout:
    the model may still be busy with the first request, and the caller has already waited one timeout."""
    if isinstance(exc, openai.APITimeoutError):
        return False
    if isinstance(exc, openai.APIConnectionError):
        return True
    return isinstance(exc, openai.APIStatusError) and exc.status_code in _RETRY_STATUSES


async def _astream(llm: Any, messages: Sequence[ChatMessage]) -> AsyncIterator[str]:
    """The model's text, metered; a `retryable` failure before the first piece is retried once (after a piece, the
    caller has streamed it: the failure is the caller's to handle)."""
    for attempt in (1, 2):
        sent = False
        try:
            async for text in metered_stream(llm.astream(to_langchain(messages)), messages):
                sent = True
                yield text
            return
        except Exception as exc:
            if sent or attempt == 2 or not retryable(exc):
                raise
        await asyncio.sleep(RETRY_PAUSE_SECONDS)


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
    cut: BaseException | None = None
    try:
        async for chunk in chunks:
            if isinstance(chunk, AIMessageChunk) and chunk.usage_metadata:
                _record_usage(dict(chunk.usage_metadata))
                reported = True
            text = chunk.content if isinstance(chunk.content, str) else ""
            if text:
                pieces += 1
                yield text
    except BaseException as exc:
        cut = exc
        raise
    finally:
        # Cut before its first piece, the prompt still counts once the server had it (a read timeout, a cancel: the
        # model was reading it; explore42 F8 recorded 0 tokens for an ask timed out after 60 s), not when it never
        # reached the server (refused, a connect timeout).
        if not reported and (pieces or _prompt_reached_the_server(cut)):
            usage.record(estimate_tokens(messages), pieces)


def _prompt_reached_the_server(cut: BaseException | None) -> bool:
    """False when the call failed to connect at all (its chain of causes has a connect error), else True."""
    seen: BaseException | None = cut
    while seen is not None:
        if isinstance(seen, httpx.ConnectError | httpx.ConnectTimeout) or type(seen) is openai.APIConnectionError:
            return False
        seen = seen.__cause__ or seen.__context__
    return True
