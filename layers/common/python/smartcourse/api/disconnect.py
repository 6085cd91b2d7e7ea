"""An answer that takes seconds (the assistant's, as JSON) is given up when its client leaves, as a stream is.

Starlette cancels a streamed answer when its client disconnects (sse-starlette turns `http.disconnect` into a
cancellation), but a handler awaiting its JSON answer runs to its end: a generation whose client had left 16 s before
ran both its attempts, held one of the process's generation slots, and was recorded as `error` (explore42 F7). Here
the work runs as a task while another listens on the request's `receive` for `http.disconnect`; on one, the task is
cancelled with `LEFT` as its message (the assistant records the interaction `cancelled`) and the answer is a
bodiless 499, the status proxies log for a client that closed its request (nobody reads it). Under Mangum (Lambda)
the disconnect message only comes after the response, so there the work always runs to its end.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable
from typing import TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message

from smartcourse.assistant.sse import SERVER_STOPPING
from smartcourse.errors import Unavailable

T = TypeVar("T")

#: How long the listener waits before reading again after a message that is not the disconnect (none is expected
#: once the body has been read; a receive that answers at once must not spin).
POLL_SECONDS = 0.5
#: The cancellation's message, which the assistant records as the interaction's error.
LEFT = "the client left before the answer"
#: nginx's status for a request its client closed: in the access log and the request metrics.
CLIENT_CLOSED_REQUEST = 499


async def unless_client_leaves(request: Request, work: Awaitable[T]) -> T | Response:
    """`work`'s result, or a 499 once the client has disconnected (`work` cancelled and awaited). The disconnect is
    listened for on the request's `receive`, as sse-starlette does for a stream (polling Starlette's
    `is_disconnected` missed one of four in explore43). When the server is stopping, `work` is cancelled with
    `SERVER_STOPPING` (the assistant records an `error`, reason `server_stopping`) and the answer is 503
    `service_unavailable`, in the grace the server gives its requests (explore54 N1: a JSON answer still running was
    SIGKILLed with its process: no response, no record)."""
    task = asyncio.ensure_future(work)
    listener = asyncio.ensure_future(_disconnected(request.receive))
    stopping = asyncio.ensure_future(_server_stopping())
    try:
        await asyncio.wait({task, listener, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            return task.result()
        task.cancel(SERVER_STOPPING if stopping.done() else LEFT)
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if stopping.done():
            raise Unavailable(
                "the server is restarting; ask again in a moment",
                code="service_unavailable",
                headers={"Retry-After": "5"},
            )
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    finally:
        listener.cancel()
        stopping.cancel()
        if not task.done():  # this handler was cancelled itself
            task.cancel()


def server_is_stopping() -> bool:
    """uvicorn has its exit signal: as sse-starlette sees it (its patched `handle_exit`, or the server behind the
    SIGTERM handler uvicorn installed)."""
    from sse_starlette.sse import AppStatus

    if AppStatus.should_exit:
        return True
    server = getattr(signal.getsignal(signal.SIGTERM), "__self__", None)
    return bool(getattr(server, "should_exit", False))


async def _server_stopping() -> None:
    while not server_is_stopping():  # noqa: ASYNC110 - a flag uvicorn's signal handler sets, no event to await
        await asyncio.sleep(POLL_SECONDS)


async def _disconnected(receive: Callable[[], Awaitable[Message]]) -> None:
    while True:
        if (await receive())["type"] == "http.disconnect":
            return
        await asyncio.sleep(POLL_SECONDS)
