"""Celery's Redis transport with one change: an entry of the queue that is not a message at all (not the JSON
envelope kombu writes: another program's push, a hand-made fix gone wrong) is kept as a dead letter and skipped.

kombu decodes the envelope in the transport's read, before Celery's consumer sees anything, so Celery's own guards
(`tasks.Consumer`, the `task_unknown` and `task_rejected` signals) never ran: the JSONDecodeError (or, for JSON that
is not an envelope, the KeyError of its missing `properties`) stopped the worker ("Unrecoverable error"), the entry was
gone with no trace, and five of them within 300 s made `smartcourse run` stop everything, the API included (explore40
F2). `tasks.py` makes this the transport of `redis://` and `redis+socket://` broker URLs
(`kombu.transport.TRANSPORT_ALIASES`); RabbitMQ is not concerned (its messages are framed by the protocol).
"""

from __future__ import annotations

import json
from queue import Empty
from types import SimpleNamespace
from typing import Any

from kombu.transport import redis as kombu_redis
from kombu.transport import virtual


class NotAMessage(Exception):
    """JSON on the queue, but not kombu's envelope (no `properties` with a delivery tag)."""

    def __init__(self, payload: Any) -> None:
        super().__init__("not a kombu message")
        self.payload = payload


def _keep(body: str, reason: str, queue: str | None) -> None:
    from smartcourse.tasks import record_poison

    message = SimpleNamespace(body=body, headers={}, delivery_info={"routing_key": queue}, content_type=None)
    record_poison(message, f"the queue's entry is not a message ({reason})")


class Message(virtual.Message):  # type: ignore[misc]
    def __init__(self, payload: Any, channel: Any = None, **kwargs: Any) -> None:
        properties = payload.get("properties") if isinstance(payload, dict) else None
        if not isinstance(properties, dict) or "delivery_tag" not in properties:
            raise NotAMessage(payload)
        super().__init__(payload, channel=channel, **kwargs)


class Channel(kombu_redis.Channel):  # type: ignore[misc]
    Message = Message

    def _brpop_read(self, **options: Any) -> Any:
        try:
            return super()._brpop_read(**options)
        except json.JSONDecodeError as exc:
            _keep(exc.doc, f"not JSON: {exc.msg} at {exc.pos}", None)
        except NotAMessage as exc:
            _keep(json.dumps(exc.payload), "JSON, but not kombu's envelope: no properties", None)
        return True  # taken off the queue: read on

    def _get(self, queue: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return super()._get(queue, *args, **kwargs)
        except json.JSONDecodeError as exc:
            _keep(exc.doc, f"not JSON: {exc.msg} at {exc.pos}", queue)
            raise Empty() from None


class Transport(kombu_redis.Transport):  # type: ignore[misc]
    Channel = Channel
