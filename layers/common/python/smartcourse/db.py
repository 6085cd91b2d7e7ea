"""SQLAlchemy async engine and the unit of work that commits a change together with its events."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from types import TracebackType
from typing import Any

import asyncpg.exceptions as pg_errors
from sqlalchemy import Table, bindparam, event, func, select
from sqlalchemy.dialects.postgresql import ARRAY, Insert, insert
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.types import TypeEngine

from smartcourse import telemetry
from smartcourse.domain.events import DomainEvent
from smartcourse.event_contracts import validate_event
from smartcourse.models import OutboxEvent

#: What says the database is away for a moment, not that the work is wrong: a socket refused or cut (OSError), the
#: pool exhausted, a connection SQLAlchemy found dead, and asyncpg's connection errors (SQLSTATE class 08), the server
#: shutting down or starting up (57P01-57P03), too many connections (53300), a deadlock or serialization conflict (40).
_TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,
    PoolTimeout,
    DisconnectionError,
    pg_errors.PostgresConnectionError,
    pg_errors.OperatorInterventionError,
    pg_errors.TooManyConnectionsError,
    pg_errors.TransactionRollbackError,
)


def is_transient(exc: BaseException) -> bool:
    """True when `exc` (or what it was raised from) says the database or the network to it is briefly unavailable:
    PostgreSQL restarting, a connection cut or refused, the pool exhausted, a deadlock. The same work succeeds when
    tried again later, so a consumer retries it instead of dead-lettering the event as poison (a dead letter is for
    an event whose own content fails, docs/events.md). Follows `raise ... from` causes only: an error raised while
    handling another is judged by itself."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, _TRANSIENT) or (isinstance(current, DBAPIError) and current.connection_invalidated):
            return True
        if isinstance(current, pg_errors.InterfaceError) and "connection is closed" in str(current):
            return (
                True  # asyncpg on a connection the server closed (SQLAlchemy's asyncpg dialect reads it the same way)
            )
        pending.append(current.__cause__)
        if isinstance(current, DBAPIError) and isinstance(current.orig, BaseException):
            pending.append(current.orig)  # the driver's error (SQLAlchemy keeps it beside the cause)
    return False


def make_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 20,
    pool_timeout: float = 30.0,
    application_name: str = "smartcourse",
    statement_timeout: float | None = None,
) -> AsyncEngine:
    """An asyncpg engine with a bounded pool. A caller that holds one of its connections must never wait for a
    second one from the same pool (the pool would deadlock once every connection is such a holder): the
    document store has a pool of its own for that reason (see docs/architecture.md, "Connection pools").

    `statement_timeout`: the seconds a statement, or opening a connection, may take before the caller gets a
    `TimeoutError` (asyncpg's `command_timeout` and connect `timeout`, client-side, so they hold while the server
    itself is stalled and cannot enforce its own `statement_timeout`); None: asyncpg's defaults (none, and 60 s).
    Giving the timed-out connection up waits as long again on a stalled server (asyncpg's cancel and close; measured:
    0.5 s + 0.5 s, and 22 s for 10 in explore12 F4), so a request waits about twice the limit at most."""
    connect_args: dict[str, Any] = {"server_settings": {"application_name": application_name}}
    if statement_timeout is not None:
        connect_args.update(command_timeout=statement_timeout, timeout=statement_timeout)
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        pool_recycle=1800,
        connect_args=connect_args,
    )
    check_on_checkout(engine)
    telemetry.trace_engine(engine)  # a span per statement, under the request or task that ran it
    return engine


PING_AFTER_IDLE_SECONDS = 5.0

#: This process's Lambda invocations so far (`new_invocation`, called by the handlers); 0 outside Lambda.
_invocation = 0


def new_invocation() -> None:
    """A Lambda invocation begins. Between two, the process is frozen and its event loop does not run, so asyncpg
    never reads the EOF of a connection the server closed meanwhile (a failover, an RDS Proxy's idle timeout): it
    looks open, and the first statement on it failed with a 503 (explore33 F3). A connection's first checkout in an
    invocation is therefore pinged (`check_on_checkout`): one round trip per pooled connection per invocation."""
    global _invocation
    _invocation += 1


