"""The learning assistant's use cases: ask (JSON or streamed), instructor generation, interaction records."""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from opentelemetry.trace import Status, StatusCode
from pydantic import ValidationError
from sqlalchemy import and_, delete, func, or_, select, update

from smartcourse import metrics, telemetry
from smartcourse.assistant import evidence, generation, prompts, usage
from smartcourse.assistant import text as words
from smartcourse.assistant.configuration import Configuration, Knobs
from smartcourse.assistant.graph import build_graph
from smartcourse.assistant.schemas import (
    AskIn,
    AskOut,
    Citation,
    GeneratedQuizOut,
    GeneratedQuizPage,
    GenerationOut,
    InteractionOut,
    QuizOut,
    QuizQuestionOut,
    SaveQuizIn,
)
from smartcourse.assistant.sse import SERVER_STOPPING
from smartcourse.db import UnitOfWork
from smartcourse.domain import courses as rules
from smartcourse.domain.events import DomainEvent
from smartcourse.domain.text import Spellings
from smartcourse.errors import Conflict, DomainError, Invalid, NotFound, RateLimited, Unavailable
from smartcourse.models import (
    AiConversation,
    AiGeneratedQuiz,
    AiInteraction,
    AiMessage,
    ContentChunk,
    Course,
    Enrollment,
    Lesson,
    QuizAttempt,
    utcnow,
)
from smartcourse.ports import ChatMessage, Hit
from smartcourse.ratelimit import InFlight, rate_limiter
from smartcourse.schemas import LessonIn, LessonPublic, QuizQuestion
from smartcourse.security import Principal
from smartcourse.services import courses, progress, search
from smartcourse.services.content_index import to_chunk
from smartcourse.services.learner_view import published_lessons

log = logging.getLogger(__name__)

RETRIEVE_K = 8


# --- guards: quota and concurrency --------------------------------------------------------------


async def enforce_quota(container: Any, principal: Principal) -> dict[str, str]:
    """Per-user moving windows (per minute and per day) in Redis; 429 `ai_quota_exceeded` with Retry-After. Returns
    what is left of the quota as response headers (`RateLimit-*`, `RateLimiter.quota_headers`): a client shows "7
    questions left this minute" before it is refused (explore68 F8), the 429 carries them too."""

    s = container.settings
    limit = f"{s.assistant_quota_per_minute}/minute;{s.assistant_quota_per_day}/day"
    limiter, key = rate_limiter(container), ("ai", "user", str(principal.user_id))
    decision = await limiter.hit(key, limit)
    left = await limiter.quota_headers(key, limit) if decision.checked else {}
    if not decision.allowed:
        raise RateLimited(
            "assistant quota exceeded; retry later",
            code="ai_quota_exceeded",
            details={"retry_after_seconds": decision.retry_after_seconds, "limit": decision.limit},
            headers={**left, "Retry-After": str(decision.retry_after_seconds)},
        )
    return left


_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def _semaphore(container: Any) -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    sem = _slots.get(loop)
    if sem is None:
        sem = _slots[loop] = asyncio.Semaphore(max(1, container.settings.assistant_max_concurrent))
    return sem


async def acquire_slot(container: Any) -> asyncio.Semaphore:
    """One of N generation slots of this process; waits briefly, then 503 `assistant_busy`."""
    sem = _semaphore(container)
    try:
        await asyncio.wait_for(sem.acquire(), timeout=container.settings.assistant_queue_wait_seconds)
    except TimeoutError:
        raise Unavailable(
            "the assistant is busy; retry shortly", code="assistant_busy", headers={"Retry-After": "2"}
        ) from None
    return sem


_releasing: set[asyncio.Task[None]] = set()  # the holds being given back (a task keeps a reference until it ends)


@dataclass
class Slot:
    """A generation slot of this process, and the caller's hold on one of their own generations at a time."""

    semaphore: asyncio.Semaphore
    release_hold: Callable[[], Coroutine[Any, Any, None]] | None = None
    #: What is left of the caller's quota after this call, as response headers (`enforce_quota`).
    headers: dict[str, str] = field(default_factory=dict)
    _released: bool = False

    def release(self) -> None:
        """Give both back (once); the hold's release goes to Redis in a task of its own, so a `finally` of a stream
        being cancelled need not wait for it."""
        if self._released:
            return
        self._released = True
        self.semaphore.release()
        if self.release_hold is not None:
            task: asyncio.Task[None] = asyncio.get_running_loop().create_task(self.release_hold())
            _releasing.add(task)
            task.add_done_callback(_releasing.discard)


#: How long a user's hold on a generation lives unless renewed; its holder renews it every third of that while the
#: call runs, so the hold of a process killed mid-call (a restart's SIGKILL after its grace) lapses within this.
HOLD_SECONDS = 30.0


async def hold_own_slot(container: Any, principal: Principal) -> Callable[[], Coroutine[Any, Any, None]]:
    """One of the caller's `ASSISTANT_MAX_CONCURRENT_PER_USER` generations at a time, across the API's processes;
    429 `ai_concurrency_exceeded` with Retry-After beyond (explore53 F1: one student with a few tabs took every slot
    of every process within their quota, and everyone else was answered 503 `assistant_busy`). The hold is renewed
    while the call runs and lapses `HOLD_SECONDS` after its process died (explore54 N1: a fixed four minutes locked a
    user out after a restart had killed two of their calls). Returns what gives it back."""
    s = container.settings
    in_flight = InFlight(container.redis())  # the container's client; the script is sent by its hash
    key, hold_id = ("ai", "user", str(principal.user_id)), uuid.uuid4().hex
    hold_ms = int(HOLD_SECONDS * 1000)
    decision = await in_flight.hold(key, hold_id, limit=s.assistant_max_concurrent_per_user, hold_ms=hold_ms)
    if not decision.allowed:
        raise RateLimited(
            f"you have {s.assistant_max_concurrent_per_user} assistant calls running; retry when one has finished",
            code="ai_concurrency_exceeded",
            details={"retry_after_seconds": decision.retry_after_seconds, "limit": decision.limit},
            headers={"Retry-After": str(decision.retry_after_seconds)},
        )

    async def keep() -> None:
        while True:
            await asyncio.sleep(HOLD_SECONDS / 3)
            await in_flight.renew(key, hold_id, hold_ms=hold_ms)

    keeper = asyncio.get_running_loop().create_task(keep())

    async def release() -> None:
        keeper.cancel()
        await in_flight.release(key, hold_id)

    return release


