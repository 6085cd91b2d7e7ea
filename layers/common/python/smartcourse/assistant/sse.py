"""Server-Sent Events framing of the assistant's (event, data) stream."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any


async def sse_events(events: AsyncIterator[tuple[str, dict[str, Any]]]) -> AsyncIterator[dict[str, str]]:
    """sse-starlette items; when the client disconnects the response cancels this, which stops the model."""
    async for event, data in events:
        yield {"event": event, "data": json.dumps(data, ensure_ascii=False)}