def check_on_checkout(engine: AsyncEngine, ping_after_idle: float = PING_AFTER_IDLE_SECONDS) -> None:
    """Hand out only live connections, without a round trip for each checkout.

    SQLAlchemy's `pool_pre_ping` costs the asyncpg dialect three round trips per checkout (BEGIN, `;`, ROLLBACK),
    a third of a short transaction's. Instead (as HikariCP's alive-bypass window does): a connection whose socket
    is closed (PostgreSQL restarted or ended the session: asyncpg sees the EOF while the connection sits in the
    pool) is replaced without a round trip; one idle longer than `ping_after_idle` seconds is pinged first; one
    used moments ago is handed out as it is, unless this is its first checkout in a Lambda invocation
    (`new_invocation`). A connection that fails anyway fails its statement, and SQLAlchemy then invalidates the
    pool (a disconnect error), so a restart costs at most the statements already in flight.
    """

    @event.listens_for(engine.sync_engine, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        driver = getattr(dbapi_connection, "driver_connection", None)
        if driver is not None and driver.is_closed():
            raise DisconnectionError("the connection was closed by the server")
        last_used = record.info.get("checked_in_at")
        first_in_invocation = _invocation and record.info.get("invocation") != _invocation
        record.info["invocation"] = _invocation
        if last_used is not None and (first_in_invocation or time.monotonic() - last_used > ping_after_idle):
            try:
                dbapi_connection.ping()
            except Exception as exc:  # any failure: replace it (the pool retries with a new connection)
                raise DisconnectionError(f"the connection failed its ping: {exc}") from exc

    @event.listens_for(engine.sync_engine, "checkin")
    def _checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()


def outbox_values(event: DomainEvent) -> dict[str, Any]:
    """The outbox row of an event (checked against its schema), for `emit` or a statement that writes it itself."""
    envelope = event.envelope()
    validate_event(event.type, event.version, envelope)
    return {
        "id": event.id,
        "topic": event.topic,
        "event_type": event.type,
        "schema_version": event.version,
        "aggregate_id": event.aggregate_id,
        "payload": envelope,
        "trace_context": telemetry.current_carrier(),  # the relay/dispatcher continues this trace
    }


#: `session.info` key: the notifications this session's transaction wrote whose e-mail is pending
#: (`note_new_email`), handed over after its commit (`EMAILS_AFTER_COMMIT`).
NEW_EMAILS = "smartcourse.new_emails"

#: Set by the HTTP layer for each request (`api/emails.py`): called after a unit of work's commit with the
#: notifications whose e-mail the transaction created, so an admin's revocation or removal, a waitlist's notices, an
#: admin's cancel of a publish are e-mailed at once, not at the e-mail sweeper's next round, a minute or two later
#: (session 35's note). Unset elsewhere: the worker's activities enqueue their own e-mails. It must not block or
#: raise: a lost hand-over leaves the row pending for the sweeper, as a lost enqueue always did.
EMAILS_AFTER_COMMIT: ContextVar[Callable[[list[uuid.UUID]], None] | None] = ContextVar(
    "emails_after_commit", default=None
)


def note_new_email(session: AsyncSession, notification_id: uuid.UUID) -> None:
    """The transaction of `session` wrote a notification whose e-mail is pending: handed over after its commit."""
    session.info.setdefault(NEW_EMAILS, []).append(notification_id)


class UnitOfWork:
    """One transaction: the service's changes plus the outbox rows of the events it emitted."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker
        self.session: AsyncSession
        self.emitted: list[DomainEvent] = []
        #: Set while a request's `Idempotency-Key` is claimed (`api.idempotency`): the service's `commit` only
        #: flushes, and the handler commits once the answer is recorded with the key.
        self.held = False

    async def __aenter__(self) -> UnitOfWork:
        self.session = self._sessionmaker()
        self.emitted = []
        self.held = False
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if exc_type is not None:
                self.session.info.pop(NEW_EMAILS, None)
                await self.session.rollback()
        finally:
            await self.session.close()

    def emit(self, event: DomainEvent) -> uuid.UUID:
        """Stage an event; it is written to the outbox in this transaction (checked against its schema)."""
        self.session.add(OutboxEvent(**outbox_values(event)))
        self.emitted.append(event)
        return event.id

    async def emit_once(self, event: DomainEvent) -> bool:
        """Write an event whose id is deterministic (derived from what caused it); a retry writes nothing."""
        envelope = event.envelope()
        validate_event(event.type, event.version, envelope)
        result = await self.session.execute(
            insert(OutboxEvent)
            .values(
                id=event.id,
                topic=event.topic,
                event_type=event.type,
                schema_version=event.version,
                aggregate_id=event.aggregate_id,
                payload=envelope,
                trace_context=telemetry.current_carrier(),
            )
            .on_conflict_do_nothing(index_elements=[OutboxEvent.id])
            .returning(OutboxEvent.id)
        )
        return result.first() is not None

    async def commit(self) -> None:
        if self.held:
            await self.session.flush()
            return
        await self.session.commit()
        emails = self.session.info.pop(NEW_EMAILS, None)
        if emails and (hand_over := EMAILS_AFTER_COMMIT.get()) is not None:
            hand_over(emails)

    async def flush(self) -> None:
        await self.session.flush()

    async def get(self, model: type[Any], ident: Any, **kw: Any) -> Any:
        return await self.session.get(model, ident, **kw)


def insert_from_arrays(table: Table, columns: Sequence[tuple[str, TypeEngine[Any]]]) -> Insert:
    """`INSERT INTO table (columns) SELECT * FROM unnest(:rows_<column>, ...)`: any number of rows, one statement
    text. Build it once (per process) and pass `arrays(columns, rows)`; add `on_conflict_*` as needed.

    A multi-row VALUES list is a new statement for every row count: SQLAlchemy compiles it again (a bound parameter
    per value) and asyncpg prepares it again. For the consumers' batched writes that was a quarter of the
    enrollment worker's CPU (docs/benchmarks.md, "Eighth pass")."""
    names = [name for name, _ in columns]
    unnest = func.unnest(*(bindparam(f"rows_{name}", type_=ARRAY(type_)) for name, type_ in columns))
    rows = unnest.table_valued(*names).render_derived()  # AS anon_1(metric, bucket, ...)
    return insert(table).from_select(names, select(*(rows.c[name] for name in names)))


def arrays(columns: Sequence[tuple[str, TypeEngine[Any]]], rows: Iterable[Sequence[Any]]) -> dict[str, list[Any]]:
    """The parameters of an `insert_from_arrays` statement: one list per column, from rows in column order."""
    out: dict[str, list[Any]] = {f"rows_{name}": [] for name, _ in columns}
    lists = list(out.values())
    for row in rows:
        for values, value in zip(lists, row, strict=True):
            values.append(value)
    return out