async def slot_within_quota(container: Any, principal: Principal) -> Slot:
    """The caller's own hold, a generation slot, then the quota counted: a request turned away (429
    `ai_concurrency_exceeded`, 503 `assistant_busy`) costs no ask of the caller's quota. Counted first, three busy
    answers took three of ten asks a minute, and a client retrying as Retry-After said locked itself out when the
    server was busiest (explore23 F1)."""
    release_hold = await hold_own_slot(container, principal)
    try:
        semaphore = await acquire_slot(container)
    except BaseException:
        await release_hold()
        raise
    slot = Slot(semaphore, release_hold)
    try:
        slot.headers = await enforce_quota(container, principal)
    except BaseException:
        slot.release()
        raise
    return slot


# --- course context: access, conversation, quiz lock ---------------------------------------------


async def _outline(documents: Any, course: Course) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The live version's modules, each with its lessons' titles, in their order."""
    modules: dict[uuid.UUID, tuple[str, list[str]]] = {}
    for lesson in await published_lessons(documents, course):
        modules.setdefault(lesson.module_id, (lesson.module_title, []))[1].append(lesson.title)
    return tuple((title, tuple(lessons)) for title, lessons in modules.values())


async def _quiz_answers_locked(uow: UnitOfWork, documents: Any, principal: Principal, course: Course) -> bool:
    """A student who has not passed every quiz of the course's live version, as it is, gets no quiz answers from the
    assistant: a pass counts as the quiz's submit counts it (`progress.counts_against`: a pass of a quiz deleted or
    rewritten since unlocks nothing, and a quiz of the working copy not yet published locks nothing; explore29 F1)."""
    if rules.can_see_draft(principal, course.instructor_id):
        return False
    quizzes = {
        lsn.lesson_id: rules.quiz_fingerprint(lsn.body)
        for lsn in await published_lessons(documents, course)
        if lsn.type == "quiz"
    }
    if not quizzes:
        return False
    passed = set(
        await uow.session.scalars(
            select(QuizAttempt.lesson_id)
            .distinct()
            .join(Enrollment, Enrollment.id == QuizAttempt.enrollment_id)
            .where(
                QuizAttempt.student_id == principal.user_id,
                QuizAttempt.passed,
                progress.counted_attempts(),  # a pass in a revoked completion: the retake's quiz is still to pass
                or_(
                    *(
                        and_(QuizAttempt.lesson_id == lesson_id, progress.counts_against(fingerprint))
                        for lesson_id, fingerprint in quizzes.items()
                    )
                ),
            )
        )
    )
    return not set(quizzes) <= passed


async def _conversation(
    uow: UnitOfWork, principal: Principal, course_id: uuid.UUID, conversation_id: uuid.UUID | None, keep_days: int
) -> tuple[uuid.UUID, list[ChatMessage]]:
    """The caller's conversation about this course (404 for anyone else's), with its recent turns."""
    cutoff = datetime.now(UTC) - timedelta(days=keep_days)
    # Retention: the caller's expired conversations go on each ask (conversations.purge_expired sweeps everyone's).
    await uow.session.execute(
        delete(AiConversation).where(AiConversation.user_id == principal.user_id, AiConversation.updated_at < cutoff)
    )
    if conversation_id is None:
        return uuid.uuid4(), []
    convo = await uow.session.get(AiConversation, conversation_id)
    if convo is None or convo.user_id != principal.user_id:
        raise NotFound("conversation not found", code="conversation_not_found")
    if convo.course_id != course_id:
        # The caller's own, about another course (a client keeping "the current chat" across courses): said so, as
        # it is theirs to know (explore75 F11: the bare 404 sent them looking for a lost conversation).
        raise Conflict(
            "this conversation is about another course: ask in it there, or start a new one here (no conversation_id)",
            code="conversation_other_course",
            details={"course_id": str(convo.course_id)},
        )
    rows = (
        await uow.session.scalars(
            select(AiMessage)
            .where(AiMessage.conversation_id == conversation_id)
            .order_by(AiMessage.id.desc())
            .limit(12)
        )
    ).all()
    return conversation_id, [ChatMessage(m.role, m.content) for m in reversed(rows)]  # type: ignore[arg-type]


# --- interactions (the analytics source) ----------------------------------------------------------


@dataclass
class Interaction:
    """What one assistant call did; recorded with its `ai.interaction_recorded` event in one transaction."""

    user_id: uuid.UUID
    course_id: uuid.UUID | None
    kind: str
    model: str
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    conversation_id: uuid.UUID | None = None
    new_conversation: bool = False  # an ask that starts a conversation (written with its answer, or its failure)
    question: str | None = None
    streamed: bool = False
    started: float = field(default_factory=time.perf_counter)
    asked_at: datetime = field(default_factory=utcnow)
    first_token_ms: int | None = None
    outcome: str = "error"
    reason: str | None = None
    error: str | None = None
    meter: usage.Usage = field(default_factory=usage.Usage)

    def mark_first_token(self) -> None:
        if self.first_token_ms is None:
            self.first_token_ms = int((time.perf_counter() - self.started) * 1000)

    def row_and_event(self) -> tuple[AiInteraction, DomainEvent]:
        latency = int((time.perf_counter() - self.started) * 1000)
        row = AiInteraction(
            id=self.id,
            user_id=self.user_id,
            course_id=self.course_id,
            conversation_id=self.conversation_id,
            kind=self.kind,
            outcome=self.outcome,
            reason=self.reason,
            streamed=self.streamed,
            latency_ms=latency,
            first_token_ms=self.first_token_ms,
            tokens_in=self.meter.tokens_in,
            tokens_out=self.meter.tokens_out,
            model=self.model,
            error=self.error,
            question=(self.question or "")[:2000] or None,
        )
        data: dict[str, Any] = {
            "interaction_id": str(self.id),
            "user_id": str(self.user_id),
            "course_id": str(self.course_id) if self.course_id else None,
            "kind": self.kind,
            "outcome": self.outcome,
            "model": self.model,
            "latency_ms": latency,
            "tokens_in": self.meter.tokens_in,
            "tokens_out": self.meter.tokens_out,
            "error": self.error,
        }
        return row, DomainEvent(type="ai.interaction_recorded", aggregate_id=str(self.id), data=data, id=self.id)


async def record(
    container: Any, interaction: Interaction, *, extra: list[Any] | None = None, touch: uuid.UUID | None = None
) -> None:
    """Write the interaction (and any rows that belong with it) and its event, in one transaction."""
    row, event = interaction.row_and_event()
    async with container.uow() as uow:
        for obj in extra or []:
            uow.session.add(obj)
            await uow.flush()  # the conversation before its messages
        if touch is not None:
            await uow.session.execute(
                update(AiConversation).where(AiConversation.id == touch).values(updated_at=func.now())
            )
        uow.session.add(row)
        uow.emit(event)
        await uow.commit()
    metrics.observe_assistant(
        row.kind,
        row.outcome,
        seconds=row.latency_ms / 1000,
        first_token_seconds=None if row.first_token_ms is None else row.first_token_ms / 1000,
        tokens_in=row.tokens_in,
        tokens_out=row.tokens_out,
    )


#: The width of `ai_interactions.reason`.
REASON_CHARS = 50


def failure_reason(exc: BaseException) -> str | None:
    """What the interaction record keeps as `reason` for a failure: the error's `details.reason` ("no usable
    objective: …"), else its code; cut to the column's width (the whole text is in `error`)."""
    if not isinstance(exc, DomainError):
        return None
    reason = str((exc.details or {}).get("reason") or exc.code)
    return reason if len(reason) <= REASON_CHARS else reason[: REASON_CHARS - 1] + "…"


