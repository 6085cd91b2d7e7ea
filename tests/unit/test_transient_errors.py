"""`db.is_transient`: what a consumer retries (the database away) against what it dead-letters (the event's fault)."""

from __future__ import annotations

import asyncpg.exceptions as pg
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from smartcourse.db import is_transient
from smartcourse.errors import Invalid


def _wrapped(driver_error: Exception, *, invalidated: bool = False) -> DBAPIError:
    """As SQLAlchemy raises a driver's error: `DBAPIError(...) from <adapted error> from <asyncpg error>`."""
    adapted = RuntimeError(str(driver_error))
    adapted.__cause__ = driver_error
    error = DBAPIError("SELECT 1", {}, adapted, connection_invalidated=invalidated)
    error.__cause__ = adapted
    return error


def test_the_database_away_is_transient() -> None:
    assert is_transient(_wrapped(pg.CannotConnectNowError("the database system is starting up")))
    assert is_transient(_wrapped(pg.AdminShutdownError("terminating connection due to administrator command")))
    assert is_transient(_wrapped(pg.ConnectionDoesNotExistError("connection was closed in the middle of operation")))
    assert is_transient(_wrapped(pg.TooManyConnectionsError("sorry, too many clients already")))
    assert is_transient(_wrapped(pg.DeadlockDetectedError("deadlock detected")))
    assert is_transient(_wrapped(RuntimeError("connection is closed"), invalidated=True))
    assert is_transient(ConnectionRefusedError(111, "Connection refused"))
    assert is_transient(PoolTimeout("QueuePool limit reached"))
    assert is_transient(pg.InterfaceError("connection is closed"))  # unwrapped, from a new connection's set-up


def test_the_events_own_failure_is_not() -> None:
    assert not is_transient(ValueError("bad data"))
    assert not is_transient(Invalid("breaks its contract"))
    assert not is_transient(_wrapped(pg.NotNullViolationError("null value in column")))
    assert not is_transient(pg.InterfaceError("cannot perform operation: another operation is in progress"))
    assert not is_transient(IntegrityError("INSERT", {}, RuntimeError("duplicate key")))


def test_an_error_raised_while_handling_an_outage_is_judged_by_itself() -> None:
    try:
        try:
            raise ConnectionResetError("reset")
        except ConnectionResetError:
            raise KeyError("a bug in the handler")  # noqa: B904 - the implicit context is the point
    except KeyError as exc:
        assert isinstance(exc.__context__, ConnectionResetError)
        assert not is_transient(exc)  # only `raise ... from` causes count, not the context
