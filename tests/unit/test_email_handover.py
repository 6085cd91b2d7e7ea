"""`api/emails.py`: a request's new notifications are handed to the e-mail batcher after its commit; the response
does not wait for the broker, except under Lambda (a frozen process runs nothing after its answer)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from smartcourse.api import emails
from smartcourse.db import EMAILS_AFTER_COMMIT


class SlowBatcher:
    def __init__(self) -> None:
        self.sent: list[uuid.UUID] = []

    async def enqueue(self, nid: uuid.UUID) -> None:
        await asyncio.sleep(0.3)  # the broker's round trip, and the batch's window
        self.sent.append(nid)


async def _request(monkeypatch: pytest.MonkeyPatch, scope: dict[str, Any]) -> tuple[SlowBatcher, list[uuid.UUID]]:
    batcher = SlowBatcher()
    handover = emails._Handover()
    handover._batcher, handover._loop = batcher, asyncio.get_running_loop()
    monkeypatch.setattr(emails, "HAND_OVER", handover)
    nid = uuid.uuid4()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        hand_over = EMAILS_AFTER_COMMIT.get()
        assert hand_over is not None
        hand_over([nid])  # what `UnitOfWork.commit` does

    await emails.EmailHandover(app)(scope, None, None)
    answered = list(batcher.sent)
    assert EMAILS_AFTER_COMMIT.get() is None  # the request's setting does not outlive it
    await asyncio.sleep(0.5)
    assert batcher.sent == [nid]
    return batcher, answered


async def test_a_request_answers_without_waiting_for_its_emails(monkeypatch: pytest.MonkeyPatch) -> None:
    _, answered = await _request(monkeypatch, {"type": "http"})
    assert answered == []


async def test_under_lambda_a_request_waits_for_its_emails(monkeypatch: pytest.MonkeyPatch) -> None:
    _, answered = await _request(monkeypatch, {"type": "http", "aws.event": {}})
    assert len(answered) == 1


async def test_a_failing_hand_over_is_logged_not_raised(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    handover = emails._Handover()

    def broken() -> Any:
        raise RuntimeError("no loop")

    monkeypatch.setattr(emails.asyncio, "get_running_loop", broken)
    handover([uuid.uuid4()])
    assert "could not hand over 1 notification e-mails; the sweeper will" in caplog.text
