"""The e-mails of the notifications a request wrote, handed to Celery right after its commit.

An admin's revocation or removal, the waitlist's notices (joined, passed over, released by an archive) and an
admin's cancel of a publish are written by API requests. Their e-mails waited for the e-mail sweeper's next round
(a minute or two: the sweeper takes a pending e-mail once it is a minute old, every minute), which was all the API
did with them (session 35's note). Now each request's unit of work hands the new ones over after its commit
(`db.EMAILS_AFTER_COMMIT`, set here for the request), and a per-process `tasks.EmailBatcher` sends them in Celery
tasks (at most one per 100 ms per process: a burst's waitlist notices ride together). The response does not wait
for the broker; a hand-over that fails, or a process that dies first, leaves the row pending for the sweeper, as a
lost enqueue always did. Under Lambda (Mangum), where a frozen process runs nothing after its answer, the request
waits for its own hand-overs (at most `LAMBDA_WAIT` seconds) before it returns.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from smartcourse.db import EMAILS_AFTER_COMMIT

log = logging.getLogger(__name__)

#: Under Lambda, how long a request waits for its e-mails to reach the broker.
LAMBDA_WAIT = 2.0


class _Handover:
    """Per process: one `EmailBatcher` per event loop, its enqueues run as tasks of their own."""

    def __init__(self) -> None:
        self._batcher: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running: set[asyncio.Task[None]] = set()

    def __call__(self, ids: list[uuid.UUID], mine: set[asyncio.Task[None]] | None = None) -> None:
        try:
            loop = asyncio.get_running_loop()
            if self._batcher is None or self._loop is not loop:
                from smartcourse.tasks import EmailBatcher  # Celery, loaded by the first request with an e-mail

                self._batcher, self._loop = EmailBatcher(), loop
            for nid in ids:
                # In the request's context: the e-mail carries its trace (`EmailBatcher.enqueue`).
                task = loop.create_task(self._batcher.enqueue(nid))
                self._running.add(task)
                task.add_done_callback(self._running.discard)
                if mine is not None:
                    mine.add(task)
        except Exception:  # never the request's failure: its rows stay pending for the sweeper
            log.warning("could not hand over %d notification e-mails; the sweeper will", len(ids), exc_info=True)


HAND_OVER = _Handover()


class EmailHandover:
    """ASGI middleware: sets `db.EMAILS_AFTER_COMMIT` for each HTTP request."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        mine: set[asyncio.Task[None]] = set()
        lambda_ = "aws.event" in scope

        def hand_over(ids: list[uuid.UUID]) -> None:
            HAND_OVER(ids, mine if lambda_ else None)

        token = EMAILS_AFTER_COMMIT.set(hand_over)
        try:
            await self.app(scope, receive, send)
        finally:
            EMAILS_AFTER_COMMIT.reset(token)
            if mine:
                await asyncio.wait(mine, timeout=LAMBDA_WAIT)


def install_email_handover(app: Any) -> None:
    app.add_middleware(EmailHandover)