async def record_failure(
    container: Any,
    interaction: Interaction,
    exc: BaseException,
    *,
    touch: uuid.UUID | None = None,
) -> None:
    """Record a call that ended without a result: `cancelled` for a cancellation (the client left), logged as one
    info line since nothing failed; `error` otherwise (the caller logs it), also for a stream the server stopping cut
    (`reason` `server_stopping`, logged as a warning: explore53 F2, counted as a user's cancel). `touch`: the
    conversation of an ask, whose question stays in it (`AskRun.write_question`)."""
    cancelled = isinstance(exc, asyncio.CancelledError)
    stopping = cancelled and exc.args[:1] == (SERVER_STOPPING,)  # a restart cut it: a failure, not the client's doing
    interaction.outcome = "cancelled" if cancelled and not stopping else "error"
    interaction.reason = "server_stopping" if stopping else failure_reason(exc)
    interaction.error = f"{type(exc).__name__}: {exc}"[:2000]
    if stopping:
        log.warning("assistant %s cut by the server stopping (interaction %s)", interaction.kind, interaction.id)
    elif cancelled:
        log.info("assistant %s cancelled (interaction %s)", interaction.kind, interaction.id)
    try:
        await asyncio.shield(record(container, interaction, touch=touch))
    except Exception:  # the failure to record must not hide the original one
        log.exception("could not record assistant interaction %s", interaction.id)


async def get_interaction(container: Any, *, principal: Principal, interaction_id: uuid.UUID) -> InteractionOut:
    """One interaction with its cause if it failed: for admins, the course's owner, and its own user. The question
    only to its own user, as the conversation it was asked in (explore67 F3: the instructor read a student's question
    here, health data included, though the conversation was 404 to them)."""
    async with container.uow() as uow:
        row = await uow.session.get(AiInteraction, interaction_id)
        allowed = row is not None and (principal.is_admin or row.user_id == principal.user_id)
        if row is not None and not allowed and row.course_id is not None:
            course = await uow.session.get(Course, row.course_id)
            allowed = course is not None and rules.teaches(principal, course.instructor_id)
        if row is None or not allowed:
            raise NotFound("interaction not found", code="interaction_not_found")
        answer = InteractionOut.model_validate(row, from_attributes=True)
        return answer if row.user_id == principal.user_id else answer.model_copy(update={"question": None})


# --- ask ----------------------------------------------------------------------------------------


