"""The assistant's conversations' retention, apart from the assistant itself: the worker's sweeper runs it, and
importing services/assistant (LangGraph, LangChain: about a second) would slow every worker's start."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete

from smartcourse.models import AiConversation


async def purge_expired(container: Any) -> int:
    """Delete every conversation idle for more than ASSISTANT_HISTORY_DAYS (with its messages)."""
    cutoff = datetime.now(UTC) - timedelta(days=container.settings.assistant_history_days)
    async with container.uow() as uow:
        result = await uow.session.execute(delete(AiConversation).where(AiConversation.updated_at < cutoff))
        await uow.commit()
    return int(getattr(result, "rowcount", 0) or 0)
