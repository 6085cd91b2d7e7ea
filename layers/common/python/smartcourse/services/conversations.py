"""The assistant's conversations apart from the assistant itself: their retention (the worker's sweeper runs it, and
importing services/assistant, LangGraph and LangChain, about a second, would slow every worker's start) and a
student's list and reading of their own."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update

from smartcourse.db import UnitOfWork
from smartcourse.errors import NotFound
from smartcourse.models import AiConversation, AiInteraction, AiMessage, Course
from smartcourse.schemas import ConversationDetail, ConversationMessage, ConversationPage, ConversationSummary
from smartcourse.security import Principal


async def purge_expired(container: Any) -> int:
    """Delete every conversation idle for more than ASSISTANT_HISTORY_DAYS (with its messages), and forget the
    question of every interaction asked before then: each question was copied to its `ai_interactions` row (the
    usage record, which stays for the analytics) and outlived the conversation it was asked in (explore67 F3: a
    question with health data, readable months after its conversation was gone). Returns the conversations
    deleted."""
    cutoff = datetime.now(UTC) - timedelta(days=container.settings.assistant_history_days)
    async with container.uow() as uow:
        result = await uow.session.execute(delete(AiConversation).where(AiConversation.updated_at < cutoff))
        await uow.session.execute(
            update(AiInteraction)
            .where(AiInteraction.created_at < cutoff, AiInteraction.question.is_not(None))
            .values(question=None)
        )
        await uow.commit()
    return int(getattr(result, "rowcount", 0) or 0)


async def list_mine(
    *,
    uow: UnitOfWork,
    principal: Principal,
    keep_days: int,
    course_id: uuid.UUID | None,
    page: int,
    page_size: int,
) -> ConversationPage:
    """The caller's assistant conversations (not expired), the most recently active first (ties by id): one to
    resume on another device (explore60 F12: a conversation id lived only in the client that asked), each with its
    course's title, its number of turns and its first question."""
    cutoff = datetime.now(UTC) - timedelta(days=keep_days)
    where = [AiConversation.user_id == principal.user_id, AiConversation.updated_at >= cutoff]
    if course_id is not None:
        where.append(AiConversation.course_id == course_id)
    total = await uow.session.scalar(select(func.count()).select_from(AiConversation).where(*where)) or 0
    first = (
        select(AiMessage.content)
        .where(AiMessage.conversation_id == AiConversation.id, AiMessage.role == "user")
        .order_by(AiMessage.id)
        .limit(1)
        .scalar_subquery()
    )
    turns = (
        select(func.count())
        .select_from(AiMessage)
        .where(AiMessage.conversation_id == AiConversation.id, AiMessage.role == "user")
        .scalar_subquery()
    )
    rows = await uow.session.execute(
        select(AiConversation, Course.title, first, turns)
        .join(Course, Course.id == AiConversation.course_id)
        .where(*where)
        .order_by(AiConversation.updated_at.desc(), AiConversation.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    items = [
        ConversationSummary(
            id=c.id,
            course_id=c.course_id,
            course_title=title,
            first_question=(question or "")[:200],
            questions=int(n or 0),
            created_at=c.created_at,
            updated_at=c.updated_at,
        )
        for c, title, question, n in rows.all()
    ]
    return ConversationPage(items=items, total=total, page=page, page_size=page_size)


async def read_mine(
    *, uow: UnitOfWork, principal: Principal, keep_days: int, conversation_id: uuid.UUID
) -> ConversationDetail:
    """One of the caller's conversations with every turn, oldest first; anyone else's (or an expired one) 404
    `conversation_not_found`, as asking in it answers."""
    convo = await uow.session.get(AiConversation, conversation_id)
    cutoff = datetime.now(UTC) - timedelta(days=keep_days)
    if convo is None or convo.user_id != principal.user_id or convo.updated_at < cutoff:
        raise NotFound("conversation not found", code="conversation_not_found")
    title = await uow.session.scalar(select(Course.title).where(Course.id == convo.course_id))
    messages = list(
        await uow.session.scalars(
            select(AiMessage).where(AiMessage.conversation_id == conversation_id).order_by(AiMessage.id)
        )
    )
    # A question is answered when an answer of its interaction exists (two devices asking at once interleave their
    # questions and answers); one whose stream was cancelled or failed, or is still running, is not. A question
    # written before the questions carried their interaction: when an answer follows it.
    replied = {m.interaction_id for m in messages if m.role == "assistant" and m.interaction_id is not None}
    answered = [
        (m.interaction_id in replied)
        if m.interaction_id is not None
        else (i + 1 < len(messages) and messages[i + 1].role == "assistant")
        for i, m in enumerate(messages)
    ]
    return ConversationDetail(
        id=convo.id,
        course_id=convo.course_id,
        course_title=title or "",
        created_at=convo.created_at,
        updated_at=convo.updated_at,
        messages=[
            ConversationMessage(
                role=m.role,  # type: ignore[arg-type]
                content=m.content,
                at=m.created_at,
                type=m.answer_type,  # type: ignore[arg-type]
                citations=m.citations,  # type: ignore[arg-type]
                interaction_id=m.interaction_id,
                answered=answered[i] if m.role == "user" else None,
            )
            for i, m in enumerate(messages)
        ],
    )