async def _within(span: Any, stream: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """`stream`'s items, each produced with `span` current (what it starts, tasks included, is the span's child), the
    context restored before each item is handed on (the consumer's yields cross its caller's context)."""
    from opentelemetry import context as otel_context
    from opentelemetry import trace

    inside = trace.set_span_in_context(span)
    iterator = aiter(stream)
    while True:
        token = otel_context.attach(inside)
        try:
            item = await anext(iterator)
        except StopAsyncIteration:
            return
        finally:
            otel_context.detach(token)
        yield item


def _retriever(container: Any, principal: Principal, course_id: uuid.UUID) -> Any:
    async def retrieve(query: str) -> list[Hit]:
        attributes = {"smartcourse.course_id": str(course_id), "smartcourse.k": RETRIEVE_K}
        with telemetry.tracer().start_as_current_span("assistant retrieve", attributes=attributes) as span:
            found = await search.retrieve(
                container, principal=principal, course_id=course_id, query=query, k=RETRIEVE_K
            )
            span.set_attribute("smartcourse.hits", len(found.hits))
            span.set_attribute("smartcourse.index_version", found.version)
        return found.hits

    return retrieve


@dataclass
class AskRun:
    """A prepared ask: access checked, quota counted, a generation slot held until `events()` finishes."""

    container: Any
    principal: Principal
    body: AskIn
    config: Configuration
    history: list[ChatMessage]
    interaction: Interaction
    slot: Slot | None
    failure: BaseException | None = None
    _released: bool = False
    #: The question's write (`write_question`), started as the run is prepared: it runs beside the search, adding
    #: nothing to the first token's time (awaited, it did: +5 ms p50, +28 ms p95 server-added, a commit's flush).
    _writing: asyncio.Task[None] | None = None

    @property
    def quota_headers(self) -> dict[str, str]:
        """What is left of the caller's quota, as response headers (`enforce_quota`)."""
        return dict(self.slot.headers) if self.slot is not None else {}

    def release(self) -> None:
        if self.slot is not None and not self._released:
            self._released = True
            self.slot.release()

    async def events(self) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """(event, data): `token`*, `citations`, `done`; or `error` (the SSE protocol of docs/assistant.md).

        `reset` (discard the tokens so far) comes whenever tokens were sent that are not the answer's beginning:
        before the model's second attempt, and before the server's own answer (the passages quoted, or the draft
        corrected) or a refusal. So the tokens after the last `reset` always spell the final answer (`done`). When
        the model fails after tokens were sent, a `reset` `{next: "error"}` precedes `error`: the unchecked draft
        is not left on the client's screen."""
        it = self.interaction
        state: dict[str, Any] = {}
        shown = ""  # what a client following the protocol shows: the tokens since the last reset
        attempt = 1  # the model's attempt whose tokens are being sent
        # The answer's own span, failed with the reason (explore40 F9: the request's span said `ERROR`, nothing more;
        # the HTTP instrumentation sets a 503's status itself). Current only while the graph runs a step (`_within`):
        # this generator's yields cross the caller's context. So retrieval and the model calls are its children
        # (explore55 F11: they were its siblings).
        span = telemetry.tracer().start_span("assistant answer", attributes={"smartcourse.interaction_id": str(it.id)})
        try:
            with usage.metered() as meter:
                it.meter = meter
                graph_input = {"question": self.body.question, "history": self.history}
                stream = build_graph().astream(graph_input, self.config.as_config(), stream_mode=["custom", "values"])
                async for mode, part in _within(span, stream):
                    if mode == "custom" and "token" in part:
                        it.mark_first_token()
                        shown += part["token"]
                        yield "token", {"text": part["token"]}
                    elif mode == "custom" and "reset" in part:
                        attempt = int(part["reset"])
                        if shown:  # nothing to discard when the rejected draft never reached the client
                            shown = ""
                            yield "reset", {"attempt": part["reset"], "next": "model"}
                    elif mode == "values":
                        state = part
            out = AskOut(
                type=state["type"],
                answer=state["answer"],
                citations=state.get("citations", []),
                conversation_id=it.conversation_id or uuid.uuid4(),
                interaction_id=it.id,
            )
            it.outcome, it.reason = out.type, state.get("reason") or None
            if state.get("model_error"):  # answered with the server's quotes: why the model did not (explore72 F4)
                it.error = state["model_error"]
            asked = [] if await self._question_written() else self._asked(out.conversation_id)
            await record(self.container, it, extra=[*asked, *self._turns(out)], touch=out.conversation_id)
        except DomainError as exc:
            self.failure = exc
            span.set_status(Status(StatusCode.ERROR, f"{exc.code}: {exc.message}"[:300]))
            await self._failed(exc)
            if shown:
                yield "reset", {"attempt": attempt + 1, "next": "error"}
            yield "error", {"code": exc.code, "message": exc.message, "interaction_id": str(it.id)}
            return
        except asyncio.CancelledError as exc:  # the client went away (`sse._stop`): recorded, then raised on
            self.failure = exc
            await self._failed(exc)
            raise
        except Exception as exc:
            log.exception("assistant failed (interaction %s)", it.id)
            self.failure = exc
            telemetry.mark_error(span, exc)
            await self._failed(exc)
            if shown:  # the model failed mid-draft: the tokens sent were never checked
                yield "reset", {"attempt": attempt + 1, "next": "error"}
            yield (
                "error",
                {
                    "code": "assistant_failed",
                    "message": "the assistant could not answer; the interaction id identifies the cause",
                    "interaction_id": str(it.id),
                },
            )
            return
        finally:
            span.set_attribute("smartcourse.outcome", it.outcome or "")
            span.end()
            self.release()
        # What the client must end up showing: the answer; a clarification or a refusal too once anything was
        # streamed (explore79 F8: drafts, a reset, then nothing: an empty bubble until `done`); else nothing, its text
        # is in `done`, as a routed clarification's is.
        final = out.answer if out.type == "answer" or shown else ""
        if shown.strip() != final.strip():  # the client shows a rejected (or corrected) draft: replace it
            if shown.strip():
                yield "reset", {"attempt": int(state.get("attempts") or 0) + 1, "next": "server"}
            if final:
                yield "token", {"text": final}
        yield "citations", {"citations": [c.model_dump() for c in out.citations]}
        yield "done", out.model_dump(mode="json")

    def _asked(self, cid: uuid.UUID) -> list[Any]:
        """The conversation row (when this question starts it) and the question's message."""
        objs: list[Any] = []
        asked = self.interaction.asked_at  # the question's time, not its answer's (explore72 F12)
        if self.body.conversation_id is None:
            objs.append(
                AiConversation(id=cid, user_id=self.principal.user_id, course_id=self.body.course_id, created_at=asked)
            )
        question = AiMessage(
            conversation_id=cid,
            role="user",
            content=self.body.question,
            created_at=asked,
            interaction_id=self.interaction.id,
        )
        return [*objs, question]

    async def write_question(self) -> None:
        """The question in its conversation (created by a first question), before any answer: the stream's
        `X-Conversation-Id` names it before the first event, and the student's other device sees the question being
        answered (explore75 F7: both ids were 404 until `done`). Run beside the search (`_writing`). One that ends
        without an answer stays, unanswered (explore72a F8a): a follow-up can continue the conversation, the rewrite
        reads the questions asked."""
        cid = self.interaction.conversation_id
        if cid is None:
            return
        async with self.container.uow() as uow:
            for obj in self._asked(cid):
                uow.session.add(obj)
                await uow.flush()  # the conversation before its message
            await uow.session.execute(
                update(AiConversation).where(AiConversation.id == cid).values(updated_at=func.now())
            )
            await uow.commit()

    async def _question_written(self) -> bool:
        """Wait for the question's write; False if it failed (logged: the answer's record then writes it)."""
        if self._writing is None:
            return True
        try:
            await asyncio.shield(self._writing)
        except Exception:
            log.exception("could not write the question of interaction %s", self.interaction.id)
            return False
        return True

    async def _failed(self, exc: BaseException) -> None:
        """Record the failure; the question stays in its conversation, unanswered (`write_question`)."""
        await self._question_written()
        await record_failure(self.container, self.interaction, exc, touch=self.interaction.conversation_id)

    def _turns(self, out: AskOut) -> list[Any]:
        """The answer's message (its question was written before: `write_question`)."""
        cid = out.conversation_id
        return [
            AiMessage(
                conversation_id=cid,
                role="assistant",
                content=out.answer,
                answer_type=out.type,
                citations=[c.model_dump(mode="json") for c in out.citations],
                interaction_id=out.interaction_id,
            ),
        ]


async def prepare_ask(container: Any, *, principal: Principal, body: AskIn, streamed: bool) -> AskRun:
    """Everything that can refuse with an HTTP status happens here, before any byte of a stream is sent."""
    async with container.uow() as uow:
        course = await search.ensure_content_access(uow, principal, body.course_id, doing="ask its assistant")
        # Read only for a question the guard would refuse (it reads the live version's outline): the lock decides
        # nothing for any other.
        locked = evidence.asks_for_quiz_answers(body.question) and await _quiz_answers_locked(
            uow, container.documents, principal, course
        )
        conversation_id, history = await _conversation(
            uow, principal, body.course_id, body.conversation_id, container.settings.assistant_history_days
        )
        await uow.commit()
    outline = await _outline(container.documents, course) if evidence.asks_for_overview(body.question) else ()
    # A closing turn ("ok thanks!") runs no search and no model: it costs no ask of the quota and takes no slot
    # (explore76 F4: a student thanking after each answer halved their quota, and was refused 429 for a "thanks").
    slot = None if evidence.is_acknowledgement(body.question) else await slot_within_quota(container, principal)
    try:
        chat = container.chat_model()
    except Exception:
        if slot is not None:
            slot.release()
        raise
    config = Configuration(
        chat=chat,
        retriever=_retriever(container, principal, body.course_id),
        knobs=Knobs.from_settings(container.settings),
        quiz_answers_locked=locked,
        outline=outline,
    )
    interaction = Interaction(
        user_id=principal.user_id,
        course_id=body.course_id,
        kind="ask",
        model=chat.name,
        conversation_id=conversation_id,
        new_conversation=body.conversation_id is None,
        question=body.question,
        streamed=streamed,
    )
    run = AskRun(container, principal, body, config, history, interaction, slot)
    run._writing = asyncio.get_running_loop().create_task(run.write_question())
    return run


async def ask(container: Any, *, principal: Principal, body: AskIn) -> AskOut:
    """POST /ai/ask: the whole answer at once (same graph as the stream)."""
    return await answer(await prepare_ask(container, principal=principal, body=body, streamed=False))


async def answer(run: AskRun) -> AskOut:
    """A prepared ask's whole answer at once (`POST /ai/ask`, whose handler reads the run's quota headers first)."""
    done: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    async for event, data in run.events():
        if event == "done":
            done = data
        elif event == "error":
            error = data
    if done is None:
        if isinstance(run.failure, DomainError):
            raise run.failure
        err = error or {}
        raise Unavailable(
            err.get("message", "the assistant could not answer"),
            code=err.get("code", "assistant_failed"),
            details={"interaction_id": err.get("interaction_id")},
        )
    return AskOut.model_validate(done)


# --- instructor generation ------------------------------------------------------------------------

GENERATION_PASSAGES = 4
_T = TypeVar("_T")


async def _instructor_course(uow: UnitOfWork, principal: Principal, course_id: uuid.UUID) -> Course:
    """The course, if the caller owns it (or is an admin).

    A course the caller may not see (missing, or someone else's draft or archived course) is 404, as everywhere;
    one they can see but do not own is 403 `not_course_owner` (`courses.ensure_course_owner`)."""
    course = await uow.session.get(Course, course_id)
    if course is None:
        raise NotFound("course not found", code="course_not_found")
    await courses.ensure_course_owner(uow, principal, course)
    return course


def _chunk_hit(row: ContentChunk) -> Hit:
    return Hit(chunk=to_chunk(row), score=1.0)


@dataclass
class Passages:
    """What a generation reads: its passages, whether any is text not yet published, and the materials of the working
    copy it could not read (uploaded since the last publish: a material's text is extracted when it is published)."""

    hits: list[Hit]
    based_on: str = "published"
    materials_not_read: list[dict[str, str]] = field(default_factory=list)
    #: An explanation's concept as the course spells it, when it is misspelt (`spelling_hint`).
    did_you_mean: str | None = None


async def _generation_passages(container: Any, course: Course, lesson_id: uuid.UUID | None) -> Passages:
    """What a summary, objectives or a quiz read (`_working_hits`): of a lesson, its chunks spread from start to end;
    of the course, the first chunk of each source, spread over the outline."""
    hits, not_read = await _working_hits(container, course, lesson_id)
    if lesson_id is not None:
        chosen = spread(hits, GENERATION_PASSAGES)
    else:
        firsts: dict[str, Hit] = {}
        for h in hits:
            firsts.setdefault(h.chunk.source_id, h)
        # A quiz's prompts are questions, not content: a course-wide quiz copied them, citing another lesson, and
        # every generation lost a passage to them (explore42 F5). Read only when the course has nothing else.
        content = [h for h in firsts.values() if not evidence.is_quiz_prompts(h)] or list(firsts.values())
        chosen = spread(content, GENERATION_PASSAGES)
    if not chosen:
        if lesson_id is not None and not_read and not_read[0]["reason"] == "no_text":
            raise Conflict(
                "that material's text could not be read when the course was published (an image-only or empty "
                "document?): upload a version with text, then publish",
                code="material_unreadable",
                details={"materials_not_read": not_read},
            )
        if lesson_id is not None and not_read:
            raise Conflict(
                "that material's text is read once it is published: publish the course and wait until it is ready",
                code="material_not_indexed",
                details={"materials_not_read": not_read},
            )
        raise Conflict(
            "nothing to generate from: no lesson text, transcript or published material"
            + (" in that lesson" if lesson_id is not None else " in the course"),
            code="no_indexed_content",
        )
    return Passages(chosen, _based_on(chosen), not_read)


def spelling_hint(concept: str, texts: Sequence[str]) -> str | None:
    """The concept as the course spells it, when a word of it the course (`texts`) has in no form is close in
    spelling to one it has: "enantiomr" → "enantiomers", "batalla del Ebor" → "batalla del Ebro" (explore85 F13: a
    concept with one right word got no hint). A misspelt concept was explained under its spelling from the passages
    near it in meaning ("Enantiomr is a molecule that …": explore80 F6). None otherwise: a concept whose words the
    course lacks but near none of its words is explained from the passages near it in meaning, as before."""
    said = set().union(*(evidence.content_stems(text) for text in texts))

    def found(word: str) -> bool:  # in some form: the stemmer leaves "rotate" and "rotation" apart
        w = words.stem(word)
        return any(w == s or (min(len(w), len(s)) >= 5 and (w.startswith(s) or s.startswith(w))) for s in said)

    typed = [w for w in evidence.subject_words(concept) if any(c.isalpha() for c in w)]
    missing = [w for w in typed if not found(w)]
    if not missing:
        return None
    # Each word as compared (folded) and as the course writes it most ("Ebro", "compuesto").
    spellings = Spellings(word for text in texts for word in re.findall(r"[^\W\d_]{4,}", text))
    fixed = {w: spellings.spelt(near) for w in missing if (near := spellings.nearest(w, 0.75)) is not None}
    if not fixed:
        return None
    hint = concept
    for wrong, right in fixed.items():  # in the concept as typed (accents and case aside), its other words kept
        hint = re.sub(rf"(?<!\w){_as_typed(wrong)}(?!\w)", right, hint, count=1, flags=re.IGNORECASE)
    return hint if hint != concept else " ".join(fixed.get(w, w) for w in typed)


def _as_typed(folded_word: str) -> str:
    """A pattern matching a folded word as it may have been typed: each letter with or without an accent."""
    return "".join(f"[{re.escape(ch)}{_ACCENTED.get(ch, '')}]" for ch in folded_word)


#: The accented forms a folded letter stands for (`_as_typed`).
_ACCENTED = {"a": "áàâäãå", "e": "éèêë", "i": "íìîï", "o": "óòôöõ", "u": "úùûü", "n": "ñ", "c": "ç", "y": "ýÿ"}


async def _explain_passages(container: Any, principal: Principal, course: Course, concept: str) -> Passages:
    """What an explanation reads: the working copy's chunks that have every word of the concept (what the instructor
    just wrote: explore74 F5, "serac" in a lesson not yet published was 422 `concept_not_in_course` while the other
    tools read it), and the live index's retrieved ones above the floor (near in meaning, without the words), those
    still in the working copy first, at most `GENERATION_PASSAGES`. A quiz's prompts are questions to the student, not
    material to explain from (explore45 F3: an explanation ended with a saved quiz's prompt)."""
    work, not_read = await _working_hits(container, course, None)
    work = [h for h in work if not evidence.is_quiz_prompts(h)]
    wanted = evidence.subject_stems(concept)
    lexical = [h for h in work if wanted and wanted <= evidence.subject_stems(f"{h.chunk.title} {h.chunk.text}")]
    retrieved: list[Hit] = []
    if course.index_version > 0:
        found = await search.retrieve(container, principal=principal, course_id=course.id, query=concept, k=RETRIEVE_K)
        floor = container.settings.assistant_relevance_floor
        strong = evidence.strong_hits(found.hits, floor, evidence.subject_words(concept))
        # A retrieved chunk of a lesson edited or deleted since is not what the instructor sees: left out.
        current = {(h.chunk.source_id, h.chunk.content_hash) for h in work}
        retrieved = [
            h
            for h in strong
            if not evidence.is_quiz_prompts(h) and (h.chunk.source_id, h.chunk.content_hash) in current
        ]
    lexical_ids = {h.chunk.chunk_id for h in lexical}
    chosen = [h for h in retrieved if h.chunk.chunk_id in lexical_ids]
    chosen += [h for h in lexical if h.chunk.chunk_id not in {c.chunk.chunk_id for c in chosen}]
    chosen += [h for h in retrieved if h.chunk.chunk_id not in lexical_ids]
    chosen = chosen[:GENERATION_PASSAGES]
    hint = None if lexical else spelling_hint(concept, [f"{h.chunk.title} {h.chunk.text}" for h in work])
    return Passages(chosen, _based_on(chosen), not_read, hint)


def _based_on(passages: list[Hit]) -> str:
    """`working_copy` when a passage is text not published yet (its chunk id has version 0), else `published`."""
    return "working_copy" if any(h.chunk.version == 0 for h in passages) else "published"


async def _working_hits(
    container: Any, course: Course, lesson_id: uuid.UUID | None
) -> tuple[list[Hit], list[dict[str, str]]]:
    """Every chunk of the course, or of one lesson or material, in reading order (lessons in the outline's, then
    materials), and the materials not read, from the **working copy**, what the instructor sees and edits (explore73
    F4: a draft course was 409 `course_not_ready`, a lesson added since the publish 404, an edited lesson generated
    from its published text).

    A lesson's text is chunked as the publish chunks it; a chunk the live index holds unchanged (same source, same
    content hash) is the index's, with its id, so a course published and not edited since reads exactly what its
    students' assistant reads. Materials are read from the live index (their text is extracted at publish): those
    the working copy still has; one uploaded since is named in `materials_not_read`. A lesson's generation also
    reads the materials attached to it (explore17 F9: "summarise this lesson" left out the handout uploaded with it).
    """
    from smartcourse.content.chunk import chunk_sections
    from smartcourse.content.extract import sections_from_snapshot

    structure = await courses.working_outline(container, course.id)
    materials = await container.documents.find(courses.MATERIALS, {"course_id": str(course.id)})
    sections = sections_from_snapshot({"modules": courses.snapshot_modules(structure)})
    if lesson_id is not None:
        wanted = str(lesson_id)
        if any(str(lesson.id) == wanted for module in structure for lesson in module.lessons):
            sections = [s for s in sections if s.source_id == wanted]
            materials = [m for m in materials if str(m.get("lesson_id")) == wanted]
        elif any(str(m["id"]) == wanted for m in materials):
            sections, materials = [], [m for m in materials if str(m["id"]) == wanted]
        else:
            raise NotFound(
                "no lesson or material of the course has that id (a module's or the course's id, or one deleted)",
                code="lesson_not_found",
            )
    materials = sorted(materials, key=lambda m: str(m["id"]))
    indexed: list[ContentChunk] = []
    live: set[str] = set()  # the materials the live version published (read or not)
    if course.index_version > 0:
        snapshot = await container.documents.get(
            courses.VERSIONS, courses.version_doc_id(course.id, course.index_version)
        )
        live = {str(m.get("id")) for m in (snapshot or {}).get("materials") or []}
        sources = {s.source_id for s in sections} | {str(m["id"]) for m in materials}
        async with container.uow() as uow:
            stmt = select(ContentChunk).where(
                ContentChunk.course_id == course.id, ContentChunk.version == course.index_version
            )
            if lesson_id is not None:
                stmt = stmt.where(ContentChunk.source_id.in_(sources))
            rows = await uow.session.scalars(stmt.order_by(ContentChunk.ordinal, ContentChunk.chunk_id))
            indexed = [r for r in rows if r.source_id in sources]
    settings = container.settings
    # Version 0 names no version: these ids ("<course>:v0:lesson:<id>:<n>") are the working copy's.
    made = await asyncio.to_thread(
        chunk_sections,
        sections,
        course_id=str(course.id),
        version=0,
        max_tokens=settings.chunk_tokens,
        overlap_tokens=settings.chunk_overlap_tokens,
    )
    published = {(r.source_id, r.content_hash): r for r in indexed}
    hits = [
        _chunk_hit(published[(c.source_id, c.content_hash)])
        if (c.source_id, c.content_hash) in published
        else Hit(chunk=c, score=1.0)
        for c in made
    ]
    read = {r.source_id for r in indexed}
    hits += [_chunk_hit(r) for r in indexed if r.source_type == "material"]
    # Published but with no text read (an image-only PDF: the publish report names it) is not what republishing
    # fixes, unlike an upload since the publish (explore74 F3: both were told to publish and wait).
    not_read = [
        {
            "id": str(m["id"]),
            "filename": str(m.get("filename") or ""),
            "reason": "no_text" if str(m["id"]) in live else "not_published",
        }
        for m in materials
        if str(m["id"]) not in read
    ]
    return hits, not_read


def spread(items: list[_T], n: int) -> list[_T]:
    """At most `n` of `items`, evenly spaced from the first to the last, in order: a course-wide generation reads the
    first chunk of sources across the whole outline (its materials, which come last, included), a lesson's reads
    its chunks and those of the materials attached to it (`_generation_passages`) from start to end. The first `n` took
    the first four lessons only (explore17 F2)."""
    if len(items) <= n:
        return items
    if n <= 1:
        return items[:n]
    return [items[round(i * (len(items) - 1) / (n - 1))] for i in range(n)]


@dataclass
class GenerationRun:
    """A prepared instructor generation: checks done, slot held until `execute` ends."""

    container: Any
    principal: Principal
    task: generation.Task
    passages: list[Hit]
    interaction: Interaction
    slot: Slot
    query: str
    lesson_id: uuid.UUID | None = None
    read: Passages = field(default_factory=lambda: Passages([]))

    @property
    def quota_headers(self) -> dict[str, str]:
        """What is left of the caller's quota, as response headers (`enforce_quota`), and the interaction's id: a
        stream cut off or cancelled has it to look up before `done` (explore78 F10, as `/ai/ask-stream` does)."""
        return {"X-Interaction-Id": str(self.interaction.id), **self.slot.headers}

    async def execute(
        self, on_token: Any = None, on_reset: Any = None, on_progress: Any = None
    ) -> GenerationOut | QuizOut:
        """The generation; `on_token(text)` per streamed piece, `on_reset(attempt)` before a retry's pieces,
        `on_progress(data)` as `generation.run` says."""
        it = self.interaction
        try:
            with usage.metered() as meter:
                it.meter = meter

                def token(piece: str) -> None:
                    it.mark_first_token()
                    if on_token is not None:
                        on_token(piece)

                result = await generation.run(
                    self.container.chat_model(), self.task, self.passages, token, on_reset, on_progress
                )
            it.outcome = "generated"
            out, extra = self._shape(result)
            await record(self.container, it, extra=extra)
            return out
        except (Exception, asyncio.CancelledError) as exc:
            await record_failure(self.container, it, exc)
            if isinstance(exc, DomainError):
                exc.details = {**(exc.details or {}), "interaction_id": str(it.id)}
                # Said here: a stream's failure is an `error` event in a 200 answer, which its access line does not
                # tell (explore73 F8: the metrics counted failures no log line matched).
                log.warning(
                    "assistant %s failed: %s (%s) (interaction %s)",
                    it.kind,
                    exc.code,
                    (exc.details or {}).get("reason") or exc.message,
                    it.id,
                )
                raise
            if isinstance(exc, asyncio.CancelledError):
                raise
            log.exception("generation failed (interaction %s)", it.id)
            raise Unavailable(
                "the assistant could not generate this; the interaction id identifies the cause",
                code="assistant_failed",
                details={"interaction_id": str(it.id)},
            ) from exc
        finally:
            self.slot.release()

    def _shape(self, result: Any) -> tuple[GenerationOut | QuizOut, list[Any]]:
        kind, it = self.task.kind, self.interaction
        if kind == "quiz":
            questions = [
                QuizQuestionOut(
                    prompt=q.prompt,
                    options=q.options,
                    answer=q.answer,
                    source_chunk_id=self.passages[q.source - 1].chunk.chunk_id,
                    source=prompts.source_label(self.passages[q.source - 1]),
                )
                for q in result
            ]
            quiz_id = uuid.uuid4()
            # A lesson's quiz is named after it; a course-wide one after the course (`query`: the course's title),
            # not its first source (explore17 F2: "Quiz: Vertical zonation" for questions from other lessons).
            named = self.passages[0].chunk.title if self.lesson_id is not None else self.query
            title = f"Quiz: {named}"[:200]
            row = AiGeneratedQuiz(
                id=quiz_id,
                course_id=it.course_id,
                lesson_id=self.lesson_id,
                created_by=self.principal.user_id,
                title=title,
                questions=[q.model_dump() for q in questions],
            )
            out = QuizOut(
                id=quiz_id,
                course_id=it.course_id or uuid.uuid4(),
                lesson_id=self.lesson_id,
                title=title,
                questions=questions,
                sources=self._sources(),
                interaction_id=it.id,
                based_on=self.read.based_on,  # type: ignore[arg-type]
                materials_not_read=self.read.materials_not_read,
            )
            return out, [row]
        text = "\n".join(f"- {o}" for o in result) if kind == "objectives" else str(result)
        if kind == "objectives":  # objectives cite nothing by design: the passages they were written from
            cited = list(range(1, len(self.passages) + 1))
        else:  # a summary or an explanation: only what its text cites (none: an empty list)
            cited, _ = evidence.check_citations(text, len(self.passages))
        cites = [Citation(**evidence.citation(n, self.passages[n - 1], self.query, self._weights)) for n in cited]
        items = list(result) if kind == "objectives" else []
        out = GenerationOut(
            kind=kind,  # type: ignore[arg-type]
            text=text,
            items=items,
            citations=cites,
            sources=self._sources(),
            interaction_id=it.id,
            based_on=self.read.based_on,  # type: ignore[arg-type]
            materials_not_read=self.read.materials_not_read,
        )
        return out, []

    def _sources(self) -> list[Citation]:
        """Every passage the model was given (explore17 F2: nothing said what a course-wide text covered)."""
        return [
            Citation(**evidence.citation(n, p, self.query, self._weights)) for n, p in enumerate(self.passages, start=1)
        ]

    @functools.cached_property
    def _weights(self) -> dict[str, float]:
        """The quotes' word weights over the passages shown (`evidence.quote_weights`): once per run, for the
        citations and the sources alike."""
        return evidence.quote_weights(self.passages, self.query)


async def prepare_generation(
    container: Any,
    *,
    principal: Principal,
    kind: str,
    course_id: uuid.UUID,
    lesson_id: uuid.UUID | None = None,
    num_questions: int = 3,
    concept: str | None = None,
    level: str = "beginner",
) -> GenerationRun:
    """Check the caller and the course, pick the passages, count the quota and take a slot."""
    async with container.uow() as uow:
        course = await _instructor_course(uow, principal, course_id)
    passages: list[Hit] = []
    read = Passages([])
    if kind != "explain":
        read = await _generation_passages(container, course, lesson_id)
        passages = read.hits
    query = concept or course.title
    if kind == "explain":
        read = await _explain_passages(container, principal, course, query)
        passages = read.hits
        if read.did_you_mean:
            raise Invalid(
                f"the course's material does not name “{query}”: did you mean “{read.did_you_mean}”?",
                code="concept_not_in_course",
                details={"absent": [query], "did_you_mean": read.did_you_mean},
            )
        if not passages:
            raise Invalid("the course's material does not cover that concept", code="concept_not_in_course")
        absent = evidence.absent_names(query, passages, phrase=True)
        if absent:  # "Galilean moons" over a passage on Titan: near in meaning, about something else (explore11 F5)
            raise Invalid(
                f"the course's material does not mention {', '.join(absent)}",
                code="concept_not_in_course",
                details={"absent": absent},
            )
    if not passages:
        raise Conflict("the course has no indexed content to generate from", code="no_indexed_content")
    n = len(passages)
    task = {
        "summary": lambda: generation.summary_task(passages),
        "objectives": lambda: generation.objectives_task(passages),
        "quiz": lambda: generation.quiz_task(num_questions, n, passages),
        "explain": lambda: generation.explain_task(concept or "", level, passages),
    }[kind]()
    slot = await slot_within_quota(container, principal)
    try:
        model = container.chat_model().name
    except Exception:
        slot.release()
        raise
    interaction = Interaction(user_id=principal.user_id, course_id=course_id, kind=kind, model=model, question=concept)
    return GenerationRun(container, principal, task, passages, interaction, slot, query, lesson_id, read)


async def _refuse_if_saved(uow: UnitOfWork, quiz: AiGeneratedQuiz) -> None:
    """Saved once: refused while that lesson exists; once the instructor deleted it, the quiz can be saved again
    (explore17 F5: the 409 named a deleted lesson, and the questions were nowhere else)."""
    if quiz.saved_lesson_id is not None and await uow.session.get(Lesson, quiz.saved_lesson_id) is not None:
        raise Conflict(
            "this quiz was already saved",
            code="generated_quiz_saved",
            details={"lesson_id": str(quiz.saved_lesson_id)},
        )


async def _savable(uow: UnitOfWork, principal: Principal, quiz: AiGeneratedQuiz | None) -> AiGeneratedQuiz:
    """The quiz, for whoever generated it, the course's instructor (a TA's or an admin's quiz for their course:
    explore73 F6, the owner got 404) and admins; anyone else 404."""
    if quiz is not None and not (principal.is_admin or quiz.created_by == principal.user_id):
        if not await courses.teaches_course(uow, principal, quiz.course_id):
            quiz = None
    if quiz is None:
        raise NotFound("generated quiz not found", code="generated_quiz_not_found")
    return quiz


async def generated_quizzes(
    container: Any, *, principal: Principal, course_id: uuid.UUID | None, page: int, page_size: int
) -> GeneratedQuizPage:
    """The generated quizzes the caller may save (`_savable`), newest first: their own, and with `course_id` of a
    course they teach, every one generated for it (an admin: any). explore73 F7: a generation's lost answer lost its
    quiz, which was stored and counted against the quota."""
    async with container.uow() as uow:
        where: list[Any] = []
        if course_id is not None:
            where.append(AiGeneratedQuiz.course_id == course_id)
            course = await uow.session.get(Course, course_id)
            teaches = course is not None and rules.teaches(principal, course.instructor_id)
            if not (principal.is_admin or teaches):
                where.append(AiGeneratedQuiz.created_by == principal.user_id)
        elif not principal.is_admin:
            where.append(AiGeneratedQuiz.created_by == principal.user_id)
        total = await uow.session.scalar(select(func.count()).select_from(AiGeneratedQuiz).where(*where)) or 0
        rows = list(
            await uow.session.scalars(
                select(AiGeneratedQuiz)
                .where(*where)
                .order_by(AiGeneratedQuiz.created_at.desc(), AiGeneratedQuiz.id.desc())
                .offset((page - 1) * page_size)
                .limit(page_size)
            )
        )
        # Saved means a lesson that exists: once it is deleted the quiz can be saved again (`_refuse_if_saved`), and
        # the list said otherwise (explore74 F2: a client linked the deleted lesson and hid its "Save").
        saved = {q.saved_lesson_id for q in rows if q.saved_lesson_id is not None}
        kept = set(await uow.session.scalars(select(Lesson.id).where(Lesson.id.in_(saved)))) if saved else set()
        items = [
            GeneratedQuizOut(
                id=q.id,
                course_id=q.course_id,
                lesson_id=q.lesson_id,
                title=q.title,
                questions=[QuizQuestionOut.model_validate(question) for question in q.questions],
                created_by=q.created_by,
                created_at=q.created_at,
                saved_lesson_id=q.saved_lesson_id if q.saved_lesson_id in kept else None,
            )
            for q in rows
        ]
    return GeneratedQuizPage(items=items, total=total, page=page, page_size=page_size)


async def _ensure_source_kept(container: Any, principal: Principal, quiz_id: uuid.UUID, *, allowed: bool) -> None:
    """409 `generated_quiz_source_gone` if the quiz's source lesson or material is no longer in the working copy (the
    material is read with no connection held: the document store may share the pool)."""
    async with container.uow() as uow:
        quiz = await _savable(uow, principal, await uow.session.get(AiGeneratedQuiz, quiz_id))
        await _refuse_if_saved(uow, quiz)  # first: allowing a missing source would not save it (explore25 F4)
        source = quiz.lesson_id
        if allowed or source is None or await uow.session.get(Lesson, source) is not None:
            return
    if await container.documents.get(courses.MATERIALS, str(source)) is None:
        raise Conflict(
            "the lesson or material this quiz was generated from is no longer in the course; save it anyway with "
            '"allow_missing_source": true',
            code="generated_quiz_source_gone",
            details={"source_id": str(source)},
        )


async def save_generated_quiz(
    container: Any, *, principal: Principal, quiz_id: uuid.UUID, body: SaveQuizIn
) -> LessonPublic:
    """Turn a generated quiz into a quiz lesson of the working copy (a draft until the next publish).

    A quiz whose source (the lesson or material it was generated from) has left the working copy is refused, 409
    `generated_quiz_source_gone`, unless `allow_missing_source`: it was saved silently, named after a file the course
    no longer had (explore17 F7)."""
    await _ensure_source_kept(container, principal, quiz_id, allowed=body.allow_missing_source)
    async with container.uow() as uow:
        quiz = await _savable(uow, principal, await uow.session.get(AiGeneratedQuiz, quiz_id, with_for_update=True))
        await _refuse_if_saved(uow, quiz)  # again under the row lock: a concurrent save
        try:
            data = LessonIn(
                title=body.title or quiz.title,
                type="quiz",
                questions=[
                    QuizQuestion(prompt=q["prompt"], options=q["options"], answer=q["answer"]) for q in quiz.questions
                ],
                pass_score=body.pass_score,
            )
        except ValidationError as exc:
            # What the model wrote breaks a lesson's rules (its title, a question): said as a lesson's create would
            # say it, not a 500 (explore60 F1); a `title` of one's own replaces a generated one.
            raise courses.invalid_lesson(courses.problems(exc)) from exc
        # The lesson and the quiz's record of it commit together (the quiz's row lock keeps a concurrent save out).
        quiz.saved_lesson_id = uuid.uuid4()
        return await courses.add_lesson(
            uow=uow,
            documents=container.documents,
            principal=principal,
            course_id=quiz.course_id,
            module_id=body.module_id,
            data=data,
            lesson_id=quiz.saved_lesson_id,
        )
