"""Token accounting for one interaction: adapters add to the meter the service installed for it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class Usage:
    """Tokens consumed by every model call of one interaction (prompt and completion)."""

    tokens_in: int = 0
    tokens_out: int = 0
    calls: int = 0

    def add(self, tokens_in: int, tokens_out: int) -> None:
        self.tokens_in += tokens_in
        self.tokens_out += tokens_out
        self.calls += 1


_current: ContextVar[Usage | None] = ContextVar("smartcourse_llm_usage", default=None)


def record(tokens_in: int, tokens_out: int) -> None:
    """Called by a ChatModel adapter after each call; a no-op outside a metered interaction."""
    meter = _current.get()
    if meter is not None:
        meter.add(tokens_in, tokens_out)


@contextmanager
def metered() -> Iterator[Usage]:
    """Meter the model calls made inside the block (also in tasks it spawns: they copy the context)."""
    meter = Usage()
    token = _current.set(meter)
    try:
        yield meter
    finally:
        try:
            _current.reset(token)
        except ValueError:  # finalised in another context (a cancelled stream): nothing to restore there
            _current.set(None)
