"""Server-Sent Events framing of the assistant's (event, data) stream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import anyio
from sse_starlette import EventSourceResponse

from smartcourse.errors import DomainError

T = TypeVar("T")

#: How long a closed stream waits for its run to stop and record itself `cancelled` before the response ends.
STOP_WAIT_SECONDS = 10.0
#: The cancel message of a run stopped because the server is stopping (not the client leaving): recorded `error`.
SERVER_STOPPING = "the server is stopping"
#: How long a stream has, once the server is stopping, to stop its run and tell the client (`reset`, `error`) before
#: sse-starlette cancels it (within uvicorn's graceful shutdown).
SHUTDOWN_GRACE_SECONDS = 3.0
#: The `error` event of a stream cut by the server stopping (a restart, a deploy): the client asks again.
_STOPPING_ERROR = {
    "code": "service_unavailable",
    "message": "the server is restarting; ask again in a moment",
}


#: The 200 of a generation route in the OpenAPI: JSON, or the stream an `Accept: text/event-stream` asks for.
SSE_OR_JSON: dict[str, Any] = {
    "description": "the result as JSON; with `Accept: text/event-stream`, Server-Sent Events: token* (a `reset` says: "
    "drop the tokens so far), then done (the JSON body) or error; see docs/assistant.md",
    "content": {"text/event-stream": {}},
}


def stream_response(
    make: Callable[[anyio.Event], AsyncIterator[dict[str, str]]], headers: dict[str, str] | None = None
) -> EventSourceResponse:
    """The SSE response of a stream made by `make(stopping)`: `stopping` is set when the server is stopping, so the
    stream stops its run and says so (`reset` if a draft was shown, then `error` `service_unavailable`) instead of
    just ending (explore53 F2: a restart left the client showing a cut, unchecked draft, recorded as if the student had
    left). `headers` go out before the first event (the interaction's and conversation's ids)."""
    stopping = anyio.Event()
    return EventSourceResponse(
        make(stopping),
        ping=15,
        shutdown_event=stopping,
        shutdown_grace_period=SHUTDOWN_GRACE_SECONDS,
        headers=headers,
    )


async def _stop(task: asyncio.Task[Any]) -> None:
    """Stop a stream's run if the stream is closed before the run is done (the client went away, or the server is
    stopping).

    sse-starlette cancels the response's anyio cancel scope, and anyio cancels the streaming task again at every
    `await` until it leaves the scope. Run in that task, the graph's own cleanup (which cancels the node calling the
    model) and the interaction's record were cut short: the model went on writing into a closed stream. So the run
    has a task of its own: it gets one cancel, which it records as `cancelled` and re-raises, and it is awaited
    shielded from the scope, so the record is written before the response ends."""
    if task.done():
        return
    task.cancel("the stream was closed")
    with anyio.move_on_after(STOP_WAIT_SECONDS, shield=True):
        await asyncio.wait({task})


async def _relayed(
    task: asyncio.Task[Any], queue: asyncio.Queue[T], stopping: anyio.Event | None = None
) -> AsyncIterator[T]:
    """What `task` puts on `queue`, in order, until the task is done and the queue is empty, or `stopping` is set."""
    stopped = asyncio.ensure_future(stopping.wait()) if stopping is not None else None
    try:
        while not (task.done() and queue.empty()):
            getter = asyncio.ensure_future(queue.get())
            try:
                waits: set[asyncio.Future[Any]] = {getter, task} | ({stopped} if stopped is not None else set())
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                if not getter.done():
                    getter.cancel()
            if getter.done() and not getter.cancelled():
                yield getter.result()
            if stopped is not None and stopped.done():
                return
    finally:
        if stopped is not None and not stopped.done():
            stopped.cancel()


async def _stopped_by_server(task: asyncio.Task[Any], shown: str, attempt: int) -> AsyncIterator[dict[str, str]]:
    """The server is stopping: the run is cancelled as such (recorded `error`, not `cancelled`), and the client told
    to drop its draft and ask again."""
    if not task.done():
        task.cancel(SERVER_STOPPING)
        with anyio.move_on_after(STOP_WAIT_SECONDS, shield=True):
            await asyncio.wait({task})
    if shown:
        yield _event("reset", {"attempt": attempt + 1, "next": "error"})
    yield _event("error", dict(_STOPPING_ERROR))


async def sse_events(
    events: AsyncIterator[tuple[str, dict[str, Any]]], stopping: anyio.Event | None = None
) -> AsyncIterator[dict[str, str]]:
    """sse-starlette items of the ask stream (`AskRun.events`), run in a task of its own: when the client
    disconnects, `_stop` cancels it, which stops the model and records the interaction `cancelled`; when the server
    is stopping (`stopping`), it is cancelled as such and the client gets `reset` and `error`."""
    queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()

    async def pump() -> None:
        async for item in events:
            queue.put_nowait(item)

    task = asyncio.create_task(pump())
    shown, attempt = "", 1
    try:
        async for event, data in _relayed(task, queue, stopping):
            if event == "token":
                shown += data["text"]
            elif event == "reset":
                shown, attempt = "", int(data.get("attempt") or attempt)
            yield {"event": event, "data": json.dumps(data, ensure_ascii=False)}
        if stopping is not None and stopping.is_set() and not task.done():
            async for item in _stopped_by_server(task, shown, attempt):
                yield item
            return
        task.result()  # `events` sends its failures as an `error` event: only a cancellation is left to raise
    finally:
        await _stop(task)


def _event(event: str, data: dict[str, Any]) -> dict[str, str]:
    return {"event": event, "data": json.dumps(data, ensure_ascii=False)}


def wants_stream(request: Any) -> bool:
    """A generation is streamed when the request's Accept prefers `text/event-stream` to JSON, its q-values honoured
    (RFC 9110 §12.5.1): `text/event-stream;q=0.1, application/json` asks for JSON (explore42 F12: any mention of the
    stream type got it)."""
    weights: dict[str, float] = {}
    for part in request.headers.get("accept", "").split(","):
        media, *params = (p.strip() for p in part.split(";"))
        weight = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    weight = 0.0
        if media:
            weights[media.lower()] = max(weights.get(media.lower(), 0.0), weight)
    stream = weights.get("text/event-stream", 0.0)
    as_json = max(weights.get(t, 0.0) for t in ("application/json", "application/*", "*/*"))
    return stream > 0 and stream >= as_json


async def generation_events(run: Any, stopping: anyio.Event | None = None) -> AsyncIterator[dict[str, str]]:
    """An instructor generation as SSE: `token`* while the model writes (`reset` `{attempt, next: "model"}` before a
    retry's tokens: discard the rejected attempt's; none when it showed none), then `done` (the JSON body) or
    `error`. `progress` `{attempt, written, budget}` at each attempt's start and every `PROGRESS_PIECES` pieces the
    model writes, shown or not (objectives show one only once it is whole, a quiz's JSON is not for reading).

    `error` is `{code, message, interaction_id, details}`: the interaction id at the top level as `/ai/ask-stream`
    sends it (and, as before, also in `details`). A `reset` `{attempt, next: "error"}` precedes it when tokens were
    sent since the last reset: a client never keeps a draft that failed.

    As on `/ai/ask-stream`, the tokens after the last `reset` spell `done.text`: when the validated result differs
    from what was streamed, a `reset` `{attempt, next: "server"}` and the result's text as one `token` come before
    `done` (a quiz has no text: its tokens are reset and `done` carries the questions)."""

    # Recorded as streamed: the endpoint prepares the run before it knows how the answer is sent (`streamed` stayed
    # False for every SSE generation).
    run.interaction.streamed = True
    queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
    task = asyncio.create_task(
        run.execute(
            on_token=lambda text: queue.put_nowait(("token", {"text": text})),
            on_reset=lambda attempt: queue.put_nowait(("reset", {"attempt": attempt})),
            on_progress=lambda data: queue.put_nowait(("progress", data)),
        )
    )
    shown = ""  # what a client following the protocol shows: the tokens since the last reset
    attempt = 1
    try:
        async for event, data in _relayed(task, queue, stopping):
            if event == "token":
                shown += data["text"]
            elif event == "reset":
                # As /ai/ask-stream's: `next`, and none when the rejected attempt showed nothing (explore53 F3).
                attempt, had = int(data["attempt"]), shown
                shown, data = "", {"attempt": attempt, "next": "model"}
                if not had:
                    continue
            yield {"event": event, "data": json.dumps(data, ensure_ascii=False)}
        if stopping is not None and stopping.is_set() and not task.done():
            async for item in _stopped_by_server(task, shown, attempt):
                yield item
            return
        try:
            result = task.result()
        except DomainError as exc:
            details = exc.details or {}
            err = {
                "code": exc.code,
                "message": exc.message,
                "interaction_id": details.get("interaction_id"),
                "details": details,
            }
            if shown:
                yield _event("reset", {"attempt": attempt + 1, "next": "error"})
            yield {"event": "error", "data": json.dumps(err, ensure_ascii=False)}
            return
        # The validated result is not always what was streamed (objectives reshaped as "- …" lines, invalid
        # citations removed, a quiz's JSON): the client is told to drop the tokens and gets the result's text.
        final = str(getattr(result, "text", "") or "")
        if shown.strip() != final.strip():
            if shown:
                yield _event("reset", {"attempt": attempt + 1, "next": "server"})
            if final:
                yield _event("token", {"text": final})
        yield {"event": "done", "data": result.model_dump_json()}
    finally:
        await _stop(task)  # the client went away: stop the model
