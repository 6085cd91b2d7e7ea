"""The chat model's timeout is a setting (LLM_TIMEOUT_SECONDS): below a Lambda function's own timeout, a hung model
ends as the app's failure, recorded, not as the function's kill (explore33 F5: fixed at 60 s against 30)."""

from __future__ import annotations

import asyncio

import openai
import pytest

from smartcourse.adapters.chat import OpenAIChatModel
from smartcourse.config import Settings
from smartcourse.ports import ChatMessage


async def test_a_model_that_never_answers_fails_after_the_configured_timeout() -> None:
    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)  # accepts, reads nothing, answers nothing

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = Settings(LLM_BASE_URL=f"http://127.0.0.1:{port}/v1", LLM_TIMEOUT_SECONDS=0.5)  # type: ignore[call-arg]
    model = OpenAIChatModel.from_settings(settings)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        with pytest.raises(openai.APITimeoutError):
            _ = [p async for p in model.stream([ChatMessage("user", "hello")])]
    finally:
        server.close()
    assert loop.time() - started < 10  # its 0.5 s, not the 60 s default
